package component

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"time"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/platform/tenantrole"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// Stable reasons of the component faults, sent to clients in ErrorInfo.
const (
	ReasonComponentNotFound     = "COMPONENT_NOT_FOUND"
	ReasonComponentIDInvalid    = "COMPONENT_ID_INVALID"
	ReasonMigrationsInvalid     = "MIGRATIONS_INVALID"
	ReasonMigrationFailed       = "MIGRATION_FAILED"
	ReasonAppliedMigrationAlter = "MIGRATION_APPLIED_CHANGED"
)

// Limits on what one component may register: the registry keeps every
// component in memory when it provisions a tenant, and sends it whole.
const (
	MaxMigrations      = 1000
	MaxMigrationBytes  = 256 << 10
	MaxComponentBytes  = 2 << 20
	maxComponentIDSize = tenantrole.MaxComponentIDBytes
)

var (
	idPattern            = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	migrationNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,62}$`)
)

// Migration is one step of a component's schema.
type Migration struct {
	// Version is 1 for the first migration, then 2, 3, ...
	Version int
	// Name is a short lower-case name for logs.
	Name string
	// SQL runs in the tenant's schema.
	SQL string
	// Checksum is the SHA-256 of SQL, hex.
	Checksum string
}

// Component is a part of the product with tables in every tenant schema.
type Component struct {
	ID          string
	DisplayName string
	Migrations  []Migration
	CreateTime  time.Time
	UpdateTime  time.Time
}

// Latest is the version every tenant is brought to.
func (c *Component) Latest() int { return len(c.Migrations) }

// Applied is the version of a component recorded for one tenant's schema.
type Applied struct {
	Component string
	Version   int
	ApplyTime time.Time
}

// Store persists components. Register decides under a lock: no tenant can
// apply the component's migrations between the check and the write.
type Store interface {
	// Register stores c, created or replaced, after decide approves it.
	// decide gets the stored component (nil when new) and the highest
	// version of it any tenant's schema has applied, in any placement.
	// Before storing, Register applies c's migrations to a scratch schema
	// in a transaction it rolls back, so SQL that does not run is refused
	// (a *MigrationError) rather than stored.
	Register(ctx context.Context, c *Component, decide func(stored *Component, applied int) error) (*Component, error)
	// Get returns a component with its migrations, or a NotFound fault.
	Get(ctx context.Context, id string) (*Component, error)
	// List returns every component in id order; withSQL false leaves the
	// migrations' SQL out.
	List(ctx context.Context, withSQL bool) ([]*Component, error)
	// TenantVersions returns the versions recorded for t's schema.
	TenantVersions(ctx context.Context, t *tenant.Tenant) ([]Applied, error)
}

// Tenants finds a tenant by slug (tenant.Manager does).
type Tenants interface {
	Get(ctx context.Context, slug string) (*tenant.Tenant, error)
}

// Manager applies the rules of components.
type Manager struct {
	store   Store
	tenants Tenants
	now     func() time.Time
}

// NewManager returns a Manager over store; tenants finds tenants for
// TenantComponents.
func NewManager(store Store, tenants Tenants, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{store: store, tenants: tenants, now: now}
}

// ErrNotFound returns the fault for a missing component.
func ErrNotFound(id string) error {
	return fault.New(fault.NotFound, ReasonComponentNotFound, "component %q is not registered", id)
}

// ValidateID checks a component id: a DNS label, like a slug.
func ValidateID(field, id string) error {
	if !idPattern.MatchString(id) || len(id) > maxComponentIDSize {
		return fault.Invalid(field, ReasonComponentIDInvalid,
			"%s %q is not a component id: use 1-%d of a-z, 0-9 and '-', starting with a letter and not ending with '-' (the id names a PostgreSQL role per tenant, t_<uid>_<id>, and PostgreSQL names hold 63 bytes)", field, id, maxComponentIDSize)
	}
	return nil
}

// Checksum is the checksum of a migration's SQL.
func Checksum(sql string) string {
	sum := sha256.Sum256([]byte(sql))
	return hex.EncodeToString(sum[:])
}

// RegisterResult is what a registration did.
type RegisterResult struct {
	Component *Component
	// Added lists the versions new or replaced by this call.
	Added []int
}

// Register creates or updates a component. Migrations must be numbered 1..n
// without gaps. A version some tenant has applied must keep its SQL (the
// same checksum) and may not be removed: a change ships as a new version.
// Versions no tenant has applied yet may still change.
func (m *Manager) Register(ctx context.Context, c *Component) (RegisterResult, error) {
	if err := ValidateID("component.name", c.ID); err != nil {
		return RegisterResult{}, err
	}
	if err := tenantname.ValidateDisplayName("component.display_name", c.DisplayName); err != nil {
		return RegisterResult{}, err
	}
	if err := validateMigrations(c.Migrations); err != nil {
		return RegisterResult{}, err
	}
	in := *c
	in.Migrations = slices.Clone(c.Migrations)
	for i := range in.Migrations {
		in.Migrations[i].Checksum = Checksum(in.Migrations[i].SQL)
	}
	now := m.now().UTC()
	in.CreateTime, in.UpdateTime = now, now
	var added []int
	stored, err := m.store.Register(ctx, &in, func(stored *Component, applied int) error {
		added = added[:0]
		if stored == nil {
			for _, mig := range in.Migrations {
				added = append(added, mig.Version)
			}
			return nil
		}
		in.CreateTime = stored.CreateTime
		if applied > len(in.Migrations) {
			return fault.New(fault.FailedPrecondition, ReasonAppliedMigrationAlter,
				"component %q: tenants have applied versions up to %d, but this list ends at %d; applied migrations cannot be removed",
				c.ID, applied, len(in.Migrations)).WithMetadata("version", fmt.Sprint(len(in.Migrations)+1))
		}
		changed := in.DisplayName != stored.DisplayName
		for _, mig := range in.Migrations {
			i := mig.Version - 1
			switch {
			case i >= len(stored.Migrations):
				added = append(added, mig.Version)
			case stored.Migrations[i].Checksum != mig.Checksum && mig.Version <= applied:
				return fault.New(fault.FailedPrecondition, ReasonAppliedMigrationAlter,
					"component %q: migration %d (%s) has been applied by tenants and its SQL cannot change; ship the change as migration %d",
					c.ID, mig.Version, mig.Name, len(stored.Migrations)+1).WithMetadata("version", fmt.Sprint(mig.Version))
			case stored.Migrations[i].Checksum != mig.Checksum:
				added = append(added, mig.Version)
			case stored.Migrations[i].Name != mig.Name:
				changed = true
			}
		}
		if len(added) == 0 && !changed && len(in.Migrations) == len(stored.Migrations) {
			in.UpdateTime = stored.UpdateTime
		}
		return nil
	})
	if err != nil {
		return RegisterResult{}, err
	}
	return RegisterResult{Component: stored, Added: slices.Clone(added)}, nil
}

// Get returns one component.
func (m *Manager) Get(ctx context.Context, id string) (*Component, error) {
	if err := ValidateID("name", id); err != nil {
		return nil, err
	}
	return m.store.Get(ctx, id)
}

// List returns every component without its SQL.
func (m *Manager) List(ctx context.Context) ([]*Component, error) {
	return m.store.List(ctx, false)
}

// TenantComponent is the state of one component in one tenant's schema.
type TenantComponent struct {
	Component string
	Version   int
	Latest    int
	ApplyTime time.Time
}

// TenantComponents reports each registered component's version in a
// tenant's schema.
func (m *Manager) TenantComponents(ctx context.Context, slug string) ([]TenantComponent, error) {
	t, err := m.tenants.Get(ctx, slug)
	if err != nil {
		return nil, err
	}
	comps, err := m.store.List(ctx, false)
	if err != nil {
		return nil, err
	}
	applied, err := m.store.TenantVersions(ctx, t)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]Applied, len(applied))
	for _, a := range applied {
		byID[a.Component] = a
	}
	out := make([]TenantComponent, 0, len(comps))
	for _, c := range comps {
		a := byID[c.ID]
		out = append(out, TenantComponent{Component: c.ID, Version: a.Version, Latest: c.Latest(), ApplyTime: a.ApplyTime})
	}
	return out, nil
}

func validateMigrations(migs []Migration) error {
	const field = "component.migrations"
	if len(migs) == 0 {
		return fault.Invalid(field, ReasonMigrationsInvalid, "a component needs at least one migration")
	}
	if len(migs) > MaxMigrations {
		return fault.Invalid(field, ReasonMigrationsInvalid, "a component may have at most %d migrations, not %d", MaxMigrations, len(migs))
	}
	total := 0
	for i, mig := range migs {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case mig.Version != i+1:
			return fault.Invalid(f+".version", ReasonMigrationsInvalid,
				"migration versions must run 1, 2, 3, ... in order: the migration at index %d has version %d, want %d", i, mig.Version, i+1)
		case !migrationNamePattern.MatchString(mig.Name):
			return fault.Invalid(f+".name", ReasonMigrationsInvalid,
				"migration %d: name %q must be 1-63 of a-z, 0-9 and '_', starting with a letter or digit", mig.Version, mig.Name)
		case len(mig.SQL) == 0:
			return fault.Invalid(f+".sql", ReasonMigrationsInvalid, "migration %d has no SQL", mig.Version)
		case len(mig.SQL) > MaxMigrationBytes:
			return fault.Invalid(f+".sql", ReasonMigrationsInvalid,
				"migration %d has %d bytes of SQL; at most %d are allowed", mig.Version, len(mig.SQL), MaxMigrationBytes)
		}
		total += len(mig.SQL)
	}
	if total > MaxComponentBytes {
		return fault.Invalid(field, ReasonMigrationsInvalid,
			"the migrations hold %d bytes of SQL; a component may hold at most %d", total, MaxComponentBytes)
	}
	return nil
}

// MigrationError says which migration of which component failed to run,
// with PostgreSQL's message (about the caller's own SQL).
type MigrationError struct {
	Component string
	Version   int
	Message   string
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("component %q, migration %d: %s", e.Component, e.Version, e.Message)
}

// Fault returns the fault for a migration that does not run: invalid input
// when it is being registered.
func (e *MigrationError) Fault(field string) error {
	return fault.Invalid(field, ReasonMigrationFailed,
		"component %q: migration %d does not run: %s", e.Component, e.Version, e.Message).
		WithMetadata("version", fmt.Sprint(e.Version))
}

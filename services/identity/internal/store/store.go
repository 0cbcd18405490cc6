// Package store keeps identity's data in PostgreSQL with pgx: each tenant's
// accounts in the tenant's own schema, reached only through transactions
// scoped to that schema.
//
// identity's tables are the component "identity" (Migrations), applied by
// the registry like any product's: when a tenant is created, and by fleet
// migrations, which identity asks for at start-up and for a tenant it finds
// behind (see versions). identity never runs DDL itself.
package store

import (
	"context"
	"embed"
	"log/slog"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantdb"
)

// Component is the component identity's tables are registered as; its
// version is recorded in tenantry_meta.schema_versions like any other's.
const Component = "identity"

// MigrationsDir is where Migrations are in MigrationFiles.
const MigrationsDir = "migrations"

// MigrationFiles holds identity's tenant-schema migrations, registered
// with the registry at start-up.
//
//go:embed migrations/*.sql
var MigrationFiles embed.FS

// Migrations returns identity's tenant-schema migrations.
func Migrations() ([]tenantdb.Migration, error) {
	return tenantdb.LoadMigrations(MigrationFiles, MigrationsDir)
}

// Invalidator is told, after a transaction commits, which sessions and
// users it changed, so that what a cache kept of them is dropped at once on
// this replica (other replicas hear of it through the schemas' triggers;
// see Follow).
type Invalidator interface {
	ForgetSession(schema, id string)
	ForgetUser(schema, id string)
	// ForgetConfig drops a tenant's login configuration (settings,
	// identity providers).
	ForgetConfig(schema string)
}

// Store implements account.Store over one pool per placement.
type Store struct {
	pools       map[string]*pgxpool.Pool
	versions    *versions
	logger      *slog.Logger
	invalidator Invalidator
	afterMail   func()

	// tenants looks a tenant up as the registry has it now (SetTenants).
	tenants func(ctx context.Context, slug string) (tenancy.Tenant, error)

	// Batched refresh token rotations (see rotate.go), per placement.
	rotators         map[string]*rotator
	rotating         atomic.Bool
	rotationsStopped chan struct{}
}

var _ account.Store = (*Store)(nil)

// New returns a store over the placements' pools. inv, which may be nil,
// hears of the changes this store's transactions commit. migrate, which
// may be nil, asks the registry to migrate one tenant behind on identity's
// tables (see Versions).
func New(pools map[string]*pgxpool.Pool, inv Invalidator, migrate MigrateFunc, logger *slog.Logger) (*Store, error) {
	migrations, err := Migrations()
	if err != nil {
		return nil, err
	}
	s := &Store{pools: pools, logger: logger, invalidator: inv,
		versions: newVersions(pools, len(migrations), migrate),
		rotators: map[string]*rotator{}, rotationsStopped: make(chan struct{})}
	for name := range pools {
		s.rotators[name] = &rotator{queue: make(chan *rotation, 4*maxRotationBatch)}
	}
	return s, nil
}

func (s *Store) placement(t tenancy.Tenant) (*pgxpool.Pool, error) {
	pool, ok := s.pools[t.Placement]
	if !ok {
		return nil, fault.New(fault.FailedPrecondition, "PLACEMENT_UNKNOWN",
			"tenant %q lives in placement %q, which this identity service is not configured for", t.Slug, t.Placement)
	}
	return pool, nil
}

// InTenant implements account.Store: it makes sure the tenant's schema has
// identity's latest tables (a map lookup once known), then runs fn in a
// transaction scoped to that schema.
//
// A transaction refused because the tenant is moving to another placement
// (the registry's MoveTenant fences its writes for a moment) is run again
// once the tenant's new placement is known (tenantdb.RetryMoving).
func (s *Store) InTenant(ctx context.Context, t tenancy.Tenant, fn func(ctx context.Context, tx account.Tx) error) error {
	return tenantdb.RetryMoving(ctx, t, placementOf, s.current(t),
		func(ctx context.Context, t tenancy.Tenant) error { return s.inTenant(ctx, t, fn) })
}

func placementOf(t tenancy.Tenant) string { return t.Placement }

// SetTenants gives the store the tenants as the registry now has them, to
// follow a tenant that moved; set it before use. Without it a write to a
// moving tenant fails with the fence's error.
func (s *Store) SetTenants(bySlug func(ctx context.Context, slug string) (tenancy.Tenant, error)) {
	s.tenants = bySlug
}

func (s *Store) current(t tenancy.Tenant) func(ctx context.Context) (tenancy.Tenant, error) {
	return func(ctx context.Context) (tenancy.Tenant, error) {
		if s.tenants == nil {
			return t, nil
		}
		return s.tenants(ctx, t.Slug)
	}
}

func (s *Store) inTenant(ctx context.Context, t tenancy.Tenant, fn func(ctx context.Context, tx account.Tx) error) error {
	if err := s.ensureMigrated(ctx, t); err != nil {
		return err
	}
	pool := s.pools[t.Placement]
	var ptx *pgTx
	err := tenantdb.InTenant(ctx, pool, t.Schema, func(ctx context.Context, tx pgx.Tx) error {
		ptx = &pgTx{tx: tx, tenant: t.Slug}
		if err := fn(ctx, ptx); err != nil {
			return err
		}
		return ptx.flushAccountEvents(ctx)
	})
	if err != nil {
		return err
	}
	if s.invalidator != nil {
		for _, c := range ptx.changed {
			c.apply(s.invalidator, t.Schema)
		}
	}
	if ptx.mailed && s.afterMail != nil {
		s.afterMail()
	}
	return nil
}

// AfterMail registers fn to be called after each transaction that wrote
// mail to the outbox commits (to wake the mail worker); set it before use.
func (s *Store) AfterMail(fn func()) { s.afterMail = fn }

// ensureMigrated makes sure t's schema has identity's latest tables.
func (s *Store) ensureMigrated(ctx context.Context, t tenancy.Tenant) error {
	pool, err := s.placement(t)
	if err != nil {
		return err
	}
	return s.versions.ensure(ctx, pool, t)
}

// Forget drops what the store remembers about a purged tenant's schema.
func (s *Store) Forget(t tenancy.Tenant) { s.versions.forget(t) }

package tenant

import (
	"context"
	"time"
)

// Store persists tenants, their domains and the registry's change log. Every
// change it makes takes the next revision and appends an event in the same
// transaction, so the log is a complete, ordered history of the registry.
type Store interface {
	// Create records a new tenant, if its placement accepts it: under the
	// placement's lock, in the transaction that records the tenant, it
	// reads the placement's policy and whether it holds a tenant already,
	// and calls accepts (Placement.Accepts); the placement's lock is
	// exclusive when it is dedicated, so two creates never both find a
	// dedicated placement empty. When the tenant's placement is the
	// registry's own database, the schema is created, with every registered
	// component's tables, in the same transaction and the tenant is stored
	// Active; otherwise it is stored Provisioning
	// and the caller finishes with EnsureSchema and Mutate. A taken slug is
	// an AlreadyExists fault.
	Create(ctx context.Context, t *Tenant, requestID string, accepts func(p *Placement, occupied bool) error) (*Tenant, error)
	// ByRequestID returns the tenant created by a request id, or a NotFound fault.
	ByRequestID(ctx context.Context, requestID string) (*Tenant, error)
	// Get returns a tenant by slug, or a NotFound fault.
	Get(ctx context.Context, slug string) (*Tenant, error)
	// List returns up to limit tenants in slug order after q.AfterSlug.
	List(ctx context.Context, q ListQuery, limit int) ([]*Tenant, error)
	// Mutate locks a tenant, lets change modify a copy of it and stores the
	// result with a new revision. If change fails nothing is written.
	Mutate(ctx context.Context, slug string, change func(*Tenant) error) (*Tenant, error)
	// EnsureSchema creates the tenant's schema in its placement unless it
	// already exists as this tenant's schema, and brings every registered
	// component's tables in it to their latest version, in one transaction.
	// A schema of that name that belongs to something else is a
	// FailedPrecondition fault.
	EnsureSchema(ctx context.Context, t *Tenant) error
	// Purge drops a Deleted tenant's schema and removes the tenant.
	Purge(ctx context.Context, uid string) (*Tenant, error)
	// Stuck returns tenants still Provisioning that were created before
	// the given time.
	Stuck(ctx context.Context, before time.Time) ([]*Tenant, error)
	// Expired returns Deleted tenants whose purge time has passed.
	Expired(ctx context.Context, now time.Time) ([]*Tenant, error)
	// HasPlacement reports whether a placement of that name is configured.
	HasPlacement(name string) bool
	// Placements returns every configured placement in name order, with
	// its policy and database but without counts (Tenants is 0).
	Placements(ctx context.Context) ([]*Placement, error)
	// CountTenants counts the tenants (deleted ones until purged) of the
	// named placements, or of every placement when none is named.
	CountTenants(ctx context.Context, placements ...string) (map[string]int, error)
	// MutatePlacement locks a configured placement exclusively (creates
	// into it wait), reads it with its tenant count, lets change modify a
	// copy of its policy and stores the result with the next version. An
	// unconfigured placement is a NotFound fault; if change fails nothing
	// is written.
	MutatePlacement(ctx context.Context, name string, change func(*Placement) error) (*Placement, error)
}

// ListQuery selects tenants for ListTenants.
type ListQuery struct {
	// AfterSlug continues a listing after this slug.
	AfterSlug string
	// State keeps only tenants in this state; empty keeps all.
	State State
	// Labels keeps only tenants having all these labels.
	Labels map[string]string
	// ShowDeleted keeps Deleted tenants, which are left out otherwise.
	ShowDeleted bool
}

// Syncer brings the Index up to date with the change log, so that a change
// acknowledged to a caller is visible to this replica's resolution at once.
type Syncer interface {
	Sync(ctx context.Context) error
}

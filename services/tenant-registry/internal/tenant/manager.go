package tenant

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
)

// Config holds the rules a Manager applies.
type Config struct {
	// PurgeGrace is how long a deleted tenant can be undeleted before its
	// schema is dropped.
	PurgeGrace time.Duration
	// Logger receives lifecycle events.
	Logger *slog.Logger
	// Now returns the current time; tests replace it.
	Now func() time.Time
}

// Manager applies the registry's rules: the tenant lifecycle, domains and
// resolution. It validates state transitions; request syntax is validated
// by the transport before it gets here. Display names are checked here as
// well, by the rule identity applies to its users' names
// (tenantname.ValidateDisplayName), because they travel beyond the
// registry, into the subjects of identity's mails.
type Manager struct {
	store Store
	index *Index
	sync  Syncer
	cfg   Config

	// afterRecord and afterSchema, when set, run after recording a tenant
	// and after creating its schema in another placement. Tests use them to
	// simulate a crash between the provisioning steps.
	afterRecord func() error
	afterSchema func() error
}

// NewManager returns a Manager over a store and the index that store's
// change log feeds through sync.
func NewManager(store Store, index *Index, sync Syncer, cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{store: store, index: index, sync: sync, cfg: cfg}
}

// Index returns the resolution index the manager keeps current.
func (m *Manager) Index() *Index { return m.index }

// displayNameField is the request field that carries a tenant's display
// name, as refusals name it.
const displayNameField = "tenant.display_name"

// CreateParams describes a tenant to create. Slug and labels are already
// validated; Create checks the display name.
type CreateParams struct {
	Slug        string
	DisplayName string
	Labels      map[string]string
	Placement   string
	RequestID   string
}

// Create provisions a tenant: its record and its schema, ending Active. It
// goes to the placement the request names, if that accepts it
// (Placement.Accepts), or else to the open placement with the fewest
// tenants.
func (m *Manager) Create(ctx context.Context, p CreateParams) (*Tenant, error) {
	if err := tenantname.ValidateDisplayName(displayNameField, p.DisplayName); err != nil {
		return nil, err
	}
	if p.RequestID != "" {
		prev, err := m.store.ByRequestID(ctx, p.RequestID)
		switch {
		case err == nil && prev.Slug == p.Slug:
			// A retry of a request that already succeeded (or got as far as
			// recording the tenant): finish it and answer as the first time.
			return m.finishProvisioning(ctx, prev)
		case err == nil:
			return nil, fault.New(fault.FailedPrecondition, ReasonRequestIDReused,
				"request_id %s was already used to create tenant %q; use a new request_id for a new tenant", p.RequestID, prev.Slug)
		case fault.KindOf(err) != fault.NotFound:
			return nil, err
		}
	}
	created, err := m.create(ctx, p)
	if err != nil {
		if fault.KindOf(err) == fault.AlreadyExists && p.RequestID != "" {
			// Two attempts of one request raced: the loser answers as the winner.
			if prev, perr := m.store.ByRequestID(ctx, p.RequestID); perr == nil && prev.Slug == p.Slug {
				return m.finishProvisioning(ctx, prev)
			}
		}
		return nil, err
	}
	if created.State == Provisioning && m.afterRecord != nil {
		if err := m.afterRecord(); err != nil {
			return nil, err
		}
	}
	return m.finishProvisioning(ctx, created)
}

// create records a new tenant in its placement: the one named, or else the
// open placement with the fewest tenants. A placement chosen here can be
// closed or made dedicated before the tenant is recorded under its lock;
// then the choice is made again, a few times at most.
func (m *Manager) create(ctx context.Context, p CreateParams) (*Tenant, error) {
	named := p.Placement != ""
	if named && !m.store.HasPlacement(p.Placement) {
		return nil, fault.Invalid("tenant.placement", ReasonPlacementUnknown,
			"placement %q is not configured on this registry", p.Placement)
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		placement := p.Placement
		if !named {
			var err error
			if placement, err = m.choosePlacement(ctx); err != nil {
				return nil, err
			}
		}
		now := m.cfg.Now().UTC()
		t := &Tenant{
			UID:         uuid.NewString(),
			Slug:        p.Slug,
			DisplayName: p.DisplayName,
			State:       Provisioning,
			Schema:      tenantname.SchemaName(p.Slug),
			Placement:   placement,
			Labels:      p.Labels,
			CreateTime:  now,
			UpdateTime:  now,
		}
		created, err := m.store.Create(ctx, t, p.RequestID, func(pl *Placement, occupied bool) error {
			return pl.Accepts(named, occupied)
		})
		if f, ok := fault.As(err); ok && !named && attempt < attempts &&
			(f.Reason == ReasonPlacementClosed || f.Reason == ReasonPlacementDedicatedTaken) {
			continue // its policy changed since the choice
		}
		return created, err
	}
}

// finishProvisioning creates the schema of a Provisioning tenant and makes
// it Active. It is idempotent, so requests, retries and the reconciler can
// all call it.
func (m *Manager) finishProvisioning(ctx context.Context, t *Tenant) (*Tenant, error) {
	if t.State != Provisioning {
		return t, m.syncIndex(ctx)
	}
	if err := m.store.EnsureSchema(ctx, t); err != nil {
		return nil, fmt.Errorf("create schema of tenant %q: %w", t.Slug, err)
	}
	if m.afterSchema != nil {
		if err := m.afterSchema(); err != nil {
			return nil, err
		}
	}
	active, err := m.store.Mutate(ctx, t.Slug, func(cur *Tenant) error {
		if cur.UID != t.UID {
			return errNotFound(t.Slug)
		}
		if cur.State == Provisioning {
			cur.State = Active
			cur.UpdateTime = m.cfg.Now().UTC()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("activate tenant %q: %w", t.Slug, err)
	}
	m.cfg.Logger.InfoContext(ctx, "tenant provisioned", "tenant", active.Slug, "uid", active.UID, "placement", active.Placement)
	return active, m.syncIndex(ctx)
}

// Get returns a tenant by slug.
func (m *Manager) Get(ctx context.Context, slug string) (*Tenant, error) {
	return m.store.Get(ctx, slug)
}

// List returns up to limit tenants matching q, and whether more follow.
func (m *Manager) List(ctx context.Context, q ListQuery, limit int) ([]*Tenant, bool, error) {
	ts, err := m.store.List(ctx, q, limit+1)
	if err != nil {
		return nil, false, err
	}
	if len(ts) > limit {
		return ts[:limit], true, nil
	}
	return ts, false, nil
}

// UpdateParams lists the fields UpdateTenant may change; nil leaves a field
// alone.
type UpdateParams struct {
	DisplayName *string
	Labels      *map[string]string
}

// Update changes a tenant's display name and/or labels.
func (m *Manager) Update(ctx context.Context, slug, etag string, p UpdateParams) (*Tenant, error) {
	if p.DisplayName != nil {
		if err := tenantname.ValidateDisplayName(displayNameField, *p.DisplayName); err != nil {
			return nil, err
		}
	}
	return m.mutate(ctx, slug, func(t *Tenant) error {
		if err := checkEtag(t, etag); err != nil {
			return err
		}
		if t.State == Deleted {
			return errState(t, "update", Active, Suspended, Provisioning)
		}
		if p.DisplayName != nil {
			t.DisplayName = *p.DisplayName
		}
		if p.Labels != nil {
			t.Labels = *p.Labels
		}
		return nil
	})
}

// Suspend stops a tenant from being served while keeping its data.
func (m *Manager) Suspend(ctx context.Context, slug, etag string) (*Tenant, error) {
	return m.transition(ctx, slug, etag, "suspend", Suspended, Active)
}

// Resume makes a suspended tenant active again.
func (m *Manager) Resume(ctx context.Context, slug, etag string) (*Tenant, error) {
	return m.transition(ctx, slug, etag, "resume", Active, Suspended)
}

// Undelete restores a soft-deleted tenant whose schema is not purged yet.
func (m *Manager) Undelete(ctx context.Context, slug, etag string) (*Tenant, error) {
	return m.mutate(ctx, slug, func(t *Tenant) error {
		if err := checkEtag(t, etag); err != nil {
			return err
		}
		if t.State != Deleted {
			return errState(t, "undelete", Deleted)
		}
		if !t.PurgeTime.After(m.cfg.Now()) {
			// Past its purge time the schema may already be gone: bringing
			// the tenant back would serve it without its data.
			return fault.New(fault.FailedPrecondition, ReasonPurgeStarted,
				"tenant %q reached its purge time %s and is being purged; it can no longer be undeleted",
				t.Slug, t.PurgeTime.Format(time.RFC3339))
		}
		t.State = Active
		t.DeleteTime = time.Time{}
		t.PurgeTime = time.Time{}
		return nil
	})
}

// Delete soft-deletes a tenant. Its schema is dropped after the grace
// period, or at once with force.
func (m *Manager) Delete(ctx context.Context, slug, etag string, force bool) (*Tenant, error) {
	deleted, err := m.mutate(ctx, slug, func(t *Tenant) error {
		if err := checkEtag(t, etag); err != nil {
			return err
		}
		now := m.cfg.Now().UTC()
		switch {
		case t.State == Deleted && force:
			t.PurgeTime = now
		case t.State == Deleted:
			return errState(t, "delete", Active, Suspended)
		case t.State == Provisioning:
			return fault.New(fault.FailedPrecondition, ReasonProvisioningStuck,
				"tenant %q is still being provisioned; retry in a moment", t.Slug)
		default:
			t.State = Deleted
			t.DeleteTime = now
			t.PurgeTime = now.Add(m.cfg.PurgeGrace)
			if force {
				t.PurgeTime = now
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.cfg.Logger.InfoContext(ctx, "tenant deleted", "tenant", slug, "purge_time", deleted.PurgeTime, "force", force)
	if !force {
		return deleted, nil
	}
	if _, err := m.purge(ctx, deleted); err != nil {
		return nil, err
	}
	return deleted, nil
}

// purge drops a deleted tenant's schema and forgets the tenant. A tenant
// already gone was purged meanwhile by the other path that purges (a force
// delete and the reconciler race for a tenant whose purge time is now):
// the work is done, and nil is returned for the tenant.
func (m *Manager) purge(ctx context.Context, t *Tenant) (*Tenant, error) {
	purged, err := m.store.Purge(ctx, t.UID)
	if f, ok := fault.As(err); ok && f.Reason == ReasonTenantNotFound {
		m.cfg.Logger.InfoContext(ctx, "tenant already purged", "tenant", t.Slug, "uid", t.UID)
		return nil, m.syncIndex(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("purge tenant %q: %w", t.Slug, err)
	}
	m.cfg.Logger.InfoContext(ctx, "tenant purged", "tenant", t.Slug, "uid", t.UID, "schema", t.Schema)
	return purged, m.syncIndex(ctx)
}

// AddDomain attaches a normalised custom host to a tenant.
func (m *Manager) AddDomain(ctx context.Context, slug, host string, primary bool) (*Tenant, error) {
	for _, base := range m.index.BaseDomains() {
		if host == base || strings.HasSuffix(host, "."+base) {
			return nil, errDomainUnderBase(host, base)
		}
	}
	return m.mutate(ctx, slug, func(t *Tenant) error {
		if t.State == Deleted {
			return errState(t, "add a domain to", Active, Suspended, Provisioning)
		}
		for i, d := range t.Domains {
			if d.Host == host {
				if primary && !d.Primary {
					setPrimary(t, i)
					return nil
				}
				return fault.New(fault.AlreadyExists, ReasonDomainTaken, "tenant %q already has domain %q", slug, host)
			}
		}
		if len(t.Domains) >= MaxDomains {
			return fault.New(fault.FailedPrecondition, ReasonTooManyDomains,
				"tenant %q already has %d domains, the maximum; remove one first", slug, MaxDomains)
		}
		t.Domains = append(t.Domains, Domain{Host: host})
		if primary || len(t.Domains) == 1 {
			setPrimary(t, len(t.Domains)-1)
		}
		return nil
	})
}

func setPrimary(t *Tenant, i int) {
	for j := range t.Domains {
		t.Domains[j].Primary = j == i
	}
}

// RemoveDomain detaches a custom host from a tenant. When the primary
// domain goes, the oldest remaining domain becomes primary.
func (m *Manager) RemoveDomain(ctx context.Context, slug, host string) (*Tenant, error) {
	return m.mutate(ctx, slug, func(t *Tenant) error {
		for i, d := range t.Domains {
			if d.Host != host {
				continue
			}
			t.Domains = append(t.Domains[:i], t.Domains[i+1:]...)
			if d.Primary && len(t.Domains) > 0 {
				setPrimary(t, 0)
			}
			return nil
		}
		return fault.New(fault.NotFound, ReasonDomainNotFound, "tenant %q has no domain %q", slug, host)
	})
}

// Resolution is the answer to a resolve request.
type Resolution struct {
	Tenant   *Tenant
	Match    Match
	Revision int64
}

// ResolveHost finds the tenant of a normalised host, from memory.
func (m *Manager) ResolveHost(host string) (Resolution, error) {
	t, match, rev, ok := m.index.ByHost(host)
	if !ok {
		return Resolution{}, fault.New(fault.NotFound, ReasonHostNotFound, "no tenant serves host %q", host)
	}
	return Resolution{Tenant: t, Match: match, Revision: rev}, nil
}

// ResolveSlug finds a tenant by slug, from memory.
func (m *Manager) ResolveSlug(slug string) (Resolution, error) {
	t, rev, ok := m.index.BySlug(slug)
	if !ok {
		return Resolution{}, errNotFound(slug)
	}
	return Resolution{Tenant: t, Match: MatchSlug, Revision: rev}, nil
}

// ResolveUID finds a tenant by uid, from memory.
func (m *Manager) ResolveUID(uid string) (Resolution, error) {
	t, rev, ok := m.index.ByUID(uid)
	if !ok {
		return Resolution{}, fault.New(fault.NotFound, ReasonTenantNotFound, "no tenant has uid %q", uid)
	}
	return Resolution{Tenant: t, Match: MatchUID, Revision: rev}, nil
}

func (m *Manager) transition(ctx context.Context, slug, etag, action string, to State, from ...State) (*Tenant, error) {
	return m.mutate(ctx, slug, func(t *Tenant) error {
		if err := checkEtag(t, etag); err != nil {
			return err
		}
		for _, f := range from {
			if t.State == f {
				t.State = to
				return nil
			}
		}
		return errState(t, action, from...)
	})
}

// mutate applies a change through the store, stamps update_time and makes
// the result visible to this replica's resolution before returning.
func (m *Manager) mutate(ctx context.Context, slug string, change func(*Tenant) error) (*Tenant, error) {
	t, err := m.store.Mutate(ctx, slug, func(t *Tenant) error {
		if err := change(t); err != nil {
			return err
		}
		t.UpdateTime = m.cfg.Now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, m.syncIndex(ctx)
}

func (m *Manager) syncIndex(ctx context.Context) error {
	if err := m.sync.Sync(ctx); err != nil {
		// The change is committed; the index catches up from the change log
		// on its own, so the caller must not see this as a failed change.
		m.cfg.Logger.WarnContext(ctx, "index sync after change failed; it will catch up", "err", err)
	}
	return nil
}

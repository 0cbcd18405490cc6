package tenant

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"tenantry.dev/platform/fault"
)

// Placement is a PostgreSQL database that holds tenant schemas, with the
// policy an operator set for it. Placements are configured (DATABASE_URL is
// "default", TENANTRY_PLACEMENTS names the others); only their policy is
// stored, and a placement whose policy was never set is open and shared.
type Placement struct {
	Name string
	// Closed placements take no new tenant; those in it stay.
	Closed bool
	// Dedicated placements hold one tenant, a database of its own: a tenant
	// goes there only when a create (or a move) names it, and only while it
	// holds none.
	Dedicated bool
	// Tenants counts the tenants whose schema is in the placement, deleted
	// ones included until they are purged. Set by ListPlacements and
	// GetPlacement only.
	Tenants int
	// Host is the database server's host:port and Database the database's
	// name, for operators; the credentials of the URL are never kept here.
	Host     string
	Database string
	// RegistryDatabase says the placement is the registry's own database,
	// where a tenant is created in one transaction.
	RegistryDatabase bool
	// UpdateTime is when the policy last changed, zero while never set.
	UpdateTime time.Time
	// Version counts the policy's changes; 0 while never set.
	Version int64
}

// Etag is the placement's version for optimistic concurrency.
func (p *Placement) Etag() string {
	return `"` + strconv.FormatInt(p.Version, 10) + `"`
}

// Accepts reports whether a new tenant may be placed in p: never in a closed
// placement; in a dedicated one only when the request named it and it holds
// no tenant (occupied is false). Unnamed requests go to open, shared
// placements only. The store calls it under the placement's lock, in the
// transaction that records the tenant, so concurrent requests cannot both
// pass it for one dedicated placement.
func (p *Placement) Accepts(named, occupied bool) error {
	switch {
	case p.Closed:
		return fault.New(fault.FailedPrecondition, ReasonPlacementClosed,
			"placement %q is closed to new tenants; name another placement, or open it with UpdatePlacement (closed: false)", p.Name).
			WithMetadata("placement", p.Name)
	case p.Dedicated && !named:
		// Not reachable through Create, which never chooses a dedicated
		// placement; said plainly should a caller try.
		return fault.New(fault.FailedPrecondition, ReasonPlacementDedicatedTaken,
			"placement %q is dedicated: a tenant goes there only when it is named", p.Name).
			WithMetadata("placement", p.Name)
	case p.Dedicated && occupied:
		return fault.New(fault.FailedPrecondition, ReasonPlacementDedicatedTaken,
			"placement %q is dedicated to one tenant and already holds one; name another placement, or create a new dedicated one", p.Name).
			WithMetadata("placement", p.Name)
	}
	return nil
}

// open reports whether unnamed creates may choose p.
func (p *Placement) open() bool { return !p.Closed && !p.Dedicated }

// ListPlacements returns every configured placement in name order, with its
// policy and its number of tenants.
func (m *Manager) ListPlacements(ctx context.Context) ([]*Placement, error) {
	ps, err := m.store.Placements(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := m.store.CountTenants(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		p.Tenants = counts[p.Name]
	}
	return ps, nil
}

// GetPlacement returns one configured placement with its policy and its
// number of tenants.
func (m *Manager) GetPlacement(ctx context.Context, name string) (*Placement, error) {
	ps, err := m.ListPlacements(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, errPlacementNotFound(name)
}

// PlacementUpdate lists the policy fields UpdatePlacement may change; nil
// leaves a field alone.
type PlacementUpdate struct {
	Closed    *bool
	Dedicated *bool
}

// UpdatePlacement changes a placement's policy. Making it dedicated is
// refused while it holds two tenants or more: a dedicated placement holds
// one. The store counts them under the placement's lock, which creates
// take too, so no create slips in between the count and the change.
func (m *Manager) UpdatePlacement(ctx context.Context, name, etag string, u PlacementUpdate) (*Placement, error) {
	p, err := m.store.MutatePlacement(ctx, name, func(p *Placement) error {
		if etag != "" && etag != p.Etag() {
			return fault.New(fault.Aborted, ReasonEtagMismatch,
				"placement %q changed since etag %s was read (current etag %s): read it again and retry", p.Name, etag, p.Etag())
		}
		if u.Closed != nil {
			p.Closed = *u.Closed
		}
		if u.Dedicated != nil {
			if *u.Dedicated && !p.Dedicated && p.Tenants > 1 {
				return fault.New(fault.FailedPrecondition, ReasonPlacementHoldsTenants,
					"placement %q holds %d tenants and a dedicated placement holds one: move the others out first, or close it instead", p.Name, p.Tenants).
					WithMetadata("placement", p.Name).WithMetadata("tenants", strconv.Itoa(p.Tenants))
			}
			p.Dedicated = *u.Dedicated
		}
		p.UpdateTime = m.cfg.Now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.cfg.Logger.InfoContext(ctx, "placement policy changed", "placement", p.Name, "closed", p.Closed, "dedicated", p.Dedicated)
	return p, nil
}

// CheckPlacementAccepts reports whether a tenant may be placed in the named
// placement explicitly: it must be configured (else an InvalidArgument
// fault, PLACEMENT_UNKNOWN), not closed (PLACEMENT_CLOSED) and, when
// dedicated, hold no tenant yet (PLACEMENT_DEDICATED_TAKEN). MoveTenant uses
// it to check a move's target before it starts copying, as CreateTenant
// checks a named placement; it is an early answer, and the step that
// switches a tenant's placement must check again under the placement's
// lock (as Store.Create does with Placement.Accepts).
func (m *Manager) CheckPlacementAccepts(ctx context.Context, name string) error {
	ps, err := m.store.Placements(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ps, func(p *Placement) bool { return p.Name == name })
	if i < 0 {
		return fault.New(fault.InvalidArgument, ReasonPlacementUnknown,
			"placement %q is not configured on this registry", name).WithMetadata("placement", name)
	}
	p := ps[i]
	occupied := false
	if p.Dedicated {
		counts, err := m.store.CountTenants(ctx, name)
		if err != nil {
			return err
		}
		occupied = counts[name] > 0
	}
	return p.Accepts(true, occupied)
}

// choosePlacement picks the placement of a create that names none: the open
// (neither closed nor dedicated) placement with the fewest tenants, the
// first by name among equals. Counts come from this replica's index, which
// includes every change made through it and follows the other replicas'
// within milliseconds: concurrent creates may pick the same placement,
// which evens out as they go; the policy itself is checked again when the
// tenant is recorded.
func (m *Manager) choosePlacement(ctx context.Context) (string, error) {
	ps, err := m.store.Placements(ctx)
	if err != nil {
		return "", err
	}
	counts := m.index.PlacementCounts()
	var best *Placement
	for _, p := range ps {
		if !p.open() {
			continue
		}
		if best == nil || counts[p.Name] < counts[best.Name] ||
			(counts[p.Name] == counts[best.Name] && p.Name < best.Name) {
			best = p
		}
	}
	if best == nil {
		names := make([]string, len(ps))
		for i, p := range ps {
			names[i] = p.Name
		}
		return "", fault.New(fault.FailedPrecondition, ReasonNoOpenPlacement,
			"every placement (%s) is closed or dedicated, so a tenant must name its placement; open one with UpdatePlacement (closed: false, dedicated: false) or add one to TENANTRY_PLACEMENTS",
			strings.Join(names, ", "))
	}
	return best.Name, nil
}

func errPlacementNotFound(name string) error {
	return fault.New(fault.NotFound, ReasonPlacementNotFound,
		"placement %q is not configured on this registry (DATABASE_URL is \"default\"; TENANTRY_PLACEMENTS lists the others)", name)
}

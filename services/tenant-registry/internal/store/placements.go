package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/fault"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// Placement policy. Placements are configured (s.placements); their policy
// is kept in tenantry_registry.placements, a missing row meaning open and
// shared. Every change that puts a tenant in a placement, and every change
// of a placement's policy, holds a transaction-scoped advisory lock on the
// placement in the registry database: shared for a create into a shared
// placement (creates there run side by side), exclusive for a create into a
// dedicated placement and for a policy change. So "is this dedicated
// placement empty?" and "does this placement hold at most one tenant?" are
// answered with no other create in flight there.

// errDedicatedNeedsExclusive asks inPlacement to start again with the
// exclusive lock: the placement turned out dedicated under a shared one.
var errDedicatedNeedsExclusive = errors.New("placement is dedicated: retry under the exclusive lock")

// inPlacement runs fn in a registry transaction that holds placement's
// lock, once accepts has passed on the placement's policy as read under
// it (and, for a dedicated placement, whether it holds a tenant already).
func (s *Store) inPlacement(ctx context.Context, placement string, accepts func(*tenant.Placement, bool) error, fn func(pgx.Tx) error) error {
	// Most placements are shared: the first attempt takes the shared lock,
	// and only a dedicated placement costs a second one.
	exclusive := false
	for {
		err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			p, occupied, err := s.lockPlacement(ctx, tx, placement, exclusive)
			if err != nil {
				return err
			}
			if p.Dedicated && !exclusive {
				return errDedicatedNeedsExclusive
			}
			if err := accepts(p, occupied); err != nil {
				return err
			}
			return fn(tx)
		})
		if errors.Is(err, errDedicatedNeedsExclusive) {
			exclusive = true
			continue
		}
		return err
	}
}

// lockPlacement takes placement's advisory lock in tx (exclusive or shared)
// and then reads its policy, so the policy read is the one in force until
// tx ends. For a dedicated placement it also reports whether it holds a
// tenant; with the exclusive lock no other create into it is in flight.
// MoveTenant's switch of a tenant's placement takes it too (exclusive), so
// that a move and a create cannot both fill one dedicated placement.
func (s *Store) lockPlacement(ctx context.Context, tx pgx.Tx, placement string, exclusive bool) (*tenant.Placement, bool, error) {
	lock := `SELECT pg_advisory_xact_lock_shared(hashtext('tenantry_placement'), hashtext($1))`
	if exclusive {
		lock = `SELECT pg_advisory_xact_lock(hashtext('tenantry_placement'), hashtext($1))`
	}
	if _, err := tx.Exec(ctx, lock, placement); err != nil {
		return nil, false, err
	}
	// A statement after the lock: under READ COMMITTED it sees every
	// policy change committed before the lock was granted.
	p, err := s.readPlacement(ctx, tx, placement)
	if err != nil {
		return nil, false, err
	}
	occupied := false
	if p.Dedicated {
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenantry_registry.tenants WHERE placement = $1)`, placement).Scan(&occupied)
		if err != nil {
			return nil, false, err
		}
	}
	return p, occupied, nil
}

// readPlacement returns a configured placement with its stored policy, or
// the default policy (open, shared) when none was ever set.
func (s *Store) readPlacement(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (*tenant.Placement, error) {
	p := s.placementOf(name)
	err := q.QueryRow(ctx, `SELECT closed, dedicated, update_time, version FROM tenantry_registry.placements WHERE name = $1`, name).
		Scan(&p.Closed, &p.Dedicated, &p.UpdateTime, &p.Version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	p.UpdateTime = p.UpdateTime.UTC()
	return p, nil
}

// placementOf describes a configured placement's database, without its
// policy: host, port and database name, never the URL's credentials.
func (s *Store) placementOf(name string) *tenant.Placement {
	p := &tenant.Placement{Name: name, RegistryDatabase: s.sharesRegistryDB(name)}
	if pool, ok := s.placements[name]; ok {
		cc := pool.Config().ConnConfig
		p.Host, p.Database = cc.Host, cc.Database
		if !strings.HasPrefix(cc.Host, "/") { // a TCP host, not a Unix socket directory
			p.Host = net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
		}
	}
	return p
}

// Placements implements tenant.Store.
func (s *Store) Placements(ctx context.Context) ([]*tenant.Placement, error) {
	names := make([]string, 0, len(s.placements))
	for name := range s.placements {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]*tenant.Placement, len(names))
	byName := make(map[string]*tenant.Placement, len(names))
	for i, name := range names {
		out[i] = s.placementOf(name)
		byName[name] = out[i]
	}
	rows, err := s.db.Query(ctx, `SELECT name, closed, dedicated, update_time, version FROM tenantry_registry.placements`)
	if err != nil {
		return nil, dbError(err, "read placement policies")
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name              string
			closed, dedicated bool
			updated           time.Time
			version           int64
		)
		if err := rows.Scan(&name, &closed, &dedicated, &updated, &version); err != nil {
			return nil, dbError(err, "read placement policies")
		}
		// The policy of a placement no longer configured is kept, should
		// it come back, but not shown.
		if p, ok := byName[name]; ok {
			p.Closed, p.Dedicated, p.UpdateTime, p.Version = closed, dedicated, updated.UTC(), version
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err, "read placement policies")
	}
	return out, nil
}

// CountTenants implements tenant.Store.
func (s *Store) CountTenants(ctx context.Context, placements ...string) (map[string]int, error) {
	sql := `SELECT placement, count(*) FROM tenantry_registry.tenants GROUP BY placement`
	var args []any
	if len(placements) > 0 {
		sql = `SELECT placement, count(*) FROM tenantry_registry.tenants WHERE placement = ANY($1) GROUP BY placement`
		args = append(args, placements)
	}
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError(err, "count tenants by placement")
	}
	counts := map[string]int{}
	var (
		name string
		n    int
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		counts[name] = n
		return nil
	})
	if err != nil {
		return nil, dbError(err, "count tenants by placement")
	}
	return counts, nil
}

// MutatePlacement implements tenant.Store.
func (s *Store) MutatePlacement(ctx context.Context, name string, change func(*tenant.Placement) error) (*tenant.Placement, error) {
	if !s.HasPlacement(name) {
		return nil, fault.New(fault.NotFound, tenant.ReasonPlacementNotFound,
			"placement %q is not configured on this registry (DATABASE_URL is \"default\"; TENANTRY_PLACEMENTS lists the others)", name)
	}
	var updated *tenant.Placement
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		cur, _, err := s.lockPlacement(ctx, tx, name, true)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenantry_registry.tenants WHERE placement = $1`, name).Scan(&cur.Tenants); err != nil {
			return err
		}
		next := *cur
		if err := change(&next); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO tenantry_registry.placements AS p (name, closed, dedicated, update_time)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (name) DO UPDATE SET closed = $2, dedicated = $3, update_time = $4, version = p.version + 1
			RETURNING version`, name, next.Closed, next.Dedicated, next.UpdateTime).Scan(&next.Version)
		if err != nil {
			return err
		}
		updated = &next
		return nil
	})
	if err != nil {
		return nil, dbError(err, fmt.Sprintf("update placement %q", name))
	}
	return updated, nil
}

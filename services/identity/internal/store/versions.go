package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantdb"
)

// MigrateFunc asks the registry to bring one tenant's identity tables up
// to date and returns once it has (component.Client.Migrate of one tenant).
type MigrateFunc func(ctx context.Context, slug string) error

// ReasonTenantNotMigrated is the reason of calls for a tenant whose
// identity tables are behind and could not be brought up to date.
const ReasonTenantNotMigrated = "TENANT_NOT_MIGRATED"

// migrateWait bounds a first use's wait for the registry to migrate the
// tenant; the migration itself goes on in the registry regardless.
const migrateWait = 30 * time.Second

// versions knows which tenant schemas have identity's latest tables.
//
// Every tenant created since identity registered got them in CreateTenant,
// and identity asks for a fleet migration at start-up, so a tenant behind
// is one that start-up migration has not reached yet (or one it failed):
// its first use asks the registry to migrate that tenant alone and waits.
// Once a schema is known current, the check is a map lookup.
type versions struct {
	pools   map[string]*pgxpool.Pool
	latest  int
	migrate MigrateFunc

	mu       sync.RWMutex
	current  map[string]struct{} // placement + "\x00" + schema
	inflight singleflight.Group
}

func newVersions(pools map[string]*pgxpool.Pool, latest int, migrate MigrateFunc) *versions {
	return &versions{pools: pools, latest: latest, migrate: migrate, current: map[string]struct{}{}}
}

func versionKey(t tenancy.Tenant) string { return t.Placement + "\x00" + t.Schema }

func (v *versions) isCurrent(key string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, ok := v.current[key]
	return ok
}

// ensure returns nil once t's schema has identity's latest version.
// Concurrent first uses of a tenant share one check (and migration); each
// caller stops waiting when its own ctx ends.
func (v *versions) ensure(ctx context.Context, pool *pgxpool.Pool, t tenancy.Tenant) error {
	key := versionKey(t)
	if v.isCurrent(key) {
		return nil
	}
	done := v.inflight.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), migrateWait)
		defer cancel()
		return nil, v.check(ctx, pool, t, key)
	})
	select {
	case r := <-done:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("wait for tenant %q's identity tables: %w", t.Slug, context.Cause(ctx))
	}
}

func (v *versions) check(ctx context.Context, pool *pgxpool.Pool, t tenancy.Tenant, key string) error {
	have, err := tenantdb.RecordedVersion(ctx, pool, t.Schema, Component)
	if err != nil {
		return err
	}
	if have < v.latest && v.migrate != nil {
		if err := v.migrate(ctx, t.Slug); err != nil {
			return fault.New(fault.Unavailable, ReasonTenantNotMigrated,
				"tenant %q's identity tables are at version %d of %d and the registry could not bring them up to date yet; retry shortly", t.Slug, have, v.latest).WithCause(err)
		}
		if have, err = tenantdb.RecordedVersion(ctx, pool, t.Schema, Component); err != nil {
			return err
		}
	}
	if have < v.latest {
		return fault.New(fault.Unavailable, ReasonTenantNotMigrated,
			"tenant %q's identity tables are at version %d of %d; the registry has not migrated it yet; retry shortly", t.Slug, have, v.latest)
	}
	// A schema newer than this binary (a rolling deploy) is served too:
	// migrations only add what older code can ignore (expand, then
	// contract once no older replica runs).
	v.mu.Lock()
	v.current[key] = struct{}{}
	v.mu.Unlock()
	return nil
}

// forget drops a purged tenant's schema, so that a tenant created later
// with the same schema name is checked again.
func (v *versions) forget(t tenancy.Tenant) {
	v.mu.Lock()
	delete(v.current, versionKey(t))
	v.mu.Unlock()
}

package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

// applyIn stands in for the registry's fleet migration of one tenant in
// these store-level tests: it applies identity's migrations to the schema
// named like the slug with tenantdb.Apply, as the registry does (without
// the tenant role, which the registry's own tests cover). The server tests
// run the real registry.
func applyIn(pool *pgxpool.Pool) store.MigrateFunc {
	return func(ctx context.Context, slug string) error {
		migs, err := store.Migrations()
		if err != nil {
			return err
		}
		if err := tenantdb.SetupBookkeeping(ctx, pool); err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, _, err := tenantdb.Apply(ctx, tx, slug, store.Component, migs)
			return err
		})
	}
}

func TestATenantBehindIsMigratedOnFirstUseOnce(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	for _, schema := range []string{"acme", "globex"} {
		_, err = pool.Exec(ctx, "CREATE SCHEMA "+schema)
		require.NoError(t, err)
	}
	pools := map[string]*pgxpool.Pool{tenantdb.DefaultPlacement: pool}
	calls := map[string]int{}
	apply := applyIn(pool)
	migrate := func(ctx context.Context, slug string) error {
		calls[slug]++
		if slug == "globex" {
			return errors.New("the registry is away")
		}
		return apply(ctx, slug)
	}
	s, err := store.New(pools, nil, migrate, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)

	acme := tenancy.Tenant{Slug: "acme", Schema: "acme", Placement: tenantdb.DefaultPlacement}
	for range 3 {
		require.NoError(t, s.InTenant(ctx, acme, func(ctx context.Context, tx account.Tx) error {
			_, err := tx.Settings(ctx)
			return err
		}))
	}
	require.Equal(t, 1, calls["acme"], "a tenant known current is not checked again")

	globex := tenancy.Tenant{Slug: "globex", Schema: "globex", Placement: tenantdb.DefaultPlacement}
	ran := false
	err = s.InTenant(ctx, globex, func(context.Context, account.Tx) error { ran = true; return nil })
	require.Error(t, err)
	require.False(t, ran, "a call ran in a tenant without identity's tables")
	require.Equal(t, fault.Unavailable, fault.KindOf(err))
	require.Equal(t, store.ReasonTenantNotMigrated, fault.ReasonOf(err))
	require.Contains(t, err.Error(), "version 0 of")
}

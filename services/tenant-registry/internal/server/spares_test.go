package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/tenant-registry/internal/config"
)

// spares counts the spare schemas of the registry's database.
func (r *registry) spares() int {
	r.t.Helper()
	var n int
	require.NoError(r.t, r.db.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace
		WHERE starts_with(nspname, 'tenantry_spare_') AND obj_description(oid, 'pg_namespace') = 'tenantry:spare'`).Scan(&n))
	return n
}

func (r *registry) waitSpares(want int) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.spares() < want {
		require.True(r.t, time.Now().Before(deadline), "the registry did not prepare %d spare schemas (has %d)", want, r.spares())
		time.Sleep(20 * time.Millisecond) // polling, as an operator would
	}
}

// Schemas prepared ahead with every component are renamed to new tenants'
// schemas: the tenant gets the components' tables (brought to the latest
// version at claim time), the spare is refilled, and concurrent creates
// never share one.
func TestSpareSchemasBecomeTenants(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "", func(c *config.Config) { c.SpareSchemas = 3 })
	require.Zero(t, r.spares(), "spares are prepared only once a component is registered")
	_, err := r.register(notes())
	require.NoError(t, err)
	r.waitSpares(3)
	rows, err := r.db.Query(context.Background(), `SELECT oid::bigint FROM pg_namespace WHERE starts_with(nspname, 'tenantry_spare_')`)
	require.NoError(t, err)
	spareOIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)

	acme := r.create("acme")
	var acmeOID int64
	require.NoError(t, r.db.QueryRow(context.Background(), `SELECT oid::bigint FROM pg_namespace WHERE nspname = 'acme'`).Scan(&acmeOID))
	require.Contains(t, spareOIDs, acmeOID, "the tenant's schema is a spare, renamed")
	require.Equal(t, registryv1.Tenant_STATE_ACTIVE, acme.GetState())
	require.Equal(t, []string{"id", "owner", "body", "title"}, columns(t, r.db, "acme", "notes"))
	require.Equal(t, map[string][2]int32{"notes": {2, 2}}, r.versions("acme"))
	var comment string
	require.NoError(t, r.db.QueryRow(context.Background(), `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'acme'`).Scan(&comment))
	require.Contains(t, comment, acme.GetUid(), "the schema is marked as the tenant's")
	r.waitSpares(3)

	t.Run("a spare prepared before a new version gets it when claimed", func(t *testing.T) {
		_, err := r.register(notesV2())
		require.NoError(t, err)
		r.create("globex")
		require.Equal(t, map[string][2]int32{"notes": {3, 3}}, r.versions("globex"))
		require.Contains(t, columns(t, r.db, "globex", "notes"), "pinned")
	})

	t.Run("concurrent creates take different spares or build their own", func(t *testing.T) {
		r.waitSpares(3)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: fmt.Sprintf("burst%d", i)})
				require.NoError(t, err)
			}()
		}
		wg.Wait()
		for i := range 8 {
			slug := fmt.Sprintf("burst%d", i)
			require.Equal(t, map[string][2]int32{"notes": {3, 3}}, r.versions(slug), slug)
			require.Contains(t, columns(t, r.db, slug, "notes"), "pinned", slug)
		}
	})

	t.Run("a purge drops the tenant's schema and leaves the spares alone", func(t *testing.T) {
		r.waitSpares(3)
		_, err := r.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/acme", Force: true})
		require.NoError(t, err)
		require.False(t, schemaExists(t, r.db, "acme"))
		require.Equal(t, 3, r.spares())
	})
}

// A version applied only in spare schemas may still change: spares are no
// tenant's. Those prepared with the old SQL are dropped, so no tenant gets it.
func TestSparesDoNotHoldAVersionBack(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "", func(c *config.Config) { c.SpareSchemas = 2 })
	draft := func(sql string) *registryv1.Component {
		return &registryv1.Component{Name: "components/draft", Migrations: []*registryv1.Migration{{Version: 1, Name: "v1", Sql: sql}}}
	}
	_, err := r.register(draft(`CREATE TABLE drafts (a int)`))
	require.NoError(t, err)
	r.waitSpares(2)
	_, err = r.register(draft(`CREATE TABLE drafts (b int)`))
	require.NoError(t, err, "only spares have version 1")
	r.create("acme")
	require.Equal(t, []string{"b"}, columns(t, r.db, "acme", "drafts"))
}

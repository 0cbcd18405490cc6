package tenantdb_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

// benchTenantCounts are the schema counts the read benchmarks cycle through:
// one (a hot tenant) and more than pgx's per-connection statement cache (512)
// holds, as with many active tenants.
var benchTenantCounts = []int{1, 1000}

// createBenchTenants creates n tenant schemas, each with a users table of
// 100 rows, in one round trip, and returns their names.
func createBenchTenants(b *testing.B, pool *pgxpool.Pool, n int) []string {
	b.Helper()
	_, err := pool.Exec(context.Background(), fmt.Sprintf(`
		DO $$
		BEGIN
			FOR i IN 1..%d LOOP
				EXECUTE format('CREATE SCHEMA %%I', 'tenant_' || lpad(i::text, 4, '0'));
				EXECUTE format('CREATE TABLE %%I.users (id bigint PRIMARY KEY, name text NOT NULL)', 'tenant_' || lpad(i::text, 4, '0'));
				EXECUTE format('INSERT INTO %%I.users SELECT g, ''user '' || g FROM generate_series(1, 100) g', 'tenant_' || lpad(i::text, 4, '0'));
			END LOOP;
		END
		$$`, n))
	require.NoError(b, err)
	_, err = pool.Exec(context.Background(), "ANALYZE")
	require.NoError(b, err)
	return tenantNames(n)
}

// BenchmarkInTenantSetLocal reads one row by primary key in a transaction
// that sets search_path with InTenant: one extra round trip per transaction,
// one SQL text for every tenant.
func BenchmarkInTenantSetLocal(b *testing.B) {
	ctx := context.Background()
	var counter statementCounter
	pool := newPool(b, pgtest.NewDatabase(b), tenantdb.PoolOptions{Tracer: &counter})
	all := createBenchTenants(b, pool, benchTenantCounts[len(benchTenantCounts)-1])

	for _, n := range benchTenantCounts {
		schemas := all[:n]
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			var name string
			i := 0
			counter.count()
			counter.prepared.Store(0)
			for b.Loop() {
				err := tenantdb.InTenant(ctx, pool, schemas[i%n], func(ctx context.Context, tx pgx.Tx) error {
					return tx.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", i%100+1).Scan(&name)
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			counter.report(b)
		})
	}
}

// BenchmarkSchemaQualified does the same read with schema-qualified SQL and
// no search_path change: no extra round trip, but one SQL text, and so one
// prepared statement per connection, for each tenant.
func BenchmarkSchemaQualified(b *testing.B) {
	ctx := context.Background()
	var counter statementCounter
	pool := newPool(b, pgtest.NewDatabase(b), tenantdb.PoolOptions{Tracer: &counter})
	all := createBenchTenants(b, pool, benchTenantCounts[len(benchTenantCounts)-1])
	queries := make([]string, len(all))
	for i, s := range all {
		queries[i] = "SELECT name FROM " + tenantdb.QualifiedName(s, "users") + " WHERE id = $1"
	}

	for _, n := range benchTenantCounts {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			var name string
			i := 0
			counter.count()
			counter.prepared.Store(0)
			for b.Loop() {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					return tx.QueryRow(ctx, queries[i%n], i%100+1).Scan(&name)
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			counter.report(b)
		})
	}
}

// discardLogger keeps benchmark output to the figures.
var discardLogger = slog.New(slog.DiscardHandler)

// recordCurrentSchemas records n schemas (which need not exist) as fully
// migrated for migrator's component and returns their names.
func recordCurrentSchemas(t testing.TB, migrator *tenantdb.Migrator, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, migrator.Setup(ctx))
	_, err := pool.Exec(ctx, `
		INSERT INTO tenantry_meta.schema_versions (schema_name, component, version)
		SELECT 'tenant_' || lpad(g::text, greatest(4, length(g::text)), '0'), 'identity', $1
		FROM generate_series(1, $2::int) g`, migrator.Latest(), n)
	require.NoError(t, err)
	return tenantNames(n)
}

// BenchmarkMigrateAllUpToDate is the start-up check of a service with 10,000
// current tenants: one query, whatever the count.
func BenchmarkMigrateAllUpToDate(b *testing.B) {
	ctx := context.Background()
	var counter statementCounter
	pool := newPool(b, pgtest.NewDatabase(b), tenantdb.PoolOptions{Tracer: &counter})
	migrator, err := tenantdb.NewMigrator(pool, "identity", loadTestMigrations(b), discardLogger)
	require.NoError(b, err)
	schemas := recordCurrentSchemas(b, migrator, pool, 10_000)

	counter.count()
	counter.prepared.Store(0)
	for b.Loop() {
		report, err := migrator.MigrateAll(ctx, schemas, tenantdb.MigrateAllOptions{})
		if err != nil || report.UpToDate != len(schemas) {
			b.Fatalf("report %+v, error %v", report, err)
		}
	}
	counter.report(b)
}

// BenchmarkEnsureMigratedCached is the hot path of every request after a
// tenant's first.
func BenchmarkEnsureMigratedCached(b *testing.B) {
	ctx := context.Background()
	pool := newPool(b, pgtest.NewDatabase(b), tenantdb.PoolOptions{})
	migrator, err := tenantdb.NewMigrator(pool, "identity", loadTestMigrations(b), discardLogger)
	require.NoError(b, err)
	schemas := recordCurrentSchemas(b, migrator, pool, 1000)
	_, err = migrator.MigrateAll(ctx, schemas, tenantdb.MigrateAllOptions{})
	require.NoError(b, err)

	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := migrator.EnsureMigrated(ctx, schemas[i%len(schemas)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkCatalogCacheGrowth measures what the package documentation warns
// about: a fresh backend reads one row from each of 500 tenants (the test
// migrations: three tables, six relations per tenant) and its catalog cache
// grows by cache-bytes/tenant, memory it keeps until the connection closes.
func BenchmarkCatalogCacheGrowth(b *testing.B) {
	const tenants = 500
	ctx := context.Background()
	url := pgtest.NewDatabase(b)
	pool := newPool(b, url, tenantdb.PoolOptions{})
	migrator, err := tenantdb.NewMigrator(pool, "identity", loadTestMigrations(b), discardLogger)
	require.NoError(b, err)
	schemas := tenantNames(tenants)
	createSchemas(b, pool, schemas...)
	_, err = migrator.MigrateAll(ctx, schemas, tenantdb.MigrateAllOptions{})
	require.NoError(b, err)

	const cacheBytes = `
		SELECT sum(total_bytes) FROM pg_backend_memory_contexts
		WHERE name = 'CacheMemoryContext' OR parent = 'CacheMemoryContext'`
	var grown int64
	for b.Loop() {
		conn, err := pgx.Connect(ctx, url)
		require.NoError(b, err)
		var before, after int64
		require.NoError(b, conn.QueryRow(ctx, cacheBytes).Scan(&before))
		for _, s := range schemas {
			err := tenantdb.InTenant(ctx, conn, s, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "SELECT u.name FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 1")
				return err
			})
			require.NoError(b, err)
		}
		require.NoError(b, conn.QueryRow(ctx, cacheBytes).Scan(&after))
		require.NoError(b, conn.Close(ctx))
		grown += after - before
	}
	b.ReportMetric(float64(grown)/float64(b.N)/tenants, "cache-bytes/tenant")
}

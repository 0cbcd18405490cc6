package tenantdb_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

// recordedVersion returns the version recorded for schema and component, or
// -1 if there is none.
func recordedVersion(t *testing.T, pool *pgxpool.Pool, schema, component string) int {
	t.Helper()
	var version int
	err := pool.QueryRow(context.Background(), `
		SELECT COALESCE((SELECT version FROM tenantry_meta.schema_versions
		                 WHERE schema_name = $1 AND component = $2), -1)`,
		schema, component).Scan(&version)
	require.NoError(t, err)
	return version
}

// appliedLog returns the versions the test migrations logged in schema, in
// the order they ran.
func appliedLog(t *testing.T, pool *pgxpool.Pool, schema string) []int {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT version FROM "+tenantdb.QualifiedName(schema, "applied")+" ORDER BY ctid")
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return versions
}

// tableExists reports whether schema.table exists.
func tableExists(t *testing.T, pool *pgxpool.Pool, schema, table string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT to_regclass($1) IS NOT NULL", tenantdb.QualifiedName(schema, table)).Scan(&exists))
	return exists
}

func TestNewMigrator(t *testing.T) {
	t.Parallel()
	// pgxpool connects lazily, and NewMigrator must not connect at all.
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/unused")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	good := loadTestMigrations(t)

	tests := []struct {
		name       string
		pool       *pgxpool.Pool
		component  string
		migrations []tenantdb.Migration
		wantErr    string
	}{
		{"a nil pool is rejected", nil, "identity", good, "nil pool"},
		{"an empty component is rejected", pool, "", good, "empty component"},
		{"no migrations are rejected", pool, "identity", nil, "none given"},
		{"unnumbered migrations are rejected", pool, "identity", []tenantdb.Migration{{Version: 2, Name: "b", SQL: "SELECT 1"}}, "version 1 is missing"},
		{"migrations without SQL are rejected", pool, "identity", []tenantdb.Migration{{Version: 1, Name: "a"}}, "has no SQL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tenantdb.NewMigrator(tt.pool, tt.component, tt.migrations, testLogger(t))
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, pgtest.NewDatabase(t), tenantdb.PoolOptions{})
	migrations := loadTestMigrations(t)
	migrator, err := tenantdb.NewMigrator(pool, "identity", migrations, testLogger(t))
	require.NoError(t, err)
	require.NoError(t, migrator.Setup(ctx))

	t.Run("applies every migration in order and records the version", func(t *testing.T) {
		t.Parallel()
		createSchemas(t, pool, "tenant_fresh")
		res, err := migrator.Migrate(ctx, "tenant_fresh")
		require.NoError(t, err)
		require.Equal(t, "tenant_fresh", res.Schema)
		require.Equal(t, 0, res.From)
		require.Equal(t, 3, res.To)
		require.NoError(t, res.Err)
		require.Positive(t, res.Duration)
		require.Equal(t, 3, recordedVersion(t, pool, "tenant_fresh", "identity"))
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_fresh"))
		require.True(t, tableExists(t, pool, "tenant_fresh", "orders"))
		require.False(t, tableExists(t, pool, "public", "users"), "nothing lands in public")

		res, err = migrator.Migrate(ctx, "tenant_fresh")
		require.NoError(t, err)
		require.Equal(t, 3, res.From)
		require.Equal(t, 3, res.To)
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_fresh"), "nothing ran twice")
	})

	t.Run("applies only the pending migrations", func(t *testing.T) {
		t.Parallel()
		createSchemas(t, pool, "tenant_upgrade")
		older, err := tenantdb.NewMigrator(pool, "identity", migrations[:1], testLogger(t))
		require.NoError(t, err)
		res, err := older.Migrate(ctx, "tenant_upgrade")
		require.NoError(t, err)
		require.Equal(t, 1, res.To)

		res, err = migrator.Migrate(ctx, "tenant_upgrade")
		require.NoError(t, err)
		require.Equal(t, 1, res.From)
		require.Equal(t, 3, res.To)
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_upgrade"))
	})

	t.Run("a failing migration leaves the schema as it was", func(t *testing.T) {
		t.Parallel()
		createSchemas(t, pool, "tenant_broken_new", "tenant_broken_old")
		broken := append(append([]tenantdb.Migration{}, migrations[:2]...),
			tenantdb.Migration{Version: 3, Name: "broken", SQL: "ALTER TABLE users ADD COLUMN nope no_such_type"})
		brokenMigrator, err := tenantdb.NewMigrator(pool, "identity", broken, testLogger(t))
		require.NoError(t, err)

		res, err := brokenMigrator.Migrate(ctx, "tenant_broken_new")
		require.ErrorContains(t, err, "migration 3 broken")
		require.ErrorContains(t, err, `"tenant_broken_new"`)
		require.Equal(t, res.Err, err)
		require.Equal(t, 0, res.From)
		require.Equal(t, 0, res.To)
		require.Equal(t, -1, recordedVersion(t, pool, "tenant_broken_new", "identity"))
		for _, table := range []string{"applied", "users", "orders"} {
			require.False(t, tableExists(t, pool, "tenant_broken_new", table), "%s was rolled back", table)
		}

		older, err := tenantdb.NewMigrator(pool, "identity", migrations[:1], testLogger(t))
		require.NoError(t, err)
		_, err = older.Migrate(ctx, "tenant_broken_old")
		require.NoError(t, err)
		res, err = brokenMigrator.Migrate(ctx, "tenant_broken_old")
		require.Error(t, err)
		require.Equal(t, 1, res.From)
		require.Equal(t, 1, res.To)
		require.Equal(t, 1, recordedVersion(t, pool, "tenant_broken_old", "identity"))
		require.False(t, tableExists(t, pool, "tenant_broken_old", "orders"), "migration 2 of the failed run was rolled back")
		require.Equal(t, []int{1}, appliedLog(t, pool, "tenant_broken_old"))
	})

	t.Run("a missing schema fails clearly and records nothing", func(t *testing.T) {
		t.Parallel()
		res, err := migrator.Migrate(ctx, "tenant_missing")
		require.ErrorIs(t, err, tenantdb.ErrSchemaNotFound)
		require.ErrorContains(t, err, `"tenant_missing"`)
		require.Equal(t, 0, res.To)
		require.Equal(t, -1, recordedVersion(t, pool, "tenant_missing", "identity"))
	})

	t.Run("an invalid schema name is rejected", func(t *testing.T) {
		t.Parallel()
		_, err := migrator.Migrate(ctx, "")
		require.ErrorIs(t, err, tenantdb.ErrInvalidSchemaName)
	})

	t.Run("components sharing a schema keep their own versions", func(t *testing.T) {
		t.Parallel()
		createSchemas(t, pool, "tenant_shared")
		billing, err := tenantdb.NewMigrator(pool, "billing", []tenantdb.Migration{
			{Version: 1, Name: "create_invoices", SQL: "CREATE TABLE invoices (id bigint PRIMARY KEY)"},
		}, testLogger(t))
		require.NoError(t, err)

		_, err = migrator.Migrate(ctx, "tenant_shared")
		require.NoError(t, err)
		res, err := billing.Migrate(ctx, "tenant_shared")
		require.NoError(t, err)
		require.Equal(t, 0, res.From, "identity's version does not count for billing")
		require.Equal(t, 3, recordedVersion(t, pool, "tenant_shared", "identity"))
		require.Equal(t, 1, recordedVersion(t, pool, "tenant_shared", "billing"))
		require.True(t, tableExists(t, pool, "tenant_shared", "invoices"))
	})

	t.Run("a schema newer than the binary is left alone", func(t *testing.T) {
		t.Parallel()
		createSchemas(t, pool, "tenant_future")
		_, err := pool.Exec(ctx, `INSERT INTO tenantry_meta.schema_versions (schema_name, component, version) VALUES ('tenant_future', 'identity', 7)`)
		require.NoError(t, err)
		res, err := migrator.Migrate(ctx, "tenant_future")
		require.NoError(t, err)
		require.Equal(t, 7, res.From)
		require.Equal(t, 7, res.To)
		require.False(t, tableExists(t, pool, "tenant_future", "users"))
	})
}

func TestSetupIsSafeToRunConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pools := []*pgxpool.Pool{newPool(t, url, tenantdb.PoolOptions{}), newPool(t, url, tenantdb.PoolOptions{})}
	migrations := loadTestMigrations(t)

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		// Separate Migrators, as separate processes would have.
		migrator, err := tenantdb.NewMigrator(pools[i%2], "identity", migrations, testLogger(t))
		require.NoError(t, err)
		wg.Go(func() { errs[i] = migrator.Setup(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestEnsureMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	migrations := loadTestMigrations(t)
	// Migration 1 lingers so that concurrent callers really overlap.
	migrations[0].SQL += "\nSELECT pg_sleep(0.1);"

	t.Run("concurrent first uses across goroutines and processes apply each migration once", func(t *testing.T) {
		t.Parallel()
		// Two pools and two Migrators stand for two service processes.
		var migrators []*tenantdb.Migrator
		pools := []*pgxpool.Pool{newPool(t, url, tenantdb.PoolOptions{}), newPool(t, url, tenantdb.PoolOptions{})}
		for _, pool := range pools {
			m, err := tenantdb.NewMigrator(pool, "identity", migrations, testLogger(t))
			require.NoError(t, err)
			migrators = append(migrators, m)
		}
		createSchemas(t, pools[0], "tenant_race")

		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Go(func() { errs[i] = migrators[i%2].EnsureMigrated(ctx, "tenant_race") })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pools[0], "tenant_race"))
		require.Equal(t, 3, recordedVersion(t, pools[0], "tenant_race", "identity"))
	})

	t.Run("a current schema costs no statement until forgotten", func(t *testing.T) {
		t.Parallel()
		var counter statementCounter
		pool := newPool(t, url, tenantdb.PoolOptions{Tracer: &counter})
		migrator, err := tenantdb.NewMigrator(pool, "identity", migrations, testLogger(t))
		require.NoError(t, err)
		createSchemas(t, pool, "tenant_cached")

		require.NoError(t, migrator.EnsureMigrated(ctx, "tenant_cached"))
		require.Positive(t, counter.count())
		for range 100 {
			require.NoError(t, migrator.EnsureMigrated(ctx, "tenant_cached"))
		}
		require.Zero(t, counter.count())

		migrator.Forget("tenant_cached")
		require.NoError(t, migrator.EnsureMigrated(ctx, "tenant_cached"))
		require.Positive(t, counter.count(), "a forgotten schema is checked again")
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_cached"))
	})

	t.Run("a failure is returned and not cached", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, url, tenantdb.PoolOptions{})
		migrator, err := tenantdb.NewMigrator(pool, "identity", migrations, testLogger(t))
		require.NoError(t, err)
		require.ErrorIs(t, migrator.EnsureMigrated(ctx, "tenant_later"), tenantdb.ErrSchemaNotFound)

		createSchemas(t, pool, "tenant_later")
		require.NoError(t, migrator.EnsureMigrated(ctx, "tenant_later"))
		require.Equal(t, 3, recordedVersion(t, pool, "tenant_later", "identity"))
	})

	t.Run("a purged and recreated tenant is migrated afresh", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, url, tenantdb.PoolOptions{})
		migrator, err := tenantdb.NewMigrator(pool, "identity", migrations, testLogger(t))
		require.NoError(t, err)
		createSchemas(t, pool, "tenant_purged")
		require.NoError(t, migrator.EnsureMigrated(ctx, "tenant_purged"))

		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "DROP SCHEMA tenant_purged CASCADE"); err != nil {
				return err
			}
			return tenantdb.DeleteSchemaVersions(ctx, tx, "tenant_purged")
		})
		require.NoError(t, err)
		migrator.Forget("tenant_purged")
		require.Equal(t, -1, recordedVersion(t, pool, "tenant_purged", "identity"))

		createSchemas(t, pool, "tenant_purged")
		require.NoError(t, migrator.EnsureMigrated(ctx, "tenant_purged"))
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_purged"))
	})

	t.Run("a caller that gives up stops waiting", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, url, tenantdb.PoolOptions{})
		migrator, err := tenantdb.NewMigrator(pool, "identity", migrations, testLogger(t))
		require.NoError(t, err)
		createSchemas(t, pool, "tenant_impatient")
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, migrator.EnsureMigrated(cancelled, "tenant_impatient"), context.Canceled)
		// The migration it started still completes for the next caller.
		require.NoError(t, migrator.EnsureMigrated(ctx, "tenant_impatient"))
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_impatient"))
	})
}

func TestDeleteSchemaVersionsWithoutBookkeeping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, pgtest.NewDatabase(t), tenantdb.PoolOptions{})
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tenantdb.DeleteSchemaVersions(ctx, tx, "tenant_x"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT 1")
		return err
	})
	require.NoError(t, err, "the caller's transaction stays usable")
}

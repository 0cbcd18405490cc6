package tenantdb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

// tenantNames returns n schema names, tenant_0001 onwards.
func tenantNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("tenant_%04d", i+1)
	}
	return names
}

func TestMigrateAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var counter statementCounter
	pool := newPool(t, pgtest.NewDatabase(t), tenantdb.PoolOptions{MaxConns: 8, Tracer: &counter})
	migrator, err := tenantdb.NewMigrator(pool, "identity", loadTestMigrations(t), testLogger(t))
	require.NoError(t, err)

	schemas := tenantNames(200)
	createSchemas(t, pool, schemas...)
	// A quarter are already current, so the run must skip them.
	_, err = migrator.MigrateAll(ctx, schemas[:50], tenantdb.MigrateAllOptions{Concurrency: 8})
	require.NoError(t, err)
	// The missing schema sits in the middle so the others around it go on.
	input := append(append(append([]string{}, schemas[:100]...), "tenant_missing", "", schemas[0]), schemas[100:]...)

	t.Run("migrates only stale schemas and reports every one", func(t *testing.T) {
		var progress []tenantdb.Progress
		report, err := migrator.MigrateAll(ctx, input, tenantdb.MigrateAllOptions{
			Concurrency: 6,
			Progress:    func(p tenantdb.Progress) { progress = append(progress, p) },
		})
		require.ErrorIs(t, err, tenantdb.ErrSchemasFailed)
		require.ErrorContains(t, err, "2 of 152")

		require.Equal(t, 202, report.Total, "200 schemas, the missing one and the empty name; the duplicate counts once")
		require.Equal(t, 50, report.UpToDate)
		require.Len(t, report.Results, 152)
		require.Len(t, report.Failed, 2)
		require.Equal(t, "tenant_missing", report.Failed[0].Schema)
		require.ErrorIs(t, report.Failed[0].Err, tenantdb.ErrSchemaNotFound)
		require.Equal(t, "", report.Failed[1].Schema)
		require.ErrorIs(t, report.Failed[1].Err, tenantdb.ErrInvalidSchemaName)

		// Results follow the input order.
		require.Equal(t, "tenant_0051", report.Results[0].Schema)
		require.Equal(t, "tenant_missing", report.Results[50].Schema)
		require.Equal(t, "tenant_0200", report.Results[151].Schema)
		for _, res := range report.Results {
			if res.Err == nil {
				require.Equal(t, 0, res.From, res.Schema)
				require.Equal(t, 3, res.To, res.Schema)
			}
		}

		require.Len(t, progress, 152)
		for i, p := range progress {
			require.Equal(t, i+1, p.Done)
			require.Equal(t, 152, p.Total)
		}
		require.Equal(t, 2, progress[151].Failed)

		var current int
		require.NoError(t, pool.QueryRow(ctx, `
			SELECT count(*) FROM tenantry_meta.schema_versions
			WHERE component = 'identity' AND version = 3`).Scan(&current))
		require.Equal(t, 200, current)
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_0001"), "pre-migrated schemas were not touched")
		require.Equal(t, []int{1, 2, 3}, appliedLog(t, pool, "tenant_0200"))
	})

	t.Run("a second run migrates nothing in one statement", func(t *testing.T) {
		counter.count()
		report, err := migrator.MigrateAll(ctx, schemas, tenantdb.MigrateAllOptions{})
		require.NoError(t, err)
		require.Equal(t, 200, report.UpToDate)
		require.Empty(t, report.Results)
		require.Empty(t, report.Failed)
		require.Equal(t, int64(1), counter.count())
	})

	t.Run("current schemas need no statement on first use", func(t *testing.T) {
		counter.count()
		for _, s := range schemas {
			require.NoError(t, migrator.EnsureMigrated(ctx, s))
		}
		require.Zero(t, counter.count())
	})
}

func TestMigrateAllOverTenThousandCurrentSchemasIsOneStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var counter statementCounter
	pool := newPool(t, pgtest.NewDatabase(t), tenantdb.PoolOptions{Tracer: &counter})
	migrator, err := tenantdb.NewMigrator(pool, "identity", loadTestMigrations(t), testLogger(t))
	require.NoError(t, err)
	schemas := recordCurrentSchemas(t, migrator, pool, 10_000)

	counter.count()
	report, err := migrator.MigrateAll(ctx, schemas, tenantdb.MigrateAllOptions{})
	require.NoError(t, err)
	require.Equal(t, 10_000, report.UpToDate)
	require.Empty(t, report.Results)
	require.Equal(t, int64(1), counter.count())
}

package tenantdb_test

import (
	"context"
	"embed"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

//go:embed testdata/migrations
var testMigrations embed.FS

// loadTestMigrations returns the three migrations in testdata/migrations.
func loadTestMigrations(t testing.TB) []tenantdb.Migration {
	t.Helper()
	migrations, err := tenantdb.LoadMigrations(testMigrations, "testdata/migrations")
	require.NoError(t, err)
	return migrations
}

// newPool opens a pool on url, closed when the test ends.
func newPool(t testing.TB, url string, opts tenantdb.PoolOptions) *pgxpool.Pool {
	t.Helper()
	pool, err := tenantdb.NewPool(context.Background(), url, opts)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// createSchemas creates each schema, quoting the names as the services do.
func createSchemas(t testing.TB, pool *pgxpool.Pool, schemas ...string) {
	t.Helper()
	batch := &pgx.Batch{}
	for _, s := range schemas {
		batch.Queue("CREATE SCHEMA " + pgx.Identifier{s}.Sanitize())
	}
	require.NoError(t, pool.SendBatch(context.Background(), batch).Close())
}

// statementCounter is a pgx.QueryTracer counting every statement sent,
// BEGIN and COMMIT included, and, as a pgx.PrepareTracer, every statement
// prepared (a round trip of its own, on a statement-cache miss).
type statementCounter struct{ n, prepared atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCounter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	c.prepared.Add(1)
	return ctx
}

func (c *statementCounter) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// count returns the statements sent since the last call.
func (c *statementCounter) count() int64 { return c.n.Swap(0) }

// report adds statements and prepares per operation to a benchmark's output.
func (c *statementCounter) report(b *testing.B) {
	b.ReportMetric(float64(c.n.Swap(0))/float64(b.N), "stmts/op")
	b.ReportMetric(float64(c.prepared.Swap(0))/float64(b.N), "prepares/op")
}

// testLogger sends a Migrator's logs to the test's output, shown only when
// the test fails or runs verbosely.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

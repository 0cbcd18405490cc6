package ratelimit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// newFakeClock returns a clock at an arbitrary fixed instant.
func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newPool opens a pool on url with enough connections for the concurrency
// tests to contend in the database rather than in the pool.
func newPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// newLimiter returns a set-up Limiter on a fresh database, its pool, and the
// database URL. With a non-nil clock the limiter decides by it.
func newLimiter(t testing.TB, clock *fakeClock) (*ratelimit.Limiter, *pgxpool.Pool, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool := newPool(t, url)
	l := ratelimit.New(pool)
	require.NoError(t, l.Setup(context.Background()))
	if clock != nil {
		ratelimit.SetClock(l, clock.Now)
	}
	return l, pool, url
}

// storedTAT returns the TAT stored for a key.
func storedTAT(t *testing.T, pool *pgxpool.Pool, key string) time.Time {
	t.Helper()
	var tat time.Time
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT tat FROM tenantry_identity.rate_limits WHERE key = $1", key).Scan(&tat))
	return tat
}

// rowCount returns the number of rows in the limiter's table.
func rowCount(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT count(*) FROM tenantry_identity.rate_limits").Scan(&n))
	return n
}

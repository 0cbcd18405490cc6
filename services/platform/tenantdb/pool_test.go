package tenantdb_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

func TestNewPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)

	t.Run("recycles connections by default", func(t *testing.T) {
		t.Parallel()
		cfg := newPool(t, dbURL, tenantdb.PoolOptions{}).Config()
		require.Equal(t, 30*time.Minute, cfg.MaxConnLifetime)
		require.Equal(t, 3*time.Minute, cfg.MaxConnLifetimeJitter)
		require.Equal(t, 5*time.Minute, cfg.MaxConnIdleTime)
		require.Positive(t, cfg.MaxConns)
	})

	t.Run("options override the defaults and the URL", func(t *testing.T) {
		t.Parallel()
		cfg := newPool(t, withQuery(t, dbURL, "pool_max_conns", "9", "pool_max_conn_lifetime", "2h"), tenantdb.PoolOptions{
			MaxConns:              3,
			MaxConnLifetime:       10 * time.Minute,
			MaxConnLifetimeJitter: time.Minute,
			MaxConnIdleTime:       time.Minute,
		}).Config()
		require.Equal(t, int32(3), cfg.MaxConns)
		require.Equal(t, 10*time.Minute, cfg.MaxConnLifetime)
		require.Equal(t, time.Minute, cfg.MaxConnLifetimeJitter)
		require.Equal(t, time.Minute, cfg.MaxConnIdleTime)
	})

	t.Run("the URL's pool size is kept when MaxConns is unset", func(t *testing.T) {
		t.Parallel()
		cfg := newPool(t, withQuery(t, dbURL, "pool_max_conns", "7"), tenantdb.PoolOptions{}).Config()
		require.Equal(t, int32(7), cfg.MaxConns)
	})

	t.Run("a malformed URL is rejected", func(t *testing.T) {
		t.Parallel()
		_, err := tenantdb.NewPool(ctx, "postgres://%zz", tenantdb.PoolOptions{})
		require.ErrorContains(t, err, "parse database url")
	})

	t.Run("an unreachable server fails at once rather than on first use", func(t *testing.T) {
		t.Parallel()
		_, err := tenantdb.NewPool(ctx, "postgres://127.0.0.1:1/nowhere?connect_timeout=5", tenantdb.PoolOptions{})
		require.ErrorContains(t, err, "connect to 127.0.0.1/nowhere")
	})
}

// withQuery returns rawURL with the given key, value pairs added to its query.
func withQuery(t *testing.T, rawURL string, keyValues ...string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	q := u.Query()
	for i := 0; i+1 < len(keyValues); i += 2 {
		q.Set(keyValues[i], keyValues[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

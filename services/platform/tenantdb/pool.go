package tenantdb

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for PoolOptions; see the package documentation for why
// connections are recycled at all.
const (
	DefaultMaxConnLifetime = 30 * time.Minute
	DefaultMaxConnIdleTime = 5 * time.Minute
)

// PoolOptions tunes NewPool. Zero fields take the defaults, and set fields
// override any pool_* parameters in the URL.
type PoolOptions struct {
	// MaxConns caps open connections. Zero keeps pgxpool's choice: the URL's
	// pool_max_conns, or max(4, number of CPUs).
	MaxConns int32

	// MaxConnLifetime bounds how long one backend lives, and with it how much
	// catalog cache it can accumulate. Zero means DefaultMaxConnLifetime.
	MaxConnLifetime time.Duration

	// MaxConnLifetimeJitter adds a random extra lifetime per connection so a
	// pool opened at once does not reconnect at once. Zero means a tenth of
	// MaxConnLifetime.
	MaxConnLifetimeJitter time.Duration

	// MaxConnIdleTime closes connections idle this long, releasing their
	// caches after a burst. Zero means DefaultMaxConnIdleTime.
	MaxConnIdleTime time.Duration

	// Tracer, if set, observes every query (metrics, tracing, tests that
	// count statements).
	Tracer pgx.QueryTracer
}

// NewPool opens a connection pool for url with connection recycling suited to
// schema-per-tenant databases and checks that the database answers, so a bad
// URL fails at start-up rather than on the first request.
func NewPool(ctx context.Context, url string, opts PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors redact the password; the URL itself is not logged.
		return nil, fmt.Errorf("tenantdb: parse database url: %w", err)
	}
	opts.applyTo(cfg)

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tenantdb: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("tenantdb: connect to %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// applyTo writes the options, with defaults filled in, into cfg.
func (o PoolOptions) applyTo(cfg *pgxpool.Config) {
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	cfg.MaxConnLifetime = o.MaxConnLifetime
	if cfg.MaxConnLifetime <= 0 {
		cfg.MaxConnLifetime = DefaultMaxConnLifetime
	}
	cfg.MaxConnLifetimeJitter = o.MaxConnLifetimeJitter
	if cfg.MaxConnLifetimeJitter <= 0 {
		cfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	}
	cfg.AfterRelease = keepAfterRelease
	cfg.MaxConnIdleTime = o.MaxConnIdleTime
	if cfg.MaxConnIdleTime <= 0 {
		cfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	if o.Tracer != nil {
		cfg.ConnConfig.Tracer = o.Tracer
	}
}

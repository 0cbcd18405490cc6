package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// cleanupBatch bounds the rows one DELETE removes, so that a large backlog
// is removed in short transactions rather than one long one.
const cleanupBatch = 10000

// cleanupSQL deletes up to $2 rows that expired before $1 (the database
// clock when NULL). SKIP LOCKED leaves alone rows that a decision is writing
// right now: they are about to get a new expire_time anyway.
const cleanupSQL = `
DELETE FROM tenantry_identity.rate_limits
WHERE key IN (
	SELECT key FROM tenantry_identity.rate_limits
	WHERE expire_time < coalesce($1::timestamptz, clock_timestamp())
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)`

// Cleanup deletes the rows of keys whose limits have refilled completely and
// returns how many it deleted. Such a row means the same as no row, so
// Cleanup changes no decision; it only keeps the table as small as the set
// of recently active keys. It deletes in batches until none is left.
func (l *Limiter) Cleanup(ctx context.Context) (int64, error) {
	now := l.clockOverride()
	var total int64
	for {
		tag, err := l.pool.Exec(ctx, cleanupSQL, now, cleanupBatch)
		if err != nil {
			return total, fmt.Errorf("ratelimit: clean up expired limits: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < cleanupBatch {
			return total, nil
		}
	}
}

// DefaultCleanupInterval is how often Run cleans up when given no interval.
const DefaultCleanupInterval = time.Minute

// Run calls Cleanup now and then every interval until ctx ends; an interval
// of zero or less means DefaultCleanupInterval. Failures are logged with
// slog's default logger and retried at the next tick: a missed cleanup only
// leaves the table larger for a while. Every replica may run it; deleting is
// idempotent.
func (l *Limiter) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultCleanupInterval
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		if n, err := l.Cleanup(ctx); err != nil && ctx.Err() == nil {
			slog.WarnContext(ctx, "rate limit cleanup failed", "err", err)
		} else if n > 0 {
			slog.DebugContext(ctx, "rate limit cleanup", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

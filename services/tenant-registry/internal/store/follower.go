package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/platform/pglisten"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// Follower keeps a tenant.Index coherent with the change log. Each replica
// runs one: it loads a snapshot, then applies events in revision order when
// PostgreSQL announces them (LISTEN/NOTIFY), when this replica made a change
// (Sync), and on a timer as a safety net. It survives database restarts:
// the listening connection is re-established with backoff and the events
// missed meanwhile are read back from the log, so nothing is skipped.
type Follower struct {
	db     *pgxpool.Pool
	index  *tenant.Index
	logger *slog.Logger
	// PollInterval bounds how stale the index can get if notifications are
	// lost.
	PollInterval time.Duration

	mu sync.Mutex // serialises reads of the log, so events apply in order
}

var _ tenant.Syncer = (*Follower)(nil)

// NewFollower returns a follower feeding index from the registry database.
func NewFollower(db *pgxpool.Pool, index *tenant.Index, logger *slog.Logger) *Follower {
	if logger == nil {
		logger = slog.Default()
	}
	return &Follower{db: db, index: index, logger: logger, PollInterval: 5 * time.Second}
}

// Load fills the index with every tenant as of one consistent snapshot.
func (f *Follower) Load(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return pgx.BeginTxFunc(ctx, f.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var rev int64
		if err := tx.QueryRow(ctx, `SELECT value FROM tenantry_registry.revision`).Scan(&rev); err != nil {
			return fmt.Errorf("read revision: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT `+tenantColumns+` FROM tenantry_registry.tenants t`)
		if err != nil {
			return fmt.Errorf("load tenants: %w", err)
		}
		ts, err := collectTenants(rows)
		if err != nil {
			return fmt.Errorf("load tenants: %w", err)
		}
		f.index.Load(ts, rev)
		f.logger.InfoContext(ctx, "tenant index loaded", "tenants", len(ts), "revision", rev)
		return nil
	})
}

// Sync applies every event newer than the index's revision.
func (f *Follower) Sync(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		var batch []tenant.Event
		err := f.events(ctx, f.index.Revision(), 0, 1000, func(ev tenant.Event) error {
			batch = append(batch, ev)
			return nil
		})
		if err != nil {
			return err
		}
		f.index.Apply(batch)
		if len(batch) < 1000 {
			return nil
		}
	}
}

// Events calls fn for each event after revision `after` up to and
// including `upTo`, in order.
func (f *Follower) Events(ctx context.Context, after, upTo int64, fn func(tenant.Event) error) error {
	for after < upTo {
		last := after
		err := f.events(ctx, after, upTo, 1000, func(ev tenant.Event) error {
			last = ev.Revision
			return fn(ev)
		})
		if err != nil {
			return err
		}
		if last == after {
			return nil
		}
		after = last
	}
	return nil
}

func (f *Follower) events(ctx context.Context, after, upTo int64, limit int, fn func(tenant.Event) error) error {
	sql := `SELECT revision, kind, tenant FROM tenantry_registry.events WHERE revision > $1`
	args := []any{after}
	if upTo > 0 {
		sql += ` AND revision <= $3`
	}
	sql += ` ORDER BY revision LIMIT $2`
	args = append(args, limit)
	if upTo > 0 {
		args = append(args, upTo)
	}
	rows, err := f.db.Query(ctx, sql, args...)
	if err != nil {
		return dbError(err, "read change log")
	}
	defer rows.Close()
	var evs []tenant.Event
	for rows.Next() {
		var (
			ev   tenant.Event
			kind string
			body []byte
		)
		if err := rows.Scan(&ev.Revision, &kind, &body); err != nil {
			return dbError(err, "read change log")
		}
		ev.Kind = tenant.EventKind(kind)
		ev.Tenant = new(tenant.Tenant)
		if err := json.Unmarshal(body, ev.Tenant); err != nil {
			return fmt.Errorf("decode event %d: %w", ev.Revision, err)
		}
		compact(ev.Tenant)
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return dbError(err, "read change log")
	}
	rows.Close()
	for _, ev := range evs {
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

// Run follows the change log until ctx ends. A notification, a new
// connection (events committed while none listened are read back) and the
// poll timer all do the same: read the log from the index's revision on.
func (f *Follower) Run(ctx context.Context) {
	pglisten.Run(ctx, f.db, pglisten.Options{
		Channel: NotifyChannel,
		What:    "change log listener",
		Idle:    f.PollInterval,
		Logger:  f.logger,
		OnListen: func(ctx context.Context) error {
			err := f.Sync(ctx)
			f.logger.DebugContext(ctx, "listening for registry changes", "revision", f.index.Revision())
			return err
		},
		OnNotify: func(ctx context.Context, _ string) error { return f.Sync(ctx) },
		OnIdle:   func(ctx context.Context, _ *pgx.Conn) error { return f.Sync(ctx) },
	})
}

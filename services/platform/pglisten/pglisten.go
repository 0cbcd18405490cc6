// Package pglisten holds a PostgreSQL LISTEN connection open for as long as
// a service runs: on a dedicated connection (a pooled one would be handed
// to others), reconnecting with backoff after a database restart or a
// network failure, and telling its user when it starts listening, what it
// hears, when it has heard nothing for a while and when it has lost the
// connection. Notifications sent while no connection listens are lost;
// OnListen is where a user reads back what it may have missed.
package pglisten

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options say what to listen to and what to do.
type Options struct {
	// Channel is the notification channel.
	Channel string
	// What names the listener in log records, e.g. "change log listener".
	What string
	// Idle is how long the connection may stay silent before OnIdle runs;
	// zero means 10s.
	Idle time.Duration
	// Backoff is the first pause before reconnecting; it doubles up to
	// MaxBackoff and starts again after a connection that listened. Zero
	// means 100ms and 5s.
	Backoff, MaxBackoff time.Duration
	// Logger receives a warning for each lost connection; nil means
	// slog.Default().
	Logger *slog.Logger

	// OnListen runs each time LISTEN is in force on a new connection.
	OnListen func(ctx context.Context) error
	// OnNotify runs for each notification, in order.
	OnNotify func(ctx context.Context, payload string) error
	// OnIdle runs after Idle without a notification; conn lets it check
	// that the connection is alive (a connection that died without closing
	// is otherwise never noticed).
	OnIdle func(ctx context.Context, conn *pgx.Conn) error
	// OnLost runs each time a connection that listened ends.
	OnLost func()
}

// Run listens until ctx ends. An error from a callback ends the connection
// like a network failure does, and a new one is opened after the backoff.
// Every callback may be nil.
func Run(ctx context.Context, pool *pgxpool.Pool, opts Options) {
	if opts.Idle <= 0 {
		opts.Idle = 10 * time.Second
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	backoff := opts.Backoff
	for ctx.Err() == nil {
		listened, err := listen(ctx, pool, opts)
		if listened && opts.OnLost != nil {
			opts.OnLost()
		}
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = opts.Backoff
		}
		opts.Logger.WarnContext(ctx, opts.What+" lost its connection; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, opts.MaxBackoff)
	}
}

// listen holds one connection until it fails; listened says whether it got
// as far as LISTEN.
func listen(ctx context.Context, pool *pgxpool.Pool, opts Options) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{opts.Channel}.Sanitize()); err != nil {
		return false, err
	}
	if opts.OnListen != nil {
		if err := opts.OnListen(ctx); err != nil {
			return true, err
		}
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, opts.Idle)
		n, err := conn.WaitForNotification(wctx)
		// Read before cancel, which would make every failure look like
		// the idle timeout.
		idle := wctx.Err() == context.DeadlineExceeded
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && idle:
			if opts.OnIdle != nil {
				err = opts.OnIdle(ctx, conn)
			} else {
				err = nil
			}
		case err != nil:
		case opts.OnNotify != nil:
			err = opts.OnNotify(ctx, n.Payload)
		}
		if err != nil {
			return true, err
		}
	}
}

package pglisten_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pglisten"
	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// log records the callbacks in order.
type log struct {
	mu     sync.Mutex
	events []string
}

func (l *log) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

func (l *log) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e == s {
			n++
		}
	}
	return n
}

func (l *log) notifications() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if len(e) > 7 && e[:7] == "notify " {
			out = append(out, e[7:])
		}
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func start(t *testing.T, pool *pgxpool.Pool, l *log, idle time.Duration, onIdle func(context.Context, *pgx.Conn) error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		pglisten.Run(ctx, pool, pglisten.Options{
			Channel: "pglisten_test", What: "test listener", Idle: idle, Backoff: 20 * time.Millisecond,
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnListen: func(context.Context) error { l.add("listen"); return nil },
			OnNotify: func(_ context.Context, p string) error { l.add("notify " + p); return nil },
			OnIdle:   onIdle,
			OnLost:   func() { l.add("lost") },
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	eventually(t, "the listener to listen", func() bool { return l.count("listen") == 1 })
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func notify(t *testing.T, pool *pgxpool.Pool, payload string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `SELECT pg_notify('pglisten_test', $1)`, payload)
	require.NoError(t, err)
}

func TestRunDeliversNotificationsInOrderAndSurvivesALostConnection(t *testing.T) {
	pool := newPool(t)
	l := &log{}
	start(t, pool, l, time.Minute, nil)

	for _, p := range []string{"a", "b", "c"} {
		notify(t, pool, p)
	}
	eventually(t, "three notifications", func() bool { return len(l.notifications()) == 3 })
	require.Equal(t, []string{"a", "b", "c"}, l.notifications())

	var terminated int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&terminated))
	require.Equal(t, 1, terminated)
	eventually(t, "the connection to be lost and listened again", func() bool { return l.count("lost") == 1 && l.count("listen") == 2 })
	notify(t, pool, "d")
	eventually(t, "a notification after reconnecting", func() bool { return len(l.notifications()) == 4 })
}

func TestAFailingIdleCheckReconnects(t *testing.T) {
	pool := newPool(t)
	l := &log{}
	checks := 0
	start(t, pool, l, 50*time.Millisecond, func(context.Context, *pgx.Conn) error {
		checks++
		if checks == 2 {
			return errors.New("the check says the connection is dead")
		}
		return nil
	})
	eventually(t, "a reconnection after the failed check", func() bool { return l.count("lost") >= 1 && l.count("listen") >= 2 })
}

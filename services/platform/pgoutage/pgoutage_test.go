package pgoutage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/pgoutage"
	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Errors are produced by really talking to PostgreSQL (or to a socket that
// misbehaves as a dead server would) wherever that is possible, so that the
// tests follow pgx's error types as they change; only SQLSTATEs the tests
// cannot provoke on demand are built by hand.
func TestIsTellsOutagesFromOtherDatabaseErrors(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)

	outages := []struct {
		name string
		err  func(t *testing.T) error
	}{
		{"connecting to a port nobody listens on", func(t *testing.T) error {
			return connectErr(t, "postgres://postgres@"+closedAddr(t)+"/postgres?sslmode=disable")
		}},
		{"connecting to a server that hangs up at once", func(t *testing.T) error {
			return connectErr(t, "postgres://postgres@"+fakeServer(t, hangUp)+"/postgres?sslmode=disable")
		}},
		{"connecting to a server that never answers, past connect_timeout", func(t *testing.T) error {
			return connectErr(t, "postgres://postgres@"+fakeServer(t, stayMute)+"/postgres?sslmode=disable&connect_timeout=1")
		}},
		{"a connection terminated by the server (admin_shutdown)", func(t *testing.T) error {
			conn := connect(t, url)
			_, err := conn.Exec(context.Background(), "SELECT pg_terminate_backend(pg_backend_pid())")
			return err
		}},
		{"a query on a connection the server terminated", func(t *testing.T) error {
			conn := connect(t, url)
			_, _ = conn.Exec(context.Background(), "SELECT pg_terminate_backend(pg_backend_pid())")
			_, err := conn.Exec(context.Background(), "SELECT 1")
			return err
		}},
		{"a query on a connection whose socket was cut (failover, network)", func(t *testing.T) error {
			proxy := newCuttableProxy(t, url)
			conn := connect(t, proxy.url)
			_, err := conn.Exec(context.Background(), "SELECT 1")
			require.NoError(t, err)
			proxy.cut()
			_, err = conn.Exec(context.Background(), "SELECT 1")
			return err
		}},
		{"a query running when its connection's socket was cut", func(t *testing.T) error {
			proxy := newCuttableProxy(t, url)
			app := fmt.Sprintf("pgoutage_cut_%d", time.Now().UnixNano())
			conn := connect(t, proxy.url+"&application_name="+app)
			done := make(chan error, 1)
			go func() {
				_, err := conn.Exec(context.Background(), "SELECT pg_sleep(30)")
				done <- err
			}()
			admin := connect(t, url)
			waitFor(t, "the query to run", func() bool {
				var running bool
				err := admin.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
					WHERE application_name = $1 AND state = 'active')`, app).Scan(&running)
				require.NoError(t, err)
				return running
			})
			proxy.cut()
			return <-done
		}},
		{"too many connections for a role (53300)", func(t *testing.T) error {
			role := limitedRole(t, url)
			cfg, err := pgconn.ParseConfig(url)
			require.NoError(t, err)
			cfg.User, cfg.Password = role, limitedRolePassword
			_, err = pgconn.ConnectConfig(context.Background(), cfg)
			return err
		}},
		{"acquiring from a closed pool (service shutting down)", func(t *testing.T) error {
			pool, err := pgxpool.New(context.Background(), url)
			require.NoError(t, err)
			pool.Close()
			_, err = pool.Exec(context.Background(), "SELECT 1")
			return err
		}},
		{"a closed pool, wrapped as identity's domain wraps store errors", func(t *testing.T) error {
			pool, err := pgxpool.New(context.Background(), url)
			require.NoError(t, err)
			pool.Close()
			_, err = pool.Exec(context.Background(), "SELECT 1")
			return fault.New(fault.Internal, "INTERNAL", "internal error").WithCause(fmt.Errorf("sign up: %w", err))
		}},
		{"crash_shutdown (57P02)", sqlState("57P02")},
		{"cannot_connect_now, the server starting or shutting down (57P03)", sqlState("57P03")},
		{"connection_failure (08006)", sqlState("08006")},
		{"sqlclient_unable_to_establish_sqlconnection (08001)", sqlState("08001")},
		{"a write reaching a standby during a failover (25006)", func(t *testing.T) error {
			// A real one: a read-only transaction refuses writes as a standby does.
			c := connect(t, url)
			tx, err := c.Begin(context.Background())
			require.NoError(t, err)
			defer tx.Rollback(context.Background())
			_, err = tx.Exec(context.Background(), "SET TRANSACTION READ ONLY")
			require.NoError(t, err)
			_, err = tx.Exec(context.Background(), "CREATE TABLE readonly_probe (id int)")
			return err
		}},
		{"a reset connection", func(t *testing.T) error {
			return fmt.Errorf("query: %w", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")})
		}},
		{"an unexpected EOF", func(t *testing.T) error { return fmt.Errorf("read: %w", io.ErrUnexpectedEOF) }},
	}
	for _, tc := range outages {
		t.Run(tc.name+" is an outage", func(t *testing.T) {
			t.Parallel()
			err := tc.err(t)
			require.Error(t, err)
			t.Logf("%T: %v", err, err)
			require.True(t, pgoutage.Is(err), "%T: %v", err, err)
		})
	}

	others := []struct {
		name string
		err  func(t *testing.T) error
	}{
		{"no error", func(t *testing.T) error { return nil }},
		{"a protocol violation (08P01), our own bug", sqlState("08P01")},
		{"a syntax error", func(t *testing.T) error {
			_, err := connect(t, url).Exec(context.Background(), "SELEC 1")
			return err
		}},
		{"a unique violation", func(t *testing.T) error {
			conn := connect(t, url)
			_, err := conn.Exec(context.Background(), "CREATE TEMPORARY TABLE t (id int PRIMARY KEY)")
			require.NoError(t, err)
			_, err = conn.Exec(context.Background(), "INSERT INTO t VALUES (1), (1)")
			return err
		}},
		{"an undefined table", func(t *testing.T) error {
			_, err := connect(t, url).Exec(context.Background(), "SELECT * FROM no_such_table")
			return err
		}},
		{"a division by zero", func(t *testing.T) error {
			_, err := connect(t, url).Exec(context.Background(), "SELECT 1/0")
			return err
		}},
		{"no rows", func(t *testing.T) error {
			var n int
			return connect(t, url).QueryRow(context.Background(), "SELECT 1 WHERE false").Scan(&n)
		}},
		{"connecting to a database that does not exist (our configuration)", func(t *testing.T) error {
			cfg, err := pgconn.ParseConfig(url)
			require.NoError(t, err)
			cfg.Database = "no_such_database_for_pgoutage"
			_, err = pgconn.ConnectConfig(context.Background(), cfg)
			var connectErr *pgconn.ConnectError
			require.ErrorAs(t, err, &connectErr)
			return err
		}},
		{"a query canceled by the caller", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := connect(t, url).Exec(ctx, "SELECT 1")
			return err
		}},
		{"a query past the caller's deadline", func(t *testing.T) error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := connect(t, url).Exec(ctx, "SELECT pg_sleep(5)")
			return err
		}},
		{"a statement timeout (query_canceled)", func(t *testing.T) error {
			conn := connect(t, url)
			_, err := conn.Exec(context.Background(), "SET statement_timeout = '10ms'")
			require.NoError(t, err)
			_, err = conn.Exec(context.Background(), "SELECT pg_sleep(5)")
			return err
		}},
		{"one connection used by two queries at once (conn busy, a bug)", func(t *testing.T) error {
			conn := connect(t, url).PgConn()
			first := conn.Exec(context.Background(), "SELECT 1")
			defer first.Close()
			_, err := conn.Exec(context.Background(), "SELECT 2").ReadAll()
			require.True(t, pgconn.SafeToRetry(err), "pgconn no longer calls conn busy safe to retry: %v", err)
			return err
		}},
		{"a serialization failure (40001)", sqlState("40001")},
		{"a deadlock (40P01)", sqlState("40P01")},
		{"a wrong password (28P01)", sqlState("28P01")},
		{"a plain error", func(t *testing.T) error { return errors.New("something else broke") }},
	}
	for _, tc := range others {
		t.Run(tc.name+" is no outage", func(t *testing.T) {
			t.Parallel()
			err := tc.err(t)
			require.False(t, pgoutage.Is(err), "%T: %v", err, err)
		})
	}
}

// sqlState returns a server error with code, wrapped as a store would.
func sqlState(code string) func(t *testing.T) error {
	return func(t *testing.T) error {
		return fmt.Errorf("store: %w", &pgconn.PgError{Severity: "FATAL", Code: code, Message: "from the test"})
	}
}

// waitFor polls cond until it holds, failing the test after ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		require.False(t, time.Now().After(deadline), "timed out waiting for %s", what)
		time.Sleep(10 * time.Millisecond)
	}
}

// connect opens a connection closed at the end of the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// connectErr tries to connect to url and returns the error, which must be
// pgconn's connect error.
func connectErr(t *testing.T, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, url)
	if err == nil {
		_ = conn.Close(context.Background())
	}
	var connectErr *pgconn.ConnectError
	require.ErrorAs(t, err, &connectErr)
	return err
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

type behaviour int

const (
	hangUp   behaviour = iota // close every connection at once
	stayMute                  // accept, read, never answer
)

// fakeServer listens on loopback and treats every connection as b says,
// until the test ends.
func fakeServer(t *testing.T, b behaviour) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if b == hangUp {
				_ = c.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(io.Discard, c) // until the client gives up
			}()
		}
	}()
	return l.Addr().String()
}

// cuttableProxy forwards TCP to PostgreSQL until cut, which closes every
// forwarded connection as a failover or a network partition would.
type cuttableProxy struct {
	url   string
	mu    sync.Mutex
	conns []net.Conn
}

func newCuttableProxy(t *testing.T, databaseURL string) *cuttableProxy {
	t.Helper()
	cfg, err := pgconn.ParseConfig(databaseURL)
	require.NoError(t, err)
	target := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cuttableProxy{url: fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", cfg.User, l.Addr(), cfg.Database)}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); p.cut(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, server)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(server, client); _ = server.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(client, server); _ = client.Close() }()
		}
	}()
	return p
}

func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// limitedRolePassword is limitedRole's password: test clusters make every
// role but the superuser prove its password, and the connection limit is
// checked after that.
const limitedRolePassword = "pgoutage-limited"

// limitedRole creates a login role allowed no connection at all, dropped at
// the end of the test; connecting as it gets too_many_connections.
func limitedRole(t *testing.T, url string) string {
	t.Helper()
	role := fmt.Sprintf("pgoutage_limited_%d", time.Now().UnixNano())
	admin := connect(t, url)
	_, err := admin.Exec(context.Background(), "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN CONNECTION LIMIT 0 PASSWORD '"+limitedRolePassword+"'")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
		require.NoError(t, err)
	})
	return role
}

// A real deadlock between two transactions is a conflict to retry, not an
// outage.
func TestIsConflictOnARealDeadlock(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	setup := connect(t, url)
	_, err := setup.Exec(ctx, `CREATE TABLE pair (id int PRIMARY KEY); INSERT INTO pair VALUES (1), (2)`)
	require.NoError(t, err)
	a, b := connect(t, url), connect(t, url)
	txA, err := a.Begin(ctx)
	require.NoError(t, err)
	defer txA.Rollback(ctx)
	txB, err := b.Begin(ctx)
	require.NoError(t, err)
	defer txB.Rollback(ctx)
	_, err = txA.Exec(ctx, `UPDATE pair SET id = id WHERE id = 1`)
	require.NoError(t, err)
	_, err = txB.Exec(ctx, `UPDATE pair SET id = id WHERE id = 2`)
	require.NoError(t, err)
	errs := make(chan error, 2)
	go func() { _, err := txA.Exec(ctx, `UPDATE pair SET id = id WHERE id = 2`); errs <- err }()
	go func() { _, err := txB.Exec(ctx, `UPDATE pair SET id = id WHERE id = 1`); errs <- err }()
	// PostgreSQL breaks the deadlock by failing one of the two (after
	// deadlock_timeout, 1 s by default); the other then goes through.
	first, second := <-errs, <-errs
	deadlock := first
	if deadlock == nil {
		deadlock = second
	}
	require.Error(t, deadlock)
	require.True(t, pgoutage.IsConflict(deadlock), "%v", deadlock)
	require.False(t, pgoutage.Is(deadlock), "a deadlock is no outage")
}

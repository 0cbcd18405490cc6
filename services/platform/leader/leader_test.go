package leader_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/leader"
	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// interval is the check interval of the tests' electors: short, so that
// hand-overs take a second or two.
const interval = 100 * time.Millisecond

func TestNewChecksItsConfiguration(t *testing.T) {
	t.Parallel()
	conn, err := pgx.ParseConfig("postgres://nobody@127.0.0.1:1/nothing")
	require.NoError(t, err)
	tests := []struct {
		name    string
		cfg     leader.Config
		wantErr string
		want    time.Duration // the check interval used
	}{
		{"a name and a connection are enough", leader.Config{Name: "x", ConnConfig: conn}, "", leader.DefaultCheckInterval},
		{"the interval given is used", leader.Config{Name: "x", ConnConfig: conn, CheckInterval: time.Second}, "", time.Second},
		{"a name is required", leader.Config{ConnConfig: conn}, "a name is required", 0},
		{"a connection is required", leader.Config{Name: "x"}, "connection configuration is required", 0},
		{"a too short interval is refused", leader.Config{Name: "x", ConnConfig: conn, CheckInterval: time.Millisecond}, "at least 50ms", 0},
		{"a negative interval is refused", leader.Config{Name: "x", ConnConfig: conn, CheckInterval: -time.Second}, "at least 50ms", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := leader.New(tt.cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, e.Timings().Check)
			require.False(t, e.Leading())
		})
	}
}

func TestTimingsKeepTheirOrder(t *testing.T) {
	t.Parallel()
	for _, i := range []time.Duration{leader.MinCheckInterval, 100 * time.Millisecond, time.Second, leader.DefaultCheckInterval, time.Minute} {
		t.Run(i.String(), func(t *testing.T) {
			tm := leader.TimingsFor(i)
			// An old leader gives up at most a check interval plus a check
			// after its session ended; the new one waits longer.
			require.Greater(t, tm.Takeover, 2*tm.Check)
			// The server ends a silent session only after the leader
			// that stopped checking has given up on its own.
			require.Greater(t, tm.IdleSession, 2*tm.Check)
		})
	}
}

func TestKeyIsStableAndSeparatesNames(t *testing.T) {
	t.Parallel()
	seen := map[[2]int32]string{}
	for _, name := range []string{"tenant-registry", "identity", "notes", "tenant-registry ", "Tenant-registry", ""} {
		k1, k2 := leader.Key(name)
		again1, again2 := leader.Key(name)
		require.Equal(t, [2]int32{k1, k2}, [2]int32{again1, again2}, "the key of %q changed", name)
		require.GreaterOrEqual(t, k2, int32(0), "pg_locks shows keys as unsigned oids; the check compares them as such")
		require.NotContains(t, seen, [2]int32{k1, k2}, "%q and %q share a key", name, seen[[2]int32{k1, k2}])
		seen[[2]int32{k1, k2}] = name
	}
}

func TestTheGaugeFollowsLeadership(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	e := newElector(t, "gauge", url)
	require.Equal(t, 0.0, testutil.ToFloat64(e.Collector()))
	w := &workLog{}
	stop := run(t, e, w.work("a"))
	waitFor(t, "the elector to lead", e.Leading)
	require.Equal(t, 1.0, testutil.ToFloat64(e.Collector()))
	require.NoError(t, testutil.CollectAndCompare(e.Collector(), strings.NewReader(`
# HELP tenantry_leader 1 while this replica holds the lease and runs its singleton background work, 0 otherwise.
# TYPE tenantry_leader gauge
tenantry_leader{lease="gauge"} 1
`)))
	require.Equal(t, 1, lockHolders(t, url, "gauge"))
	stop()
	require.Equal(t, 0.0, testutil.ToFloat64(e.Collector()))
	require.Zero(t, lockHolders(t, url, "gauge"), "a stopped leader releases the lock at once")
}

// Several replicas elect exactly one leader; when it stops, another takes
// over, and no two replicas' work ever runs at once.
func TestOneLeaderAtATimeAndHandOverOnStop(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	w := &workLog{}
	electors := map[string]*leader.Elector{}
	stops := map[string]func(){}
	for _, name := range []string{"a", "b", "c"} {
		electors[name] = newElector(t, "handover", url)
		stops[name] = run(t, electors[name], w.work(name))
	}
	leaders := watchLeaders(t, electors)

	first := waitForLeader(t, leaders)
	// A while of stable leadership: the others stay followers.
	time.Sleep(5 * interval) // a span to sample, not a wait for a condition
	require.Equal(t, []string{first}, leaders.now())
	require.Equal(t, 1, lockHolders(t, url, "handover"), "one session holds the lock")

	start := time.Now()
	stops[first]()
	require.False(t, electors[first].Leading())
	second := waitForLeader(t, leaders, first)
	t.Logf("hand-over after a stop took %s", time.Since(start).Round(time.Millisecond))

	stops[second]()
	waitForLeader(t, leaders, first, second)

	require.Equal(t, 1, leaders.most(), "two replicas led at once: %v", leaders.history())
	require.Equal(t, 1, w.most(), "two replicas' work ran at once: %v", w.history())
	require.Equal(t, 3, w.terms())
}

// A leader whose session is terminated in PostgreSQL (what an operator's
// pg_terminate_backend or a crashed backend does) stops its work before the
// replica that takes the lock starts its own.
func TestATerminatedSessionEndsTheTermBeforeTheNextStarts(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	w := &workLog{}
	electors := map[string]*leader.Elector{}
	for _, name := range []string{"a", "b"} {
		electors[name] = newElector(t, "terminate", url)
		run(t, electors[name], w.work(name))
	}
	leaders := watchLeaders(t, electors)
	first := waitForLeader(t, leaders)

	for round := range 3 {
		before := w.terms()
		terminateHolder(t, url, "terminate")
		waitFor(t, "a new term", func() bool { return w.terms() > before && len(leaders.now()) == 1 })
		t.Logf("round %d: %s leads", round, leaders.now()[0])
	}
	require.Equal(t, 1, leaders.most(), "two replicas led at once: %v", leaders.history())
	require.Equal(t, 1, w.most(), "two replicas' work ran at once: %v", w.history())
	require.Contains(t, leaders.history(), first)
}

// A leader cut off from PostgreSQL without its connection closing (a
// network partition: packets are dropped, nobody sees a reset) gives up
// when its check goes unanswered; PostgreSQL ends its silent session later
// (idle_session_timeout), and only then can another replica take over.
func TestAPartitionedLeaderStopsBeforeAnotherStarts(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	proxy := newPartitionProxy(t, url)
	w := &workLog{}
	cut := newElectorVia(t, "partition", url, proxy.addr)
	direct := newElector(t, "partition", url)
	stopCut := run(t, cut, w.work("cut"))
	waitFor(t, "the replica behind the proxy to lead", cut.Leading)
	run(t, direct, w.work("direct"))
	leaders := watchLeaders(t, map[string]*leader.Elector{"cut": cut, "direct": direct})

	start := time.Now()
	proxy.partition()
	waitFor(t, "the other replica to lead", direct.Leading)
	t.Logf("hand-over after a partition took %s", time.Since(start).Round(time.Millisecond))
	require.False(t, cut.Leading())
	require.Equal(t, 1, leaders.most(), "two replicas led at once: %v", leaders.history())
	require.Equal(t, 1, w.most(), "two replicas' work ran at once: %v", w.history())
	require.Equal(t, []string{"+cut", "-cut", "+direct"}, w.history())
	// The partitioned replica keeps trying through the dead link and
	// stops cleanly.
	stopCut()
}

// A follower that cannot reach the database keeps trying and stops when
// asked.
func TestAnUnreachableDatabaseLeavesAFollowerThatStops(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	e := newElectorVia(t, "unreachable", "postgres://nobody@127.0.0.1:1/nothing?sslmode=disable", addr)
	w := &workLog{}
	stop := run(t, e, w.work("a"))
	time.Sleep(3 * interval) // a span in which nothing may happen
	require.False(t, e.Leading())
	stop()
	require.Zero(t, w.terms())
}

// newElector returns an elector of the lease name on url.
func newElector(t *testing.T, name, url string) *leader.Elector {
	t.Helper()
	return newElectorVia(t, name, url, "")
}

// newElectorVia is newElector connecting through addr (host:port) instead
// of the URL's own address when addr is not empty.
func newElectorVia(t *testing.T, name, url, addr string) *leader.Elector {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		cfg.Host, cfg.Port, cfg.Fallbacks = host, uint16(p), nil
		cfg.ConnectTimeout = interval
	}
	e, err := leader.New(leader.Config{Name: name, ConnConfig: cfg, CheckInterval: interval, Logger: testLogger(t)})
	require.NoError(t, err)
	return e
}

// run runs e until the returned function is called (or the test ends) and
// makes sure Run returns.
func run(t *testing.T, e *leader.Elector, work func(context.Context)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx, work) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// workLog records the terms of several electors' work: how many run at
// once, and the order in which they started and stopped.
type workLog struct {
	mu      sync.Mutex
	running int
	max     int
	events  []string
	started int
}

// work returns a work function for the replica called name that runs
// until its term ends.
func (w *workLog) work(name string) func(context.Context) {
	return func(ctx context.Context) {
		w.mu.Lock()
		w.running++
		w.max = max(w.max, w.running)
		w.started++
		w.events = append(w.events, "+"+name)
		w.mu.Unlock()
		<-ctx.Done()
		w.mu.Lock()
		w.running--
		w.events = append(w.events, "-"+name)
		w.mu.Unlock()
	}
}

func (w *workLog) most() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

func (w *workLog) terms() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

func (w *workLog) history() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.events...)
}

// leaderWatch samples the electors' Leading every millisecond.
type leaderWatch struct {
	mu      sync.Mutex
	current []string
	maxSeen int
	changes []string
}

func watchLeaders(t *testing.T, electors map[string]*leader.Elector) *leaderWatch {
	w := &leaderWatch{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var now []string
			for name, e := range electors {
				if e.Leading() {
					now = append(now, name)
				}
			}
			w.mu.Lock()
			w.maxSeen = max(w.maxSeen, len(now))
			if len(now) == 1 && (len(w.changes) == 0 || w.changes[len(w.changes)-1] != now[0]) {
				w.changes = append(w.changes, now[0])
			}
			w.current = now
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *leaderWatch) now() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.current...)
}

func (w *leaderWatch) most() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxSeen
}

func (w *leaderWatch) history() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.changes...)
}

// waitForLeader waits until exactly one elector leads, one not named in
// not, and returns it.
func waitForLeader(t *testing.T, w *leaderWatch, not ...string) string {
	t.Helper()
	var got string
	waitFor(t, "one leader", func() bool {
		now := w.now()
		if len(now) == 1 && !slices.Contains(not, now[0]) {
			got = now[0]
			return true
		}
		return false
	})
	return got
}

// waitFor polls cond until it holds, failing the test after 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holdersQuery selects the sessions holding the lease called $1's lock.
const holdersQuery = `SELECT pid FROM pg_catalog.pg_locks
	WHERE locktype = 'advisory' AND granted AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// lockHolders counts the sessions holding the lease's lock.
func lockHolders(t *testing.T, url, name string) int {
	t.Helper()
	k1, k2 := leader.Key(name)
	conn := connect(t, url)
	rows, err := conn.Query(context.Background(), holdersQuery, k1, k2)
	require.NoError(t, err)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	return len(pids)
}

// terminateHolder ends the session holding the lease's lock, once there
// is one: between terms nobody holds it (on a loaded machine a leader's
// silent session may also have just been ended by idle_session_timeout,
// its short test value, before its check ran), and that is not what the
// callers test.
func terminateHolder(t *testing.T, url, name string) {
	t.Helper()
	k1, k2 := leader.Key(name)
	conn := connect(t, url)
	waitFor(t, "a holder of the lock to terminate", func() bool {
		var terminated bool
		err := conn.QueryRow(context.Background(),
			`SELECT pg_terminate_backend(pid) FROM (`+holdersQuery+`) h`, k1, k2).Scan(&terminated)
		if errors.Is(err, pgx.ErrNoRows) {
			return false
		}
		require.NoError(t, err)
		require.True(t, terminated)
		return true
	})
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// partitionProxy forwards TCP connections to PostgreSQL until partition is
// called; from then on it drops every byte both ways and closes nothing, as
// a network that lost its route does.
type partitionProxy struct {
	addr string
	cut  atomic.Bool
}

func newPartitionProxy(t *testing.T, databaseURL string) *partitionProxy {
	t.Helper()
	cfg, err := pgx.ParseConfig(databaseURL)
	require.NoError(t, err)
	target := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &partitionProxy{addr: l.Addr().String()}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, client)
			mu.Unlock()
			if p.cut.Load() {
				// Connections during the partition go nowhere.
				wg.Go(func() { _, _ = io.Copy(io.Discard, client) })
				continue
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, server)
			mu.Unlock()
			wg.Go(func() { p.forward(server, client) })
			wg.Go(func() { p.forward(client, server) })
		}
	})
	return p
}

// forward copies from src to dst until src ends, dropping what it reads
// once partitioned; a partition never closes dst.
func (p *partitionProxy) forward(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.cut.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if !p.cut.Load() {
				_ = dst.Close()
			}
			return
		}
	}
}

func (p *partitionProxy) partition() { p.cut.Store(true) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

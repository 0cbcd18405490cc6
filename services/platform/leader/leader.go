package leader

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultCheckInterval is the check interval when Config leaves it zero.
const DefaultCheckInterval = 2 * time.Second

// MinCheckInterval is the shortest check interval allowed: shorter ones
// would turn a slow moment of the database into a change of leader.
const MinCheckInterval = 50 * time.Millisecond

// lockClass is the first half of every lease's advisory lock key ("Tent"),
// so that the leases stay apart from other advisory locks taken with two
// keys.
const lockClass int32 = 0x54656e74

// Config configures an Elector.
type Config struct {
	// Name names what is led: the replicas that use the same name on the
	// same database elect one leader among them. The lock's key is derived
	// from it (see Key).
	Name string
	// ConnConfig is how the elector connects. It is copied; the elector
	// opens one connection of its own, never one from a pool.
	ConnConfig *pgx.ConnConfig
	// CheckInterval is how often a follower tries to take the lock and a
	// leader checks that it still holds it; it also bounds each check.
	// DefaultCheckInterval when zero.
	CheckInterval time.Duration
	// Logger receives the elector's changes of state; slog.Default when nil.
	Logger *slog.Logger
}

// Elector takes part in the election of one leader among the replicas
// configured with the same name. Create it with New and call Run once.
type Elector struct {
	name       string
	connConfig *pgx.ConnConfig
	interval   time.Duration
	log        *slog.Logger
	key1, key2 int32

	leading atomic.Bool
	conn    *pgx.Conn // used by Run's goroutine only
	// failing is the last error logged while following, so that a database
	// that stays down is logged once, not every interval.
	failing string
}

// New checks cfg and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if cfg.Name == "" {
		return nil, errors.New("leader: a name is required")
	}
	if cfg.ConnConfig == nil {
		return nil, errors.New("leader: a connection configuration is required")
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.CheckInterval < MinCheckInterval {
		return nil, fmt.Errorf("leader: the check interval must be at least %s, not %s", MinCheckInterval, cfg.CheckInterval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	conn := cfg.ConnConfig.Copy()
	if conn.RuntimeParams == nil {
		conn.RuntimeParams = map[string]string{}
	}
	// Visible in pg_stat_activity, so an operator can tell the lease's
	// session from the others.
	conn.RuntimeParams["application_name"] = "tenantry leader: " + cfg.Name
	k1, k2 := Key(cfg.Name)
	return &Elector{
		name:       cfg.Name,
		connConfig: conn,
		interval:   cfg.CheckInterval,
		log:        cfg.Logger.With("lease", cfg.Name),
		key1:       k1,
		key2:       k2,
	}, nil
}

// Key returns the advisory lock key of the lease called name, the two
// int4 keys of pg_try_advisory_lock(int, int). pg_locks shows them as
// classid and objid, with objsubid 2.
func Key(name string) (int32, int32) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return lockClass, int32(h.Sum32() & 0x7fffffff)
}

// Timings derived from a check interval.
type Timings struct {
	// Check is how often a follower tries and a leader checks, and how long
	// each check may take.
	Check time.Duration
	// Takeover is how long a replica that got the lock waits before its
	// work starts: longer than an old leader can take to notice that its
	// session has ended (a check interval, then a check that may take one
	// more), with half an interval to spare for scheduling.
	Takeover time.Duration
	// IdleSession is the lease session's idle_session_timeout: PostgreSQL
	// ends a session that sent no check for this long, releasing the lock
	// of a leader it can no longer hear from. Longer than the two intervals
	// the leader takes to give up on its own, so that it has given up first.
	IdleSession time.Duration
}

// TimingsFor returns the timings of a check interval.
func TimingsFor(interval time.Duration) Timings {
	return Timings{Check: interval, Takeover: 2*interval + interval/2, IdleSession: 4 * interval}
}

// Timings returns the elector's timings.
func (e *Elector) Timings() Timings { return TimingsFor(e.interval) }

// Leading reports whether this replica's leader work is running: true from
// the start of a term's work until the term ends.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Collector returns a gauge, tenantry_leader{lease="<name>"}, that is 1
// while this replica leads and 0 otherwise.
func (e *Elector) Collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "tenantry_leader",
		Help:        "1 while this replica holds the lease and runs its singleton background work, 0 otherwise.",
		ConstLabels: prometheus.Labels{"lease": e.name},
	}, func() float64 {
		if e.Leading() {
			return 1
		}
		return 0
	})
}

// Run takes part in the election until ctx ends. Each time this replica
// becomes leader, work runs with a context that is cancelled when the term
// ends; work should return promptly when it is. Run returns once the last
// term's work has returned and the lock is released.
func (e *Elector) Run(ctx context.Context, work func(ctx context.Context)) {
	defer e.disconnect()
	for ctx.Err() == nil {
		got, err := e.tryLock(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			e.following(err)
			e.disconnect()
		case got:
			e.following(nil)
			if !e.lead(ctx, work) {
				// After losing the lease, give the other replicas the
				// first chance to take it.
				sleep(ctx, e.interval)
			}
			continue
		}
		sleep(ctx, e.interval)
	}
}

// following logs a follower's failure to reach the database once, and its
// recovery.
func (e *Elector) following(err error) {
	switch {
	case err != nil && err.Error() != e.failing:
		e.failing = err.Error()
		e.log.Warn("cannot take part in the leader election; retrying", "every", e.interval, "err", err)
	case err == nil && e.failing != "":
		e.failing = ""
		e.log.Info("taking part in the leader election again")
	}
}

// tryLock connects if needed and tries to take the lock.
func (e *Elector) tryLock(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.interval)
	defer cancel()
	if e.conn == nil {
		conn, err := pgx.ConnectConfig(ctx, e.connConfig)
		if err != nil {
			return false, fmt.Errorf("connect: %w", err)
		}
		e.conn = conn
		// Set after connecting rather than as a start-up parameter, so
		// that the value is checked and refused with a clear error.
		idle := strconv.FormatInt(e.Timings().IdleSession.Milliseconds(), 10)
		if _, err := conn.Exec(ctx, "SELECT set_config('idle_session_timeout', $1, false)", idle); err != nil {
			return false, fmt.Errorf("set idle_session_timeout: %w", err)
		}
	}
	var got bool
	if err := e.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", e.key1, e.key2).Scan(&got); err != nil {
		return false, fmt.Errorf("try the lock: %w", err)
	}
	return got, nil
}

// check confirms that the connection is alive and its session holds the
// lock, within one interval.
func (e *Elector) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.interval)
	defer cancel()
	var held bool
	err := e.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks
		WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
		AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2)`, e.key1, e.key2).Scan(&held)
	if err != nil {
		return err
	}
	if !held {
		return errors.New("the session no longer holds the lock")
	}
	return nil
}

// lead holds the lease for one term: it waits the takeover delay, runs work
// and checks the lock every interval, until the check fails, work returns or
// ctx ends. It reports whether the term ended cleanly (the lock released).
func (e *Elector) lead(ctx context.Context, work func(context.Context)) bool {
	t := e.Timings()
	e.log.Info("took the leader lease; leader work starts after the takeover delay", "delay", t.Takeover)
	term, endTerm := context.WithCancel(ctx)
	defer endTerm()
	takeover := time.NewTimer(t.Takeover)
	defer takeover.Stop()
	tick := time.NewTicker(t.Check)
	defer tick.Stop()
	var done chan struct{} // nil until the work starts
	var lost error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-takeover.C:
			done = make(chan struct{})
			e.leading.Store(true)
			e.log.Info("leading: leader work started")
			go func() {
				defer close(done)
				work(term)
			}()
		case <-done:
			lost = errors.New("the leader work returned on its own")
			break loop
		case <-tick.C:
			if err := e.check(ctx); err != nil {
				if ctx.Err() != nil {
					break loop
				}
				lost = err
				break loop
			}
		}
	}
	// Stop leading before anything else: the lock may be someone else's
	// already.
	e.leading.Store(false)
	endTerm()
	if lost != nil {
		e.log.Warn("lost the leader lease; leader work cancelled", "err", lost)
		e.disconnect()
	}
	if done != nil {
		<-done
	}
	if lost != nil {
		e.log.Info("leader work stopped; following")
		return false
	}
	// Released only now that the work has returned, so that the next
	// leader's work never overlaps this one's.
	unlock, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.interval)
	defer cancel()
	if _, err := e.conn.Exec(unlock, "SELECT pg_advisory_unlock($1, $2)", e.key1, e.key2); err != nil {
		// Closing the session releases the lock too.
		e.log.Warn("cannot release the leader lease; closing its connection", "err", err)
		e.disconnect()
	}
	e.log.Info("released the leader lease")
	return true
}

// disconnect closes the elector's connection, ending its session (and any
// lock it holds) if the server still has it.
func (e *Elector) disconnect() {
	if e.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.interval)
	defer cancel()
	_ = e.conn.Close(ctx)
	e.conn = nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Limiter checks rate limits stored in PostgreSQL. It is safe for concurrent
// use, and any number of Limiters, in any number of processes, may share one
// database: they share the limits' budgets.
type Limiter struct {
	pool *pgxpool.Pool
	// now replaces the database clock when set, so tests can step time
	// without sleeping. Production leaves it nil: every replica then uses
	// the database's clock, however skewed their own clocks are.
	now func() time.Time
}

// clockOverride returns the time to decide at instead of the database
// clock, or nil to use the database clock. It is truncated to PostgreSQL's
// microseconds so that the database and Go compute with the same instant.
func (l *Limiter) clockOverride() *time.Time {
	if l.now == nil {
		return nil
	}
	t := l.now().Truncate(time.Microsecond)
	return &t
}

// New returns a Limiter storing its state through pool. Call
// [Limiter.Setup] once before use.
func New(pool *pgxpool.Pool) *Limiter {
	return &Limiter{pool: pool}
}

// setupSQL creates the limiter's table. UNLOGGED: see the package
// documentation. fillfactor leaves room in each page so that updates of tat,
// which is not indexed, stay on their page (HOT updates) and write no index
// entries. The "C" collation makes key comparisons plain byte comparisons;
// keys are ASCII.
const setupSQL = `
CREATE SCHEMA IF NOT EXISTS tenantry_identity;
CREATE UNLOGGED TABLE IF NOT EXISTS tenantry_identity.rate_limits (
	key         text COLLATE "C" PRIMARY KEY,
	tat         timestamptz NOT NULL,
	expire_time timestamptz NOT NULL
) WITH (fillfactor = 70);`

// setupAttempts bounds Setup's retries of a lost catalog race.
const setupAttempts = 3

// Setup creates the tenantry_identity schema and its rate_limits table if
// they are missing. It is idempotent and safe to run from several replicas
// at once: an advisory lock serialises the DDL among Limiters, since
// concurrent CREATE ... IF NOT EXISTS can still fail on a catalog unique
// index; a race lost to other code creating the schema is retried.
func (l *Limiter) Setup(ctx context.Context) error {
	var err error
	for range setupAttempts {
		err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tenantry_identity.rate_limits.setup'))"); err != nil {
				return fmt.Errorf("take setup lock: %w", err)
			}
			if _, err := tx.Exec(ctx, setupSQL); err != nil {
				return fmt.Errorf("create tenantry_identity.rate_limits: %w", err)
			}
			return nil
		})
		if !lostCatalogRace(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("ratelimit: set up: %w", err)
	}
	return nil
}

// lostCatalogRace reports whether err is a concurrent CREATE ... IF NOT
// EXISTS colliding with ours: a unique violation in the catalog, or the
// object appearing between the check and the creation.
func lostCatalogRace(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23505", "42P06", "42P07": // unique_violation, duplicate_schema, duplicate_table
		return true
	}
	return false
}

// Allow checks one limit for one scope and, when it allows, counts the
// request. parts name the scope: the tenant first, then the scope values,
// such as an account identifier, a client address, or both. The tenant is
// kept readable in the stored key when it is a slug; the other parts are
// hashed. Allow(ctx, l, parts...) is AllowAll with a single check.
//
// An error means no decision was made (the database is unreachable, the
// limit is invalid); the caller decides whether to fail open or closed. For
// login, failing closed costs nothing extra: without the database there are
// no accounts to log into either.
func (l *Limiter) Allow(ctx context.Context, limit Limit, parts ...string) (Decision, error) {
	return l.AllowAll(ctx, Check{Limit: limit, Parts: parts})
}

// AllowAll checks several limits, such as per account, per client address
// and per tenant, in one round trip and returns the most restrictive
// decision. It is all-or-nothing: the request is allowed, and counted
// against every limit, only if every limit allows it; if any refuses, none
// is charged, so refused requests never use up another limit's budget (see
// the package documentation for why that matters). A refused decision's
// RetryAfter is the longest wait among the refusing limits.
//
// Each check must name a different key: two checks of the same limit and
// scope are a mistake and return an error.
func (l *Limiter) AllowAll(ctx context.Context, checks ...Check) (Decision, error) {
	q, err := newQuery(checks)
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %w", err)
	}
	d, err := l.decide(ctx, q)
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: check %s: %w", q.names(), err)
	}
	return d, nil
}

// query is AllowAll's checks in the shape the SQL takes: the checks, and
// parallel to them their keys, emission intervals (also in microseconds, for
// the SQL) and bursts.
type query struct {
	checks         []Check
	keys           []string
	intervals      []time.Duration
	intervalMicros []int64
	bursts         []int32
	// lockIDs are the keys' advisory locks, sorted and distinct: every
	// caller locks in the same order, so none can deadlock another.
	lockIDs []int64
}

// newQuery validates checks and derives their keys.
func newQuery(checks []Check) (query, error) {
	if len(checks) == 0 {
		return query{}, errNoChecks
	}
	q := query{checks: checks}
	seen := make(map[string]bool, len(checks))
	for _, c := range checks {
		t, err := c.Limit.interval()
		if err != nil {
			return query{}, err
		}
		k := key(c.Limit.Name, c.Parts)
		if seen[k] {
			return query{}, fmt.Errorf("limit %s checked twice for the same scope", c.Limit.Name)
		}
		seen[k] = true
		q.keys = append(q.keys, k)
		q.intervals = append(q.intervals, t)
		q.intervalMicros = append(q.intervalMicros, t.Microseconds())
		q.bursts = append(q.bursts, int32(c.Limit.Burst))
		q.lockIDs = append(q.lockIDs, lockID(k))
	}
	slices.Sort(q.lockIDs)
	q.lockIDs = slices.Compact(q.lockIDs)
	return q, nil
}

// names lists the checked limits, for error messages.
func (q query) names() string {
	names := make([]string, len(q.checks))
	for i, c := range q.checks {
		names[i] = c.Limit.Name
	}
	return strings.Join(names, ",")
}

// lockSQL takes the keys' advisory locks, in the order given; they are held
// until the transaction ends.
const lockSQL = `
SELECT pg_advisory_xact_lock(id)
FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n)
ORDER BY n`

// decideSQL evaluates GCRA for every key at once (see the package
// documentation for the formula) and charges every key only when all allow.
// It runs after lockSQL in the same transaction, so its snapshot sees the
// latest committed TAT of every key and nobody else can change them until
// it commits.
//
// $1 keys, $2 emission intervals in microseconds, $3 bursts, $4 the time to
// use instead of the database clock (tests only; NULL in production). The
// clock is read once, after the locks are held, so a wait for a lock does
// not make a decision use a stale time. expire_time is when the row becomes
// indistinguishable from no row, so Cleanup may delete it.
//
// Each key's row is read by a correlated subquery on the primary key rather
// than a join: the statement runs with its generic plan (see decide), and a
// join's generic plan made while the table was small would hash the whole
// table on every call (measured: 0.35 ms per decision at 3,000 rows, 1.2 ms
// at 12,000).
const decideSQL = `
WITH input AS (
	SELECT n, key, interval_us * interval '1 microsecond' AS emission, burst
	FROM unnest($1::text[], $2::bigint[], $3::integer[]) WITH ORDINALITY AS u(key, interval_us, burst, n)
),
clock AS MATERIALIZED (
	SELECT coalesce($4::timestamptz, clock_timestamp()) AS now
),
current AS (
	SELECT i.n, i.key, i.emission, i.burst, c.now,
		greatest((SELECT r.tat FROM tenantry_identity.rate_limits r WHERE r.key = i.key), c.now) AS base
	FROM input i CROSS JOIN clock c
),
decided AS (
	SELECT n, key, now, base,
		base + emission AS next_tat,
		base + emission <= now + burst * emission AS allowed
	FROM current
),
charged AS (
	INSERT INTO tenantry_identity.rate_limits AS r (key, tat, expire_time)
	SELECT key, next_tat, next_tat
	FROM decided
	WHERE (SELECT bool_and(allowed) FROM decided)
	ON CONFLICT (key) DO UPDATE
	SET tat = excluded.tat, expire_time = excluded.expire_time
	RETURNING r.key
)
SELECT d.n, d.allowed, ch.key IS NOT NULL AS charged, d.now, d.base
FROM decided d
LEFT JOIN charged ch ON ch.key = d.key
ORDER BY d.n`

// outcome is one key's row of decideSQL's result.
type outcome struct {
	allowed bool
	charged bool
	now     time.Time
	// base is max(TAT, now) before this request.
	base time.Time
}

// decide sends lockSQL and decideSQL in one READ COMMITTED transaction, in
// one round trip, and combines the keys' outcomes. The isolation level is
// explicit because a snapshot taken before the locks, as REPEATABLE READ
// would take, would miss charges committed while waiting for them.
//
// The transaction also forces the generic plan of decideSQL. Left to choose,
// PostgreSQL plans it afresh on every execution, because the generic plan's
// guess of ten keys makes it look costlier than a plan for the actual one to
// four; that planning was about 40% of a decision's time in BenchmarkAllow.
// The generic plan is as good, which a test checks.
func (l *Limiter) decide(ctx context.Context, q query) (Decision, error) {
	now := l.clockOverride()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	b.Queue("SET LOCAL plan_cache_mode = force_generic_plan")
	b.Queue(lockSQL, q.lockIDs)
	decision := b.Queue(decideSQL, q.keys, q.intervalMicros, q.bursts, now)
	b.Queue("COMMIT")

	outcomes := make([]outcome, 0, len(q.keys))
	decision.Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var n int
			var o outcome
			if err := rows.Scan(&n, &o.allowed, &o.charged, &o.now, &o.base); err != nil {
				return err
			}
			if n != len(outcomes)+1 {
				return fmt.Errorf("outcome %d out of order", n)
			}
			outcomes = append(outcomes, o)
		}
		return rows.Err()
	})

	br := l.pool.SendBatch(ctx, b)
	defer func() {
		// Rollback returns the connection to the pool. After the queued
		// COMMIT it has nothing else to do; after a failure, already
		// reported, it ends the aborted transaction, or closes the
		// connection if ctx has ended, which ends the transaction too.
		_ = br.Tx().Rollback(ctx)
	}()
	if err := br.Close(); err != nil {
		return Decision{}, err
	}
	return combine(q, outcomes)
}

// combine turns the keys' outcomes into the most restrictive decision. It
// redoes in Go the arithmetic the database did, exactly, since both work in
// microseconds.
func combine(q query, outcomes []outcome) (Decision, error) {
	if len(outcomes) != len(q.keys) {
		return Decision{}, fmt.Errorf("got %d outcomes for %d keys", len(outcomes), len(q.keys))
	}
	allowed := true
	for _, o := range outcomes {
		allowed = allowed && o.allowed
	}
	for i, o := range outcomes {
		if o.charged != allowed {
			// Only a writer that bypassed the advisory locks could cause this.
			return Decision{}, fmt.Errorf("limit %s: charged=%t but allowed=%t", q.checks[i].Limit.Name, o.charged, allowed)
		}
	}
	d := Decision{Allowed: allowed}
	for i, o := range outcomes {
		t := q.intervals[i]
		horizon := o.now.Add(time.Duration(q.bursts[i]) * t) // the latest TAT still allowed
		next := o.base.Add(t)
		name := q.checks[i].Limit.Name
		switch {
		case allowed:
			remaining := int(horizon.Sub(next) / t)
			if d.Limit == "" || remaining < d.Remaining {
				d.Remaining, d.Limit = remaining, name
			}
		case !o.allowed:
			wait := roundUp(next.Sub(horizon), time.Millisecond)
			if d.Limit == "" || wait > d.RetryAfter {
				d.RetryAfter, d.Limit = wait, name
			}
		}
	}
	return d, nil
}

// roundUp rounds d up to a multiple of unit: finer precision means nothing
// to a client, and rounding up never invites a retry that would be refused.
func roundUp(d, unit time.Duration) time.Duration {
	if r := d % unit; r != 0 {
		d += unit - r
	}
	return d
}

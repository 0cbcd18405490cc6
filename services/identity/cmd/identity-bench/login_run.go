package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/identity/internal/password"
	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/platform/benchkit"
)

const (
	// warmupLimit bounds the unmeasured warm-up of each load.
	warmupLimit = time.Second
	// accountMargin over-provisions accounts for a faster moment than the
	// rate a pool was sized from.
	accountMargin = 1.3
	// mailTimeout bounds the wait for identity's mail outbox to drain.
	mailTimeout = 2 * time.Minute
)

// warmup is how long each load warms up before it is measured.
func (b *bench) warmup() time.Duration { return min(warmupLimit, b.cfg.duration) }

// measured is how long each load of a comparison is measured in all.
func (b *bench) measured() time.Duration { return time.Duration(b.cfg.rounds) * b.cfg.duration }

// accountsFor returns how many accounts a login load at rate per second
// needs for its warm-up and measured time without reusing any, plus extra.
func accountsFor(rate float64, warmup, measured time.Duration, extra int) int {
	n := int(math.Ceil(rate*accountMargin*(warmup+measured).Seconds())) + extra
	return max(n, 1)
}

// loginRun measures argon2id in this process against Login over gRPC,
// interleaved, each at its capacity: the hash with one goroutine per core,
// Login with more calls in flight than identity has hash slots, so that
// its slots never wait for a call's database work: rows 1 and 2.
func (b *bench) loginRun(ctx context.Context) error {
	one := tenantSlug(oneTenantIndex)
	b.log.Info("creating the first tenant", "tenant", one)
	if err := b.regClient.createTenant(ctx, one); err != nil {
		return err
	}

	// The baseline is the hasher identity itself uses, with identity's
	// parameters, verifying a stored hash as Login does.
	hasher, err := password.NewHasher(password.DefaultParams, b.cfg.hashWorkers)
	if err != nil {
		return err
	}
	encoded, err := hasher.Hash(ctx, b.pass)
	if err != nil {
		return err
	}
	hashCall := func(ctx context.Context, _ int, _ *rand.Rand) error {
		ok, _, err := hasher.Verify(ctx, encoded, b.pass)
		if err == nil && !ok {
			err = errors.New("argon2id: the password does not verify against its own hash")
		}
		return err
	}
	b.hashCall = hashCall

	// The hash rate sizes the account pool: no login can be faster than
	// hashing, so at that rate no login reuses an account. Signing up
	// takes a while, and the machine's speed drifts: the rate is read again
	// just before measuring, and the pool topped up if it grew.
	for range 2 {
		rate, err := b.loginRateBound(ctx)
		if err != nil {
			return err
		}
		// The -clients extra accounts are the sessions of the next measure.
		if err := b.ensureOneTenantAccounts(ctx, accountsFor(rate, b.warmup(), b.measured(), b.cfg.clients)); err != nil {
			return err
		}
	}

	b.log.Info("measuring argon2id in-process and Login over gRPC, interleaved",
		"hash_goroutines", b.cfg.hashWorkers, "clients", b.cfg.loginClients, "rounds", b.cfg.rounds, "round", b.cfg.duration)
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: b.cfg.loginClients, Duration: b.cfg.duration, Warmup: b.warmup()},
		benchkit.Side{Call: hashCall, CPU: []benchkit.CPUMeter{benchkit.SelfCPUTime}, Workers: b.cfg.hashWorkers},
		benchkit.Side{Call: b.loginLoad(b.onePool), CPU: []benchkit.CPUMeter{b.identityCPU, b.pgCPU, benchkit.SelfCPUTime}, AfterSlice: b.ceilingSampler(ctx, one)})
	if err != nil {
		return err
	}
	if reused := b.onePool.reused(); reused > 0 {
		b.tbl.Note("Login in one tenant: %d of the logins reused an account of the %s signed up (the pool was sized from a slower hash rate).",
			reused, benchkit.FormatCount(len(b.onePool.accounts)))
	}
	hash, logins := c.Base.Total(), c.Subject.Total()
	if hash.Calls == 0 || logins.Calls == 0 {
		return fmt.Errorf("no hash or no login succeeded: hashing: %v; logins: %v", hash.Err(), logins.Err())
	}
	if err := hash.Err(); err != nil {
		b.unclean[kLoginRatio] = true
		b.tbl.Note("argon2id in-process: %v", err)
	}
	if err := logins.Err(); err != nil {
		b.unclean[kLoginRatio] = true
		b.tbl.Note("Login in one tenant: %v", err)
	}
	b.hashRate = c.Base.MedianThroughput()
	b.loginRate = c.Subject.MedianThroughput()
	b.tbl.Info(kHashTPS, benchkit.FormatFloat(b.hashRate))
	b.cpuRow(kHashCPU, c.Base, 0, time.Millisecond)
	b.tbl.Info(kLoginTPS, benchkit.FormatFloat(b.loginRate))
	b.tbl.Info(kLoginP50, benchkit.FormatMillis(logins.Latency.Percentile(0.50)))
	b.tbl.Info(kLoginP99, benchkit.FormatMillis(logins.Latency.Percentile(0.99)))
	b.cpuRow(kLoginCPU, c.Subject, 0, time.Millisecond)
	b.cpuRow(kLoginPGCPU, c.Subject, 1, time.Millisecond)
	b.cpuRow(kLoginClientCPU, c.Subject, 2, time.Millisecond)
	b.tbl.Set(kLoginRatio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= minLoginVsHash && b.clean(kLoginRatio)))
	b.tbl.Info(kCeiling, benchkit.FormatCount(b.ceilingMax))
	return nil
}

// ensureOneTenantAccounts signs up accounts in the one tenant until it has
// n, and waits for their mail to go out. The first sign-ups give the
// sign-up throughput row.
func (b *bench) ensureOneTenantAccounts(ctx context.Context, n int) error {
	have, key := 0, kSignupTPS
	if b.onePool != nil {
		have, key = len(b.onePool.accounts), ""
	}
	if have >= n {
		return nil
	}
	all := oneTenantAccounts(tenantSlug(oneTenantIndex), n)
	if err := b.signUpAll(ctx, "signing up accounts in one tenant", all[have:], key); err != nil {
		return err
	}
	b.onePool = newAccountPool(all)
	return b.waitMailSent(ctx)
}

// loginRateBound returns the most logins per second the next login
// measure can plausibly reach, to size its account pool: the fastest of a
// fresh in-process hash rate (identity idle), the hash rate and the login
// rate measured before. The machine's speed drifts, so a pool sized from
// one reading alone may run short.
func (b *bench) loginRateBound(ctx context.Context) (float64, error) {
	r := benchkit.RunFor(ctx, b.cfg.hashWorkers, b.warmup(), b.hashCall)
	if r.Calls == 0 {
		return 0, fmt.Errorf("argon2id calibration: %w", r.Err())
	}
	if b.hashRate == 0 {
		b.hashRate = r.Throughput()
	}
	return max(r.Throughput(), b.hashRate, b.loginRate), nil
}

// cpuRow fills in a CPU-per-call row from the series' meter-th CPU meter,
// in unit, or marks it n/a.
func (b *bench) cpuRow(key string, s benchkit.Series, meter int, unit time.Duration) {
	if cpu, ok := s.CPUPerCall(meter); ok {
		b.tbl.Info(key, benchkit.FormatFloat(float64(cpu)/float64(unit)))
	} else {
		b.tbl.Skip("the CPU time could not be read from /proc (see the warnings on stderr)", key)
	}
}

// pgCPU reads the CPU time PostgreSQL has used.
func (b *bench) pgCPU() (time.Duration, error) { return b.pgMeter() }

// identityCPU reads the running identity's CPU time.
func (b *bench) identityCPU() (time.Duration, error) {
	if b.identity == nil {
		return 0, errors.New("identity is not running")
	}
	return b.identity.CPUTime()
}

// loginLoad logs in with the pool's accounts in turn, each login from the
// next source address, and keeps the access tokens it gets.
func (b *bench) loginLoad(pool *accountPool) benchkit.CallFunc {
	return func(ctx context.Context, _ int, _ *rand.Rand) error {
		a, i := pool.take()
		resp, err := login(ctx, b.fromSources.pick(i), a, b.pass)
		if err != nil {
			return err
		}
		b.keepToken(resp.GetAccessToken())
		return nil
	}
}

// signUpAll signs every account up through identity's API, reporting
// progress; key, if set, receives the sign-up throughput.
func (b *bench) signUpAll(ctx context.Context, what string, accounts []account, key string) error {
	b.log.Info(what, "accounts", len(accounts), "clients", b.cfg.signupClients)
	progress := benchkit.NewProgress(b.log, what, len(accounts))
	r := benchkit.RunCount(ctx, b.cfg.signupClients, len(accounts), func(ctx context.Context, i int) error {
		return signUp(ctx, b.fromSources, i, accounts[i], b.pass)
	}, progress.Report)
	if err := r.Err(); err != nil {
		return fmt.Errorf("SignUp: %w", err)
	}
	progress.Done(int(r.Calls))
	if key != "" {
		b.tbl.Info(key, benchkit.FormatFloat(r.Throughput()))
	}
	return nil
}

// waitMailSent waits until identity's outbox has no mail due, so that the
// sign-ups' mails are not delivered during a measure.
func (b *bench) waitMailSent(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var due int
		err := b.db.QueryRow(ctx, `SELECT count(*) FROM tenantry_identity.outbox
			WHERE sent_time IS NULL AND next_attempt_time <= now()`).Scan(&due)
		if err != nil {
			return fmt.Errorf("read identity's mail outbox: %w", err)
		}
		if due == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("identity's mail outbox still had %d mails due after %s: %w", due, mailTimeout, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// ceilingSampler returns a function that reads how much of tenant's login
// ceiling (ratelimit.LoginPerTenant) is in use, and keeps the largest. The
// limit is a GCRA: its stored theoretical arrival time runs ahead of now by
// one emission interval per request of burst in use.
func (b *bench) ceilingSampler(ctx context.Context, tenant string) func() {
	l := ratelimit.LoginPerTenant
	interval := l.Per / time.Duration(l.Rate)
	uid, err := b.regClient.tenantUID(ctx, tenant)
	if err != nil {
		b.log.Warn("cannot read the tenant's login ceiling", "err", err)
		return func() {}
	}
	key := l.Name + ":" + uid // the key of a tenant-only scope: limits are per tenant uid
	return func() {
		var ahead float64 // seconds
		err := b.db.QueryRow(ctx, `SELECT GREATEST(EXTRACT(EPOCH FROM tat - now()), 0)::float8
			FROM tenantry_identity.rate_limits WHERE key = $1`, key).Scan(&ahead)
		if errors.Is(err, pgx.ErrNoRows) {
			return
		}
		if err != nil {
			b.log.Warn("cannot read the tenant's login ceiling", "err", err)
			return
		}
		b.ceilingMax = max(b.ceilingMax, int(math.Ceil(ahead/interval.Seconds())))
	}
}

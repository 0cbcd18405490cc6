package ratelimit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/ratelimit"
)

// fivePerMinute is the brief's example: 5 per minute (one every 12 s), burst 10.
var fivePerMinute = ratelimit.Limit{Name: "test.login", Rate: 5, Per: time.Minute, Burst: 10}

func TestAllowFollowsGCRA(t *testing.T) {
	t.Parallel()
	type step struct {
		name          string
		advance       time.Duration
		wantAllowed   bool
		wantRemaining int
		wantRetry     time.Duration
	}
	steps := []step{{name: "a fresh key allows and has burst-1 left", wantAllowed: true, wantRemaining: 9}}
	for i := 8; i >= 0; i-- {
		steps = append(steps, step{name: "the burst is spent one at a time", wantAllowed: true, wantRemaining: i})
	}
	steps = append(steps,
		step{name: "past the burst it refuses for one interval", wantRetry: 12 * time.Second},
		step{name: "waiting part of the interval shortens the wait", advance: 5 * time.Second, wantRetry: 7 * time.Second},
		step{name: "a millisecond early is still refused", advance: 7*time.Second - time.Millisecond, wantRetry: time.Millisecond},
		step{name: "after the interval one more is allowed", advance: time.Millisecond, wantAllowed: true},
		step{name: "and then it refuses again", wantRetry: 12 * time.Second},
		step{name: "after half the burst's worth of time, half the burst is back", advance: 12*time.Second + 4*12*time.Second, wantAllowed: true, wantRemaining: 4},
		step{name: "after a long quiet period the whole burst is back", advance: time.Hour, wantAllowed: true, wantRemaining: 9},
	)

	clock := newFakeClock()
	l, _, _ := newLimiter(t, clock)
	ctx := context.Background()
	for i, s := range steps {
		clock.Advance(s.advance)
		d, err := l.Allow(ctx, fivePerMinute, "acme", "alice")
		require.NoError(t, err, "step %d: %s", i, s.name)
		want := ratelimit.Decision{Allowed: s.wantAllowed, Remaining: s.wantRemaining, RetryAfter: s.wantRetry, Limit: "test.login"}
		require.Equal(t, want, d, "step %d: %s", i, s.name)
	}
}

func TestRefusalsDoNotExtendTheWait(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l, pool, _ := newLimiter(t, clock)
	ctx := context.Background()
	for range fivePerMinute.Burst {
		d, err := l.Allow(ctx, fivePerMinute, "acme", "victim")
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	key := ratelimit.Key(fivePerMinute.Name, "acme", "victim")
	tatAfterBurst := storedTAT(t, pool, key)

	// A flood during the whole interval: every request refused, and each
	// refusal's wait is what remains of the same interval.
	for elapsed := time.Duration(0); elapsed < 12*time.Second; elapsed += 100 * time.Millisecond {
		d, err := l.Allow(ctx, fivePerMinute, "acme", "victim")
		require.NoError(t, err)
		require.False(t, d.Allowed)
		require.Equal(t, 12*time.Second-elapsed, d.RetryAfter)
		clock.Advance(100 * time.Millisecond)
	}
	require.Equal(t, tatAfterBurst, storedTAT(t, pool, key), "refusals must not move the TAT")

	d, err := l.Allow(ctx, fivePerMinute, "acme", "victim")
	require.NoError(t, err)
	require.True(t, d.Allowed, "the owner waits no longer than the first refusal said")
}

func TestOneAddressCannotLockTheOwnerOut(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l, _, _ := newLimiter(t, clock)
	ctx := context.Background()

	// An attacker guesses the owner's password from one address, ten
	// times a second for ten minutes.
	attackerAllowed := 0
	for range 6000 / 10 {
		for range 10 {
			d, err := l.AllowAll(ctx, ratelimit.LoginChecks("acme", "owner@example.com", "198.51.100.66", 0)...)
			require.NoError(t, err)
			if d.Allowed {
				attackerAllowed++
			} else {
				require.Equal(t, ratelimit.LoginPerAccountAddress.Name, d.Limit, "only the tight limit stops the attacker")
			}
		}
		clock.Advance(time.Second)
	}
	// The burst at 0 s, then one every 12 seconds: at 12 s, 24 s, ..., 588 s.
	require.Equal(t, ratelimit.LoginPerAccountAddress.Burst+49, attackerAllowed)

	// The owner, at their own address, logs in at once, mistypes included.
	for range 3 {
		d, err := l.AllowAll(ctx, ratelimit.LoginChecks("acme", "Owner@Example.com", "203.0.113.7", 0)...)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
}

func TestReplicasShareTheBudget(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	first, _, url := newLimiter(t, clock)
	// A second replica: its own pool and Limiter on the same database.
	second := ratelimit.New(newPool(t, url))
	require.NoError(t, second.Setup(context.Background()))
	ratelimit.SetClock(second, clock.Now)

	ctx := context.Background()
	replicas := []*ratelimit.Limiter{first, second}
	allowed := 0
	for i := range 2 * fivePerMinute.Burst {
		d, err := replicas[i%2].Allow(ctx, fivePerMinute, "acme", "alice")
		require.NoError(t, err)
		if d.Allowed {
			allowed++
		}
	}
	require.Equal(t, fivePerMinute.Burst, allowed)
}

func TestConcurrentRequestsAllowExactlyTheBurst(t *testing.T) {
	t.Parallel()
	clock := newFakeClock() // frozen: nothing refills while they race
	l, _, _ := newLimiter(t, clock)
	limit := ratelimit.Limit{Name: "test.hammer", Rate: 1, Per: time.Hour, Burst: 25}

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 10 {
				d, err := l.Allow(context.Background(), limit, "acme", "alice")
				if !assertNoError(t, err) {
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, limit.Burst, allowed.Load())
}

func TestConcurrentAllowAllChargesAllOrNothing(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l, _, _ := newLimiter(t, clock)
	tight := ratelimit.Limit{Name: "test.tight", Rate: 1, Per: time.Hour, Burst: 5}
	loose := ratelimit.Limit{Name: "test.loose", Rate: 1, Per: time.Hour, Burst: 1000}
	checks := []ratelimit.Check{
		{Limit: loose, Parts: []string{"acme", "alice"}},
		{Limit: tight, Parts: []string{"acme", "alice", "203.0.113.7"}},
	}

	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 10 {
				d, err := l.AllowAll(context.Background(), checks...)
				if !assertNoError(t, err) {
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, tight.Burst, allowed.Load())

	// The loose limit was charged for the allowed requests only.
	d, err := l.Allow(context.Background(), loose, "acme", "alice")
	require.NoError(t, err)
	require.Equal(t, loose.Burst-tight.Burst-1, d.Remaining)
}

func TestAllowAllReturnsTheMostRestrictiveDecision(t *testing.T) {
	t.Parallel()
	roomy := ratelimit.Limit{Name: "test.roomy", Rate: 60, Per: time.Minute, Burst: 100} // one a second
	narrow := ratelimit.Limit{Name: "test.narrow", Rate: 6, Per: time.Minute, Burst: 3}  // one every 10 s
	slow := ratelimit.Limit{Name: "test.slow", Rate: 1, Per: time.Minute, Burst: 1}      // one a minute
	checks := func(limits ...ratelimit.Limit) []ratelimit.Check {
		var cs []ratelimit.Check
		for _, l := range limits {
			cs = append(cs, ratelimit.Check{Limit: l, Parts: []string{"acme", "alice"}})
		}
		return cs
	}

	t.Run("when all allow, the fewest remaining wins", func(t *testing.T) {
		t.Parallel()
		l, _, _ := newLimiter(t, newFakeClock())
		d, err := l.AllowAll(context.Background(), checks(roomy, narrow)...)
		require.NoError(t, err)
		require.Equal(t, ratelimit.Decision{Allowed: true, Remaining: 2, Limit: "test.narrow"}, d)
	})

	t.Run("when one refuses, nothing is charged", func(t *testing.T) {
		t.Parallel()
		l, _, _ := newLimiter(t, newFakeClock())
		ctx := context.Background()
		d, err := l.Allow(ctx, slow, "acme", "alice")
		require.NoError(t, err)
		require.True(t, d.Allowed)

		for range 5 {
			d, err = l.AllowAll(ctx, checks(roomy, narrow, slow)...)
			require.NoError(t, err)
			require.Equal(t, ratelimit.Decision{RetryAfter: time.Minute, Limit: "test.slow"}, d)
		}
		// roomy and narrow still have their whole bursts.
		d, err = l.Allow(ctx, narrow, "acme", "alice")
		require.NoError(t, err)
		require.Equal(t, narrow.Burst-1, d.Remaining)
		d, err = l.Allow(ctx, roomy, "acme", "alice")
		require.NoError(t, err)
		require.Equal(t, roomy.Burst-1, d.Remaining)
	})

	t.Run("when several refuse, the longest wait wins", func(t *testing.T) {
		t.Parallel()
		l, _, _ := newLimiter(t, newFakeClock())
		ctx := context.Background()
		spend := func(limit ratelimit.Limit) {
			for range limit.Burst {
				d, err := l.Allow(ctx, limit, "acme", "alice")
				require.NoError(t, err)
				require.True(t, d.Allowed)
			}
		}
		spend(narrow) // refuses for 10 s
		spend(slow)   // refuses for a minute
		for _, order := range [][]ratelimit.Limit{{roomy, narrow, slow}, {slow, narrow, roomy}} {
			d, err := l.AllowAll(ctx, checks(order...)...)
			require.NoError(t, err)
			require.Equal(t, ratelimit.Decision{RetryAfter: time.Minute, Limit: "test.slow"}, d)
		}
	})
}

func TestKeysNeverHoldWhatTheClientSent(t *testing.T) {
	t.Parallel()
	l, pool, _ := newLimiter(t, newFakeClock())
	ctx := context.Background()
	d, err := l.AllowAll(ctx, ratelimit.LoginChecks("acme", "Victim.Person@Example.com", "203.0.113.7", 0)...)
	require.NoError(t, err)
	require.True(t, d.Allowed)

	rows, err := pool.Query(ctx, "SELECT key FROM tenantry_identity.rate_limits ORDER BY key")
	require.NoError(t, err)
	var keys []string
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		keys = append(keys, k)
	}
	require.NoError(t, rows.Err())

	require.Len(t, keys, 4)
	for _, k := range keys {
		for _, secret := range []string{"@", "victim", "person", "example", "203.0.113"} {
			require.NotContains(t, k, secret)
		}
		require.Regexp(t, `^login\.[a-z_]+:acme(:[0-9a-f]{64})?$`, k)
	}
	require.Contains(t, keys, "login.tenant:acme", "the tenant ceiling's key is readable")
}

func TestCleanupRemovesOnlyExpiredRows(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l, pool, _ := newLimiter(t, clock)
	ctx := context.Background()
	short := ratelimit.Limit{Name: "test.short", Rate: 1, Per: time.Second, Burst: 5}
	long := ratelimit.Limit{Name: "test.long", Rate: 1, Per: time.Hour, Burst: 5}
	for _, user := range []string{"alice", "bob", "carol"} {
		_, err := l.Allow(ctx, short, "acme", user)
		require.NoError(t, err)
		_, err = l.Allow(ctx, long, "acme", user)
		require.NoError(t, err)
	}
	require.Equal(t, 6, rowCount(t, pool))

	n, err := l.Cleanup(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing has refilled yet")

	clock.Advance(time.Minute) // the short limit has refilled, the long one has not
	n, err = l.Cleanup(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	require.Equal(t, 3, rowCount(t, pool))

	// Deleting a refilled key changed nothing: it has its whole burst.
	d, err := l.Allow(ctx, short, "acme", "alice")
	require.NoError(t, err)
	require.Equal(t, short.Burst-1, d.Remaining)
}

func TestRunCleansUpUntilCancelled(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l, pool, _ := newLimiter(t, clock)
	ctx := context.Background()
	_, err := l.Allow(ctx, fivePerMinute, "acme", "alice")
	require.NoError(t, err)
	clock.Advance(time.Hour)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(runCtx, time.Hour) // its first pass runs at once
	}()
	require.Eventually(t, func() bool {
		// Not rowCount: Eventually polls from another goroutine, where
		// require must not be used.
		var n int
		err := pool.QueryRow(ctx, "SELECT count(*) FROM tenantry_identity.rate_limits").Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 10*time.Millisecond)
	cancel()
	<-done
}

func TestDatabaseClockInProduction(t *testing.T) {
	t.Parallel()
	l, _, _ := newLimiter(t, nil)
	ctx := context.Background()
	limit := ratelimit.Limit{Name: "test.hourly", Rate: 1, Per: time.Hour, Burst: 2}
	for want := 1; want >= 0; want-- {
		d, err := l.Allow(ctx, limit, "acme", "alice")
		require.NoError(t, err)
		require.Equal(t, ratelimit.Decision{Allowed: true, Remaining: want, Limit: "test.hourly"}, d)
	}
	d, err := l.Allow(ctx, limit, "acme", "alice")
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Positive(t, d.RetryAfter)
	require.LessOrEqual(t, d.RetryAfter, time.Hour)
}

func TestSetupIsIdempotentAndSafeConcurrently(t *testing.T) {
	t.Parallel()
	l, pool, _ := newLimiter(t, nil) // has run Setup once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			assertNoError(t, ratelimit.New(pool).Setup(context.Background()))
		})
	}
	wg.Wait()
	require.NoError(t, l.Setup(context.Background()))

	var persistence string
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT relpersistence FROM pg_class WHERE oid = 'tenantry_identity.rate_limits'::regclass").Scan(&persistence))
	require.Equal(t, "u", persistence, "the table is unlogged")
}

func TestConcurrentFirstSetup(t *testing.T) {
	t.Parallel()
	_, pool, _ := newLimiter(t, nil)
	_, err := pool.Exec(context.Background(), "DROP SCHEMA tenantry_identity CASCADE")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			assertNoError(t, ratelimit.New(pool).Setup(context.Background()))
		})
	}
	wg.Wait()
	require.Zero(t, rowCount(t, pool))
}

func TestInvalidChecksAreRejected(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(nil) // never reaches the database
	valid := ratelimit.Limit{Name: "test.valid", Rate: 1, Per: time.Second, Burst: 1}
	with := func(change func(*ratelimit.Limit)) ratelimit.Limit {
		l := valid
		change(&l)
		return l
	}
	tests := []struct {
		name    string
		checks  []ratelimit.Check
		wantErr string
	}{
		{name: "no checks", wantErr: "no checks"},
		{name: "an empty name", checks: []ratelimit.Check{{Limit: with(func(l *ratelimit.Limit) { l.Name = "" })}}, wantErr: "limit name"},
		{name: "a name with a colon", checks: []ratelimit.Check{{Limit: with(func(l *ratelimit.Limit) { l.Name = "a:b" })}}, wantErr: "limit name"},
		{name: "a zero rate", checks: []ratelimit.Check{{Limit: with(func(l *ratelimit.Limit) { l.Rate = 0 })}}, wantErr: "rate 0"},
		{name: "a zero period", checks: []ratelimit.Check{{Limit: with(func(l *ratelimit.Limit) { l.Per = 0 })}}, wantErr: "period"},
		{name: "a zero burst", checks: []ratelimit.Check{{Limit: with(func(l *ratelimit.Limit) { l.Burst = 0 })}}, wantErr: "burst 0"},
		{name: "more than one event per microsecond", checks: []ratelimit.Check{{Limit: with(func(l *ratelimit.Limit) { l.Rate = 3; l.Per = time.Microsecond })}}, wantErr: "per microsecond"},
		{name: "a burst spanning decades", checks: []ratelimit.Check{{Limit: with(func(l *ratelimit.Limit) { l.Per = 24 * time.Hour; l.Burst = 100000 })}}, wantErr: "spans more than"},
		{
			name: "the same limit and scope twice",
			checks: []ratelimit.Check{
				{Limit: valid, Parts: []string{"acme", "alice"}},
				{Limit: valid, Parts: []string{"acme", "alice"}},
			},
			wantErr: "checked twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := l.AllowAll(context.Background(), tt.checks...)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// assertNoError reports err from a goroutine other than the test's, where
// require must not be used, and says whether there was none.
func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestATenantsLoginCeilingFollowsItsRate(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l, _, _ := newLimiter(t, clock)
	ctx := context.Background()
	n := 0
	// loginsUntilRefused logs in at one instant, each time as another
	// account from another address so that only the tenant's ceiling
	// counts, until a login is refused; it returns how many were allowed
	// and the refusal.
	loginsUntilRefused := func(perSecond int) (int, ratelimit.Decision) {
		t.Helper()
		for allowed := 0; ; allowed++ {
			n++
			account, addr := fmt.Sprintf("user%d@example.com", n), fmt.Sprintf("198.51.%d.%d", n/250, n%250)
			d, err := l.AllowAll(ctx, ratelimit.LoginChecks("acme", account, addr, perSecond)...)
			require.NoError(t, err)
			if !d.Allowed {
				return allowed, d
			}
			require.Less(t, allowed, 10_000, "the ceiling never refused")
		}
	}
	steps := []struct {
		name        string
		advance     time.Duration
		perSecond   int
		wantAllowed int
		wantRetry   time.Duration
	}{
		{"the default lets five seconds' worth through at once", 0, 0, 250, 20 * time.Millisecond},
		{"a second later the default lets 50 more through", time.Second, 0, 50, 20 * time.Millisecond},
		{"raised to 200 a second, a second later 200 more get through", time.Second, 200, 200, 5 * time.Millisecond},
		{"lowered to 1 a second, a second later only one more does", time.Second, 1, 1, time.Second},
		{"and a refused flood does not push the next one further away", 0, 1, 0, time.Second},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		allowed, refusal := loginsUntilRefused(s.perSecond)
		require.Equal(t, s.wantAllowed, allowed, s.name)
		require.Equal(t, "login.tenant", refusal.Limit, s.name)
		require.Equal(t, s.wantRetry, refusal.RetryAfter, s.name)
	}
}

func TestEveryTenantLoginRateIsAValidLimit(t *testing.T) {
	t.Parallel()
	l, _, _ := newLimiter(t, newFakeClock())
	for _, perSecond := range []int{1, 50, 30_000, 100_000} {
		d, err := l.AllowAll(context.Background(), ratelimit.LoginChecks("acme", "alice@example.com", "203.0.113.7", perSecond)...)
		require.NoError(t, err, "%d a second", perSecond)
		require.True(t, d.Allowed)
	}
}

package store_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/tenancy"
)

func randomHash(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// runRotations starts the store's batching for the test.
func (f *fixture) runRotations(t *testing.T) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.store.RunRotations(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	// Rotate answers OK=false until the workers run: wait for a rotation.
	_, s := f.newUserWithSession(t)
	hash := f.issue(t, f.tenant, s.ID)
	eventually(t, "rotations to run", func() bool {
		out, err := f.store.Rotate(context.Background(), f.tenant, f.rotation(hash, randomHash(t)))
		require.NoError(t, err)
		return out.OK
	})
}

func (f *fixture) issue(t *testing.T, tenant tenancy.Tenant, sessionID string) []byte {
	t.Helper()
	hash := randomHash(t)
	require.NoError(t, f.store.InTenant(context.Background(), tenant, func(ctx context.Context, tx account.Tx) error {
		return tx.InsertRefreshToken(ctx, hash, sessionID, time.Now().UTC())
	}))
	return hash
}

func (f *fixture) rotation(oldHash, newHash []byte) account.Rotation {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return account.Rotation{OldHash: oldHash, NewHash: newHash, Now: now, Expires: now.Add(time.Hour), MaxAge: 24 * time.Hour}
}

// tokenState returns the session of a token and whether it was used.
func (f *fixture) tokenState(t *testing.T, tenant tenancy.Tenant, hash []byte) (sessionID string, used bool, found bool) {
	t.Helper()
	var at time.Time
	err := f.store.InTenant(context.Background(), tenant, func(ctx context.Context, tx account.Tx) error {
		var err error
		sessionID, at, err = tx.RefreshToken(ctx, hash)
		return err
	})
	if err == account.ErrNotFound {
		return "", false, false
	}
	require.NoError(t, err)
	return sessionID, !at.IsZero(), true
}

func TestRotateWithoutBatchingRotatesNothing(t *testing.T) {
	f := newFixture(t)
	_, s := f.newUserWithSession(t)
	old := f.issue(t, f.tenant, s.ID)
	out, err := f.store.Rotate(context.Background(), f.tenant, f.rotation(old, randomHash(t)))
	require.NoError(t, err)
	require.False(t, out.OK)
	_, used, _ := f.tokenState(t, f.tenant, old)
	require.False(t, used)
}

func TestRotateConcurrentRefreshesAcrossTenants(t *testing.T) {
	f := newFixture(t)
	_, err := f.pool.Exec(context.Background(), `CREATE SCHEMA globex`)
	require.NoError(t, err)
	f.runRotations(t)
	globex := tenancy.Tenant{Slug: "globex", Schema: "globex", Placement: f.tenant.Placement}

	type chain struct {
		tenant  tenancy.Tenant
		user    string
		session string
		hash    []byte
	}
	var chains []*chain
	for i := range 20 {
		tenant := f.tenant
		if i%2 == 1 {
			tenant = globex
		}
		u, s := f.newUserIn(t, tenant)
		chains = append(chains, &chain{tenant: tenant, user: u.ID, session: s.ID, hash: f.issue(t, tenant, s.ID)})
	}
	// Each chain refreshes 10 times, all chains at once.
	var wg sync.WaitGroup
	errs := make(chan error, len(chains))
	for _, c := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				next := randomHash(t)
				out, err := f.store.Rotate(context.Background(), c.tenant, f.rotation(c.hash, next))
				if err != nil {
					errs <- err
					return
				}
				if !out.OK || out.SessionID != c.session || out.UserID != c.user {
					errs <- &mismatch{out}
					return
				}
				c.hash = next
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, c := range chains {
		session, used, found := f.tokenState(t, c.tenant, c.hash)
		require.True(t, found)
		require.False(t, used, "the newest token of a chain is unused")
		require.Equal(t, c.session, session)
		// A token of one tenant is unknown in the other.
		other := globex
		if c.tenant == globex {
			other = f.tenant
		}
		_, _, found = f.tokenState(t, other, c.hash)
		require.False(t, found, "a token was written into another tenant's schema")
	}
}

type mismatch struct{ out account.Rotated }

func (m *mismatch) Error() string { return "unexpected rotation result" }

func (f *fixture) newUserIn(t *testing.T, tenant tenancy.Tenant) (*account.User, *account.Session) {
	t.Helper()
	saved := f.tenant
	f.tenant = tenant
	defer func() { f.tenant = saved }()
	return f.newUserWithSession(t)
}

func TestRotateOneTokenPresentedManyTimesAtOnceRotatesOnce(t *testing.T) {
	f := newFixture(t)
	f.runRotations(t)
	_, s := f.newUserWithSession(t)
	old := f.issue(t, f.tenant, s.ID)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners [][]byte
		losers  [][]byte
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := randomHash(t)
			out, err := f.store.Rotate(context.Background(), f.tenant, f.rotation(old, next))
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			if out.OK {
				winners = append(winners, next)
			} else {
				losers = append(losers, next)
			}
		}()
	}
	wg.Wait()
	require.Len(t, winners, 1)
	// The one told it rotated holds the token that was stored.
	session, used, found := f.tokenState(t, f.tenant, winners[0])
	require.True(t, found)
	require.False(t, used)
	require.Equal(t, s.ID, session)
	for _, h := range losers {
		_, _, found := f.tokenState(t, f.tenant, h)
		require.False(t, found, "a caller told it did not rotate had its token stored")
	}
}

func TestRotateLeavesTheUnusualCasesUntouched(t *testing.T) {
	f := newFixture(t)
	f.runRotations(t)
	ctx := context.Background()
	now := time.Now().UTC()

	tests := []struct {
		name  string
		setup func(t *testing.T, u *account.User, s *account.Session, hash []byte)
	}{
		{"a used token", func(t *testing.T, _ *account.User, _ *account.Session, hash []byte) {
			require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.UseRefreshToken(ctx, hash, now) }))
		}},
		{"a revoked session", func(t *testing.T, _ *account.User, s *account.Session, _ []byte) {
			require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.RevokeSession(ctx, s.ID, "test", now) }))
		}},
		{"an expired session", func(t *testing.T, _ *account.User, s *account.Session, _ []byte) {
			require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
				return tx.TouchSession(ctx, s.ID, now, now.Add(-time.Second))
			}))
		}},
		{"a disabled user", func(t *testing.T, u *account.User, _ *account.Session, _ []byte) {
			require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
				got, err := tx.UserByID(ctx, u.ID, true)
				if err != nil {
					return err
				}
				got.Disabled = true
				return tx.UpdateUser(ctx, got)
			}))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, s := f.newUserWithSession(t)
			old := f.issue(t, f.tenant, s.ID)
			tc.setup(t, u, s, old)
			_, usedBefore, _ := f.tokenState(t, f.tenant, old)
			next := randomHash(t)
			out, err := f.store.Rotate(ctx, f.tenant, f.rotation(old, next))
			require.NoError(t, err)
			require.False(t, out.OK)
			_, usedAfter, _ := f.tokenState(t, f.tenant, old)
			require.Equal(t, usedBefore, usedAfter, "the old token changed")
			_, _, found := f.tokenState(t, f.tenant, next)
			require.False(t, found, "a new token was issued")
		})
	}

	t.Run("an unknown token", func(t *testing.T) {
		out, err := f.store.Rotate(ctx, f.tenant, f.rotation(randomHash(t), randomHash(t)))
		require.NoError(t, err)
		require.False(t, out.OK)
	})
}

func TestRotateExtendsTheSessionUpToItsMaximumAgeAtMostOnceAMinute(t *testing.T) {
	f := newFixture(t)
	f.runRotations(t)
	_, s := f.newUserWithSession(t)
	session := func() *account.Session {
		var got *account.Session
		require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
			var err error
			got, err = tx.Session(ctx, s.ID, false)
			return err
		}))
		return got
	}
	// Last refreshed two minutes ago.
	lastRefresh := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Microsecond)
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		return tx.TouchSession(ctx, s.ID, lastRefresh, s.ExpireTime)
	}))
	old := f.issue(t, f.tenant, s.ID)
	r := f.rotation(old, randomHash(t))
	r.Expires = r.Now.Add(48 * time.Hour)
	r.MaxAge = 30 * time.Hour
	out, err := f.store.Rotate(context.Background(), f.tenant, r)
	require.NoError(t, err)
	require.True(t, out.OK)
	got := session()
	require.WithinDuration(t, s.CreateTime.Add(30*time.Hour), got.ExpireTime, time.Millisecond, "capped at the maximum age")
	require.WithinDuration(t, r.Now, got.RefreshTime, time.Millisecond)

	// Refreshed again within the minute: the session row is left alone.
	again := f.rotation(r.NewHash, randomHash(t))
	again.Expires = again.Now.Add(20 * time.Hour)
	out, err = f.store.Rotate(context.Background(), f.tenant, again)
	require.NoError(t, err)
	require.True(t, out.OK)
	require.Equal(t, got, session())
}

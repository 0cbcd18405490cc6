package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
)

func randomHash(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// current is a session's current refresh token, as its row keeps it.
type current struct {
	generation int64
	hash       []byte
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
	eventually(t, "rotations to run", func() bool {
		cur := f.issue(t, f.tenant, s.ID)
		out, err := f.store.Rotate(context.Background(), f.tenant, f.rotation(s.ID, cur, randomHash(t)))
		require.NoError(t, err)
		return out.OK
	})
}

// issue gives the session a new current token, at its current generation.
func (f *fixture) issue(t *testing.T, tenant tenancy.Tenant, sessionID string) current {
	t.Helper()
	hash := randomHash(t)
	var gen int64
	require.NoError(t, f.store.InTenant(context.Background(), tenant, func(ctx context.Context, tx account.Tx) error {
		s, err := tx.Session(ctx, sessionID, true)
		if err != nil {
			return err
		}
		gen = s.RefreshGeneration
		return tx.RotateSession(ctx, sessionID, gen, hash, s.RefreshTime, s.ExpireTime)
	}))
	return current{generation: gen, hash: hash}
}

func (f *fixture) rotation(sessionID string, old current, newHash []byte) account.Rotation {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return account.Rotation{SessionID: sessionID, Generation: old.generation, OldHash: old.hash, NewHash: newHash,
		Now: now, Expires: now.Add(time.Hour), MaxAge: 24 * time.Hour}
}

// state returns a session as stored in tenant; found is false when it is
// not there.
func (f *fixture) state(t *testing.T, tenant tenancy.Tenant, sessionID string) (s *account.Session, found bool) {
	t.Helper()
	err := f.store.InTenant(context.Background(), tenant, func(ctx context.Context, tx account.Tx) error {
		var err error
		s, err = tx.Session(ctx, sessionID, false)
		return err
	})
	if err == account.ErrNotFound {
		return nil, false
	}
	require.NoError(t, err)
	return s, true
}

func TestRotateWithoutBatchingRotatesNothing(t *testing.T) {
	f := newFixture(t)
	_, s := f.newUserWithSession(t)
	cur := f.issue(t, f.tenant, s.ID)
	out, err := f.store.Rotate(context.Background(), f.tenant, f.rotation(s.ID, cur, randomHash(t)))
	require.NoError(t, err)
	require.False(t, out.OK)
	got, _ := f.state(t, f.tenant, s.ID)
	require.Equal(t, cur.generation, got.RefreshGeneration)
	require.Equal(t, cur.hash, got.RefreshHash)
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
		cur     current
	}
	var chains []*chain
	for i := range 20 {
		tenant := f.tenant
		if i%2 == 1 {
			tenant = globex
		}
		u, s := f.newUserIn(t, tenant)
		chains = append(chains, &chain{tenant: tenant, user: u.ID, session: s.ID, cur: f.issue(t, tenant, s.ID)})
	}
	// Each chain refreshes 10 times, all chains at once.
	const rotations = 10
	var wg sync.WaitGroup
	errs := make(chan error, len(chains))
	for _, c := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rotations {
				next := randomHash(t)
				out, err := f.store.Rotate(context.Background(), c.tenant, f.rotation(c.session, c.cur, next))
				if err != nil {
					errs <- err
					return
				}
				if !out.OK || out.SessionID != c.session || out.UserID != c.user {
					errs <- &mismatch{out}
					return
				}
				c.cur = current{generation: c.cur.generation + 1, hash: next}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, c := range chains {
		got, found := f.state(t, c.tenant, c.session)
		require.True(t, found)
		require.Equal(t, int64(rotations), got.RefreshGeneration)
		require.Equal(t, c.cur.hash, got.RefreshHash, "the session keeps the newest token")
		// A session of one tenant is unknown in the other, and cannot be
		// rotated there.
		other := globex
		if c.tenant == globex {
			other = f.tenant
		}
		_, found = f.state(t, other, c.session)
		require.False(t, found, "a session appeared in another tenant's schema")
		out, err := f.store.Rotate(context.Background(), other, f.rotation(c.session, c.cur, randomHash(t)))
		require.NoError(t, err)
		require.False(t, out.OK, "a session was rotated through another tenant")
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
	cur := f.issue(t, f.tenant, s.ID)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners [][]byte
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := randomHash(t)
			out, err := f.store.Rotate(context.Background(), f.tenant, f.rotation(s.ID, cur, next))
			require.NoError(t, err)
			if out.OK {
				mu.Lock()
				winners = append(winners, next)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, winners, 1)
	// The one told it rotated holds the token that was stored.
	got, _ := f.state(t, f.tenant, s.ID)
	require.Equal(t, cur.generation+1, got.RefreshGeneration)
	require.Equal(t, winners[0], got.RefreshHash)
}

func TestRotateLeavesTheUnusualCasesUntouched(t *testing.T) {
	f := newFixture(t)
	f.runRotations(t)
	ctx := context.Background()
	now := time.Now().UTC()

	tests := []struct {
		name string
		// setup changes the session or user, and returns the token then
		// presented.
		setup func(t *testing.T, u *account.User, s *account.Session, cur current) current
	}{
		{"a token rotated away", func(t *testing.T, _ *account.User, s *account.Session, cur current) current {
			out, err := f.store.Rotate(ctx, f.tenant, f.rotation(s.ID, cur, randomHash(t)))
			require.NoError(t, err)
			require.True(t, out.OK)
			return cur
		}},
		{"another hash at the current generation", func(t *testing.T, _ *account.User, _ *account.Session, cur current) current {
			return current{generation: cur.generation, hash: randomHash(t)}
		}},
		{"a generation ahead of the session", func(t *testing.T, _ *account.User, _ *account.Session, cur current) current {
			return current{generation: cur.generation + 1, hash: cur.hash}
		}},
		{"a revoked session", func(t *testing.T, _ *account.User, s *account.Session, cur current) current {
			require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.RevokeSession(ctx, s.ID, "test", now) }))
			return cur
		}},
		{"an expired session", func(t *testing.T, _ *account.User, s *account.Session, cur current) current {
			require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
				return tx.RotateSession(ctx, s.ID, cur.generation, cur.hash, now, now.Add(-time.Second))
			}))
			return cur
		}},
		{"a disabled user", func(t *testing.T, u *account.User, _ *account.Session, cur current) current {
			require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
				got, err := tx.UserByID(ctx, u.ID, true)
				if err != nil {
					return err
				}
				got.Disabled = true
				return tx.UpdateUser(ctx, got)
			}))
			return cur
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, s := f.newUserWithSession(t)
			presented := tc.setup(t, u, s, f.issue(t, f.tenant, s.ID))
			before, _ := f.state(t, f.tenant, s.ID)
			next := randomHash(t)
			out, err := f.store.Rotate(ctx, f.tenant, f.rotation(s.ID, presented, next))
			require.NoError(t, err)
			require.False(t, out.OK)
			after, _ := f.state(t, f.tenant, s.ID)
			require.Equal(t, before, after, "the session changed")
			require.False(t, bytes.Equal(next, after.RefreshHash))
		})
	}

	t.Run("an unknown session", func(t *testing.T) {
		out, err := f.store.Rotate(ctx, f.tenant, f.rotation(uuid.NewString(), current{hash: randomHash(t)}, randomHash(t)))
		require.NoError(t, err)
		require.False(t, out.OK)
	})
}

func TestRotateExtendsTheSessionUpToItsMaximumAge(t *testing.T) {
	f := newFixture(t)
	f.runRotations(t)
	_, s := f.newUserWithSession(t)
	cur := f.issue(t, f.tenant, s.ID)

	r := f.rotation(s.ID, cur, randomHash(t))
	r.Expires = r.Now.Add(20 * time.Hour)
	r.MaxAge = 30 * time.Hour
	out, err := f.store.Rotate(context.Background(), f.tenant, r)
	require.NoError(t, err)
	require.True(t, out.OK)
	got, _ := f.state(t, f.tenant, s.ID)
	require.WithinDuration(t, r.Expires, got.ExpireTime, time.Millisecond, "extended by the session TTL")
	require.WithinDuration(t, r.Now, got.RefreshTime, time.Millisecond)

	again := f.rotation(s.ID, current{generation: cur.generation + 1, hash: r.NewHash}, randomHash(t))
	again.Expires = again.Now.Add(48 * time.Hour)
	again.MaxAge = 30 * time.Hour
	out, err = f.store.Rotate(context.Background(), f.tenant, again)
	require.NoError(t, err)
	require.True(t, out.OK)
	got, _ = f.state(t, f.tenant, s.ID)
	require.WithinDuration(t, s.CreateTime.Add(30*time.Hour), got.ExpireTime, time.Millisecond, "capped at the maximum age")
	require.Equal(t, cur.generation+2, got.RefreshGeneration)
}

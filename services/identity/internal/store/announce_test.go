package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// recorder is a store.Listener that keeps what it hears.
type recorder struct {
	mu      sync.Mutex
	heard   []string // "u <id> <schema>" / "s <id> <schema>"
	online  map[string]bool
	changes int // SetOnline calls
}

func (r *recorder) ForgetSession(schema, id string) { r.add("s " + id + " " + schema) }
func (r *recorder) ForgetUser(schema, id string)    { r.add("u " + id + " " + schema) }
func (r *recorder) ForgetConfig(schema string)      { r.add("c " + schema) }
func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heard = append(r.heard, s)
}

func (r *recorder) SetOnline(placement string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.online == nil {
		r.online = map[string]bool{}
	}
	r.online[placement] = ok
	r.changes++
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.heard
	r.heard = nil
	return out
}

func (r *recorder) isOnline(p string) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.online[p], r.changes
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

type fixture struct {
	pool   *pgxpool.Pool
	tenant tenancy.Tenant
	// local hears this store's own commits; remote follows the channel,
	// as another replica would.
	local, remote *recorder
	store         *store.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, `CREATE SCHEMA acme`)
	require.NoError(t, err)
	f := &fixture{
		pool:   pool,
		tenant: tenancy.Tenant{Slug: "acme", Schema: "acme", Placement: tenantdb.DefaultPlacement},
		local:  &recorder{}, remote: &recorder{},
	}
	var out io.Writer = io.Discard
	if os.Getenv("TENANTRY_TEST_LOGS") != "" {
		out = t.Output()
	}
	logger := slog.New(slog.NewTextHandler(out, nil))
	pools := map[string]*pgxpool.Pool{tenantdb.DefaultPlacement: pool}
	f.store, err = store.New(pools, f.local, applyIn(pool), logger)
	require.NoError(t, err)
	follower, err := store.New(pools, nil, applyIn(pool), logger)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		follower.Follow(runCtx, f.remote, store.FollowOptions{Ping: 200 * time.Millisecond, Backoff: 50 * time.Millisecond})
	}()
	t.Cleanup(func() { stop(); <-done })
	eventually(t, "the listener to listen", func() bool { ok, _ := f.remote.isOnline(tenantdb.DefaultPlacement); return ok })
	return f
}

func (f *fixture) in(t *testing.T, fn func(ctx context.Context, tx account.Tx) error) error {
	t.Helper()
	return f.store.InTenant(context.Background(), f.tenant, fn)
}

func (f *fixture) newUserWithSession(t *testing.T) (*account.User, *account.Session) {
	t.Helper()
	now := time.Now().UTC()
	u := &account.User{ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", State: account.Active, CreateTime: now, UpdateTime: now}
	s := &account.Session{ID: uuid.NewString(), UserID: u.ID, CreateTime: now, RefreshTime: now, ExpireTime: now.Add(time.Hour)}
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		if err := tx.InsertUser(ctx, u); err != nil {
			return err
		}
		return tx.InsertSession(ctx, s)
	}))
	return u, s
}

// waitHeard waits until the remote recorder has heard want (in any order,
// maybe among others) and returns everything it heard.
func (f *fixture) waitHeard(t *testing.T, want ...string) []string {
	t.Helper()
	var all []string
	eventually(t, "announcements "+join(want), func() bool {
		all = append(all, f.remote.take()...)
		return containsAll(all, want)
	})
	return all
}

func join(s []string) string {
	out := ""
	for _, x := range s {
		out += "[" + x + "]"
	}
	return out
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestChangesAreAnnouncedToOtherReplicasAndToThisOne(t *testing.T) {
	f := newFixture(t)
	u, s := f.newUserWithSession(t)
	f.local.take()
	f.remote.take()
	now := time.Now().UTC()

	tests := []struct {
		name string
		do   func(ctx context.Context, tx account.Tx) error
		want string
	}{
		{"revoking a session", func(ctx context.Context, tx account.Tx) error {
			return tx.RevokeSession(ctx, s.ID, "test", now)
		}, "s " + s.ID + " acme"},
		{"editing the user", func(ctx context.Context, tx account.Tx) error {
			got, err := tx.UserByID(ctx, u.ID, true)
			if err != nil {
				return err
			}
			got.Disabled = true
			return tx.UpdateUser(ctx, got)
		}, "u " + u.ID + " acme"},
		{"changing the tenant's settings", func(ctx context.Context, tx account.Tx) error {
			set, err := tx.Settings(ctx)
			if err != nil {
				return err
			}
			set.PasswordMinLength++
			_, err = tx.SaveSettings(ctx, set)
			return err
		}, "c acme"},
		{"adding an identity provider", func(ctx context.Context, tx account.Tx) error {
			return tx.InsertIdentityProvider(ctx, &account.IdentityProvider{ID: "corp", DisplayName: "Corp", Kind: account.ProviderOIDC,
				Issuer: "https://login.corp.example", ClientID: "c", SealedSecret: []byte{1}, CreateTime: now, UpdateTime: now})
		}, "c acme"},
		{"deleting it", func(ctx context.Context, tx account.Tx) error {
			return tx.DeleteIdentityProvider(ctx, "corp")
		}, "c acme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, f.in(t, tc.do))
			require.Contains(t, f.local.take(), tc.want, "this replica was not told at commit")
			f.waitHeard(t, tc.want)
		})
	}

	t.Run("revoking all of a user's sessions announces each session", func(t *testing.T) {
		u2, s2 := f.newUserWithSession(t)
		require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
			return tx.RevokeUserSessions(ctx, u2.ID, "", "test", now)
		}))
		require.Contains(t, f.local.take(), "u "+u2.ID+" acme")
		f.waitHeard(t, "s "+s2.ID+" acme")
	})

	t.Run("deleting a user announces the user and their sessions", func(t *testing.T) {
		u3, s3 := f.newUserWithSession(t)
		require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.DeleteUser(ctx, u3.ID) }))
		f.waitHeard(t, "u "+u3.ID+" acme", "s "+s3.ID+" acme")
	})

	t.Run("changes made by hand in SQL are announced too", func(t *testing.T) {
		u4, s4 := f.newUserWithSession(t)
		_, err := f.pool.Exec(context.Background(), `UPDATE acme.sessions SET revoke_time = now() WHERE id = $1`, s4.ID)
		require.NoError(t, err)
		_, err = f.pool.Exec(context.Background(), `UPDATE acme.users SET roles = '{admin}' WHERE id = $1`, u4.ID)
		require.NoError(t, err)
		f.waitHeard(t, "s "+s4.ID+" acme", "u "+u4.ID+" acme")
	})
}

func TestWhatEndsNothingIsNotAnnounced(t *testing.T) {
	f := newFixture(t)
	u, s := f.newUserWithSession(t)
	now := time.Now().UTC()
	f.remote.take()

	// A login and a refresh end nothing; a rolled-back revocation never
	// happened. None is announced to other replicas, and the rolled-back
	// one is not even told to this replica.
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		if err := tx.RecordLogin(ctx, u.ID, now, ""); err != nil {
			return err
		}
		return tx.RotateSession(ctx, s.ID, s.RefreshGeneration+1, randomHash(t), now, now.Add(2*time.Hour))
	}))
	f.local.take()
	errRollback := errors.New("roll back")
	err := f.in(t, func(ctx context.Context, tx account.Tx) error {
		if err := tx.RevokeSession(ctx, s.ID, "test", now); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Empty(t, f.local.take(), "a rolled-back change was told to this replica")

	// A marker change afterwards: once it is heard, anything announced
	// before it would have been heard too.
	_, marker := f.newUserWithSession(t)
	_, err = f.pool.Exec(context.Background(), `UPDATE acme.sessions SET revoke_time = now() WHERE id = $1`, marker.ID)
	require.NoError(t, err)
	heard := f.waitHeard(t, "s "+marker.ID+" acme")
	require.Equal(t, []string{"s " + marker.ID + " acme"}, heard)
}

func TestListenerReconnectsAndSaysSo(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, before := f.remote.isOnline(tenantdb.DefaultPlacement)
	_, err := f.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`)
	require.NoError(t, err)
	eventually(t, "the listener to go offline and come back", func() bool {
		ok, changes := f.remote.isOnline(tenantdb.DefaultPlacement)
		return ok && changes >= before+2
	})
	// It hears changes again.
	_, s := f.newUserWithSession(t)
	_, err = f.pool.Exec(ctx, `UPDATE acme.sessions SET revoke_time = now() WHERE id = $1`, s.ID)
	require.NoError(t, err)
	f.waitHeard(t, "s "+s.ID+" acme")
}

func TestAfterMailIsCalledOnlyWhenMailIsCommitted(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, mail.Setup(context.Background(), f.pool))
	var woken atomic.Int32
	f.store.AfterMail(func() { woken.Add(1) })
	msg := mail.Message{Kind: "test", To: "ann@example.com", Subject: "hello", Text: "hi"}

	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		return tx.Audit(ctx, account.AuditEvent{Event: "test"})
	}))
	require.Equal(t, int32(0), woken.Load(), "a transaction without mail woke the mail worker")

	errRollback := errors.New("roll back")
	err := f.in(t, func(ctx context.Context, tx account.Tx) error {
		if err := tx.Enqueue(ctx, msg); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Equal(t, int32(0), woken.Load(), "a rolled-back mail woke the mail worker")

	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error { return tx.Enqueue(ctx, msg) }))
	require.Equal(t, int32(1), woken.Load())
}

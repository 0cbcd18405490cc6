package server_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
)

// Each replica answers GetCurrentUser (and every call with an access token)
// from the sessions it remembers as open. Whatever ends a session or
// changes its user on one replica, or by hand in the database, must reach
// the other at once. The cache's own maximum age is set far beyond the
// tests' waits, so only the announcements can make them pass.
func TestReplicasSeeEachOthersChangesToSessionsAndUsers(t *testing.T) {
	s := startSystemWith(t, []string{"-session-cache-ttl", "1h"}, "demo")
	a := &replica{auth: s.auth, users: s.users}
	b := s.startReplica()
	login := s.signUpAndLogin("demo", "twin@example.com")
	user := login.GetUser().GetName()

	current := func(r *replica, access string) (*identityv1.User, error) {
		resp, err := r.auth.GetCurrentUser(in("demo", access), &identityv1.GetCurrentUserRequest{})
		return resp.GetUser(), err
	}
	// Both replicas answer, and so remember, the session.
	warm := func(access string) {
		t.Helper()
		for _, r := range []*replica{a, b} {
			for range 2 {
				_, err := current(r, access)
				require.NoError(t, err)
			}
		}
	}
	waitFor := func(r *replica, access, what string, ok func(*identityv1.User, error) bool) {
		t.Helper()
		registrytest.Eventually(t, what, func() bool { return ok(current(r, access)) })
	}
	update := func(r *replica, u *identityv1.User, paths ...string) {
		t.Helper()
		_, err := r.users.UpdateUser(asOperator("demo"), &identityv1.UpdateUserRequest{
			User: u, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
		})
		require.NoError(t, err)
	}
	refusedWith := func(code codes.Code) func(*identityv1.User, error) bool {
		return func(_ *identityv1.User, err error) bool { return status.Code(err) == code }
	}
	access := login.GetAccessToken()
	warm(access)

	t.Run("roles granted on one replica show on the other", func(t *testing.T) {
		update(a, &identityv1.User{Name: user, Roles: []string{"billing"}}, "roles")
		got, err := current(a, access)
		require.NoError(t, err)
		require.Equal(t, []string{"billing"}, got.GetRoles(), "the replica that made the change shows it at once")
		waitFor(b, access, "the other replica to show the new roles", func(u *identityv1.User, err error) bool {
			return err == nil && len(u.GetRoles()) == 1 && u.GetRoles()[0] == "billing"
		})
	})

	t.Run("a user disabled on one replica is refused by the other", func(t *testing.T) {
		warm(access)
		update(b, &identityv1.User{Name: user, Disabled: true}, "disabled")
		defer update(a, &identityv1.User{Name: user, Disabled: false}, "disabled")
		// Disabling ends the user's sessions.
		_, err := current(b, access)
		requireCode(t, err, codes.Unauthenticated)
		waitFor(a, access, "the other replica to refuse the disabled user's session", refusedWith(codes.Unauthenticated))
	})

	t.Run("a logout on one replica ends the session on the other", func(t *testing.T) {
		fresh, err := s.auth.Login(in("demo"), loginRequest("twin@example.com", goodPassword))
		require.NoError(t, err)
		warm(fresh.GetAccessToken())
		_, err = b.auth.Logout(in("demo", fresh.GetAccessToken()), &identityv1.LogoutRequest{})
		require.NoError(t, err)
		_, err = current(b, fresh.GetAccessToken())
		requireCode(t, err, codes.Unauthenticated)
		waitFor(a, fresh.GetAccessToken(), "the other replica to refuse the logged-out session", refusedWith(codes.Unauthenticated))
	})

	t.Run("a session revoked by hand in the database is refused by both", func(t *testing.T) {
		fresh, err := s.auth.Login(in("demo"), loginRequest("twin@example.com", goodPassword))
		require.NoError(t, err)
		warm(fresh.GetAccessToken())
		introspect := func(r *replica) bool {
			resp, err := r.tokens.IntrospectToken(in("demo", registrytest.ServiceToken),
				&identityv1.IntrospectTokenRequest{Token: fresh.GetAccessToken()})
			require.NoError(t, err)
			return resp.GetActive()
		}
		require.True(t, introspect(b))
		db, err := pgxpool.New(context.Background(), s.registry.DBURL)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.Exec(context.Background(), `UPDATE demo.sessions SET revoke_time = now(), revoke_reason = 'by hand'
			WHERE revoke_time IS NULL`)
		require.NoError(t, err)
		for name, r := range map[string]*replica{"a": a, "b": b} {
			waitFor(r, fresh.GetAccessToken(), "replica "+name+" to refuse the revoked session", refusedWith(codes.Unauthenticated))
		}
		require.False(t, introspect(b), "introspection still calls the revoked session active")
	})

}

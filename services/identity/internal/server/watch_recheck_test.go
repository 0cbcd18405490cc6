package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
	"tenantry.dev/identity/internal/token"
	"tenantry.dev/kit/registrytest"
)

// watchEndBound is how long a watch may take to end once its caller lost
// the right to it: the watch checks its caller at its re-read (every 5 s)
// if nothing wakes it sooner; the rest is slack for a busy machine.
const watchEndBound = 20 * time.Second

// openWatch opens a watch of tenant's account events from the start with
// bearer, bounded by timeout, and reads it up to KIND_SYNCED.
func openWatch(t *testing.T, c identityv1.AccountEventServiceClient, tenant, bearer string, timeout time.Duration) grpc.ServerStreamingClient[identityv1.WatchAccountEventsResponse] {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	md, _ := metadata.FromOutgoingContext(in(tenant, bearer))
	stream, err := c.WatchAccountEvents(metadata.NewOutgoingContext(ctx, md), &identityv1.WatchAccountEventsRequest{})
	require.NoError(t, err)
	for {
		msg, err := stream.Recv()
		require.NoError(t, err)
		if msg.GetKind() == identityv1.WatchAccountEventsResponse_KIND_SYNCED {
			return stream
		}
	}
}

func TestWatchAccountEventsEndsWhenItsCallerMayNoLongerWatch(t *testing.T) {
	t.Parallel()
	// The issuer's clock, moved to expire access tokens; sessions keep
	// the wall clock and stay open. The tokens' lifetime is long enough
	// that none expires on its own while the test runs.
	const accessTTL = 10 * time.Minute
	clock := &testClock{}
	s := startSystemOpts(t, []string{"-access-ttl", accessTTL.String()}, server.Options{TokenNow: clock.Now}, "acme")
	watch := identityv1.NewAccountEventServiceClient(registrytest.Dial(t, s.identity.Addr().String()))
	admins := map[string]*identityv1.LoginResponse{}
	for _, name := range []string{"out", "demoted", "disabled", "deleted", "expired"} {
		admins[name] = s.makeAdmin("acme", name+"@acme.example")
	}
	// Product services watch with the service credential: configuration,
	// which none of the below touches, so its watch goes on throughout.
	service := openWatch(t, watch, "acme", registrytest.ServiceToken, 2*time.Minute)

	updateUser := func(t *testing.T, u *identityv1.User, field string) {
		t.Helper()
		_, err := s.users.UpdateUser(asOperator("acme"), &identityv1.UpdateUserRequest{
			User: u, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{field}}})
		require.NoError(t, err)
	}
	cases := []struct {
		name   string
		admin  string
		cutOff func(t *testing.T, admin *identityv1.LoginResponse)
		// poke signs a user up right after the cut-off: its event wakes
		// the watch at once, and must not reach the cut-off admin. (The
		// cut-off's own event may: this replica forgets the cached
		// session when the change commits, and the notification waking the
		// watch can come a moment sooner.) Without it only the re-read
		// wakes the watch.
		poke   bool
		code   codes.Code
		reason string
	}{
		{name: "an admin who logs out", admin: "out",
			cutOff: func(t *testing.T, admin *identityv1.LoginResponse) {
				_, err := s.auth.Logout(in("acme", admin.GetAccessToken()), &identityv1.LogoutRequest{})
				require.NoError(t, err)
			},
			code: codes.Unauthenticated, reason: "SESSION_ENDED"},
		{name: "an admin who loses the admin role", admin: "demoted", poke: true,
			cutOff: func(t *testing.T, admin *identityv1.LoginResponse) {
				updateUser(t, &identityv1.User{Name: admin.GetUser().GetName()}, "roles")
			},
			code: codes.PermissionDenied, reason: "ROLE_NOT_ALLOWED"},
		{name: "an admin who is disabled", admin: "disabled", poke: true,
			cutOff: func(t *testing.T, admin *identityv1.LoginResponse) {
				updateUser(t, &identityv1.User{Name: admin.GetUser().GetName(), Disabled: true}, "disabled")
			},
			code: codes.Unauthenticated, reason: "SESSION_ENDED"},
		{name: "an admin who is deleted", admin: "deleted", poke: true,
			cutOff: func(t *testing.T, admin *identityv1.LoginResponse) {
				_, err := s.users.DeleteUser(asOperator("acme"), &identityv1.DeleteUserRequest{Name: admin.GetUser().GetName()})
				require.NoError(t, err)
			},
			code: codes.Unauthenticated, reason: "SESSION_ENDED"},
		// Last: past the access tokens' lifetime every admin token of the
		// system is expired. The session stays open.
		{name: "an admin whose access token expires", admin: "expired",
			cutOff: func(*testing.T, *identityv1.LoginResponse) {
				clock.Advance(accessTTL + token.ClockLeeway + time.Second)
			},
			code: codes.Unauthenticated, reason: "ACCESS_TOKEN_EXPIRED"},
	}
	var pokes []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			admin := admins[tc.admin]
			stream := openWatch(t, watch, "acme", admin.GetAccessToken(), watchEndBound)
			tc.cutOff(t, admin)
			poke := ""
			if tc.poke {
				poke = "after-" + tc.admin + "@example.com"
				_, err := s.auth.SignUp(in("acme"), &identityv1.SignUpRequest{Email: poke, Password: goodPassword})
				require.NoError(t, err)
				pokes = append(pokes, poke)
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					// DEADLINE_EXCEEDED here: the watch went on past the bound.
					st := requireCode(t, err, tc.code)
					require.Equal(t, tc.reason, reasonOf(err), "message: %s", st.Message())
					return
				}
				if poke != "" {
					require.NotEqual(t, poke, msg.GetEvent().GetData().AsMap()["email"],
						"an event committed after the cut-off reached the cut-off admin")
				}
			}
		})
	}

	// The service credential's watch saw every poke and sees what follows.
	_, err := s.auth.SignUp(in("acme"), &identityv1.SignUpRequest{Email: "last@example.com", Password: goodPassword})
	require.NoError(t, err)
	created := map[string]bool{}
	for !created["last@example.com"] {
		msg, err := service.Recv()
		require.NoError(t, err, "the service credential's watch goes on")
		if msg.GetEvent().GetType() == "user.created" {
			email, _ := msg.GetEvent().GetData().AsMap()["email"].(string)
			created[email] = true
		}
	}
	for _, poke := range pokes {
		require.True(t, created[poke], "the service watch saw %s sign up", poke)
	}
}

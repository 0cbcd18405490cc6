package server_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// TestRefusalsNameEveryBadField checks that a request with several bad
// fields is refused with a violation for each, in one answer, so a form
// shows them all at once; the reason is the first field's, as before.
func TestRefusalsNameEveryBadField(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	user := s.signUpAndLogin("demo", "fields@example.com")
	_, err := s.users.InviteUser(asOperator("demo"), &identityv1.InviteUserRequest{Email: "invitee@example.com"})
	require.NoError(t, err)
	_, _, invitation := s.mailTo("invitee@example.com", "You are invited")
	invitation, err = url.QueryUnescape(invitation)
	require.NoError(t, err)

	cases := []struct {
		name   string
		call   func(ctx context.Context) error
		ctx    context.Context
		reason string
		fields []string
	}{
		{
			name: "a sign-up with a bad email, name and password",
			call: func(ctx context.Context) error {
				_, err := s.auth.SignUp(ctx, &identityv1.SignUpRequest{Email: "not-an-email", Password: "short", DisplayName: "   "})
				return err
			},
			ctx: in("demo"), reason: "EMAIL_INVALID", fields: []string{"email", "display_name", "password"},
		},
		{
			name: "a login with neither email nor password",
			call: func(ctx context.Context) error {
				_, err := s.auth.Login(ctx, &identityv1.LoginRequest{})
				return err
			},
			ctx: in("demo"), reason: "LOGIN_IDENTIFIER_REQUIRED", fields: []string{"email", "password"},
		},
		{
			name: "an invitation with a bad email, roles and name",
			call: func(ctx context.Context) error {
				_, err := s.users.InviteUser(ctx, &identityv1.InviteUserRequest{Email: "nope", Roles: []string{"Not A Role"}, DisplayName: "   "})
				return err
			},
			ctx: asOperator("demo"), reason: "EMAIL_INVALID", fields: []string{"email", "roles", "display_name"},
		},
		{
			name: "an accepted invitation with a bad name and password",
			call: func(ctx context.Context) error {
				_, err := s.auth.AcceptInvitation(ctx, &identityv1.AcceptInvitationRequest{Token: invitation, Password: "short", DisplayName: "   "})
				return err
			},
			ctx: in("demo"), reason: "DISPLAY_NAME_INVALID", fields: []string{"display_name", "password"},
		},
		{
			name: "a password change without the current password and a short new one",
			call: func(ctx context.Context) error {
				_, err := s.auth.ChangePassword(ctx, &identityv1.ChangePasswordRequest{NewPassword: "short"})
				return err
			},
			ctx: in("demo", user.GetAccessToken()), reason: "PASSWORD_REQUIRED", fields: []string{"current_password", "new_password"},
		},
		{
			name: "a password change with a wrong current password and a short new one",
			call: func(ctx context.Context) error {
				_, err := s.auth.ChangePassword(ctx, &identityv1.ChangePasswordRequest{CurrentPassword: "not it at all", NewPassword: "short"})
				return err
			},
			ctx: in("demo", user.GetAccessToken()), reason: "PASSWORD_INCORRECT", fields: []string{"current_password", "new_password"},
		},
	}
	for _, c := range cases {
		t.Run(c.name+" names every field", func(t *testing.T) {
			err := c.call(c.ctx)
			requireCode(t, err, codes.InvalidArgument)
			reason, fields := refusalOf(err)
			require.Equal(t, c.reason, reason)
			require.Equal(t, c.fields, fields)
		})
	}
	t.Run("the invitation still works with good fields", func(t *testing.T) {
		_, err := s.auth.AcceptInvitation(in("demo"), &identityv1.AcceptInvitationRequest{Token: invitation, Password: goodPassword})
		require.NoError(t, err)
	})
}

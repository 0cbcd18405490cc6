package server_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

func TestSignUpVerifyLoginRefreshLogout(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	ctx := in("demo")

	cfg, err := s.auth.GetAuthConfig(ctx, &identityv1.GetAuthConfigRequest{})
	require.NoError(t, err)
	require.Equal(t, identityv1.SignupPolicy_SIGNUP_POLICY_OPEN, cfg.GetSignupPolicy(), "new tenants are open")
	require.Equal(t, identityv1.EmailVerification_EMAIL_VERIFICATION_OPTIONAL, cfg.GetEmailVerification())

	signup, err := s.auth.SignUp(ctx, &identityv1.SignUpRequest{Email: "Ann@Example.com", Password: goodPassword, Username: "ann", DisplayName: "Ann"})
	require.NoError(t, err)
	require.False(t, signup.GetVerificationRequired())

	// The verification mail arrives through the real SMTP server.
	_, _, token := s.mailTo("ann@example.com", "Confirm your email")
	require.NotEmpty(t, token)

	// Login is allowed before verifying (verification is optional).
	login, err := s.auth.Login(ctx, &identityv1.LoginRequest{Email: "ann@example.com", Password: goodPassword})
	require.NoError(t, err)
	require.False(t, login.GetUser().GetEmailVerified())
	require.Equal(t, "Bearer", login.GetTokenType())
	require.Positive(t, login.GetExpiresIn())

	verified, err := s.auth.VerifyEmail(ctx, &identityv1.VerifyEmailRequest{Token: token})
	require.NoError(t, err)
	require.Equal(t, "ann@example.com", verified.GetEmail())
	_, err = s.auth.VerifyEmail(ctx, &identityv1.VerifyEmailRequest{Token: token})
	requireCode(t, err, codes.InvalidArgument) // single use

	me, err := s.auth.GetCurrentUser(in("demo", login.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.True(t, me.GetUser().GetEmailVerified())
	require.Equal(t, "ann", me.GetUser().GetUsername())

	// Login by username works too.
	_, err = s.auth.Login(ctx, &identityv1.LoginRequest{Username: "ANN", Password: goodPassword})
	require.NoError(t, err)

	// Refresh rotates the refresh token.
	refreshed, err := s.auth.RefreshSession(ctx, &identityv1.RefreshSessionRequest{RefreshToken: login.GetRefreshToken()})
	require.NoError(t, err)
	require.NotEqual(t, login.GetRefreshToken(), refreshed.GetRefreshToken())

	// Reusing the old refresh token means it leaked: the session is revoked,
	// so even the newest refresh token and access token stop working.
	_, err = s.auth.RefreshSession(ctx, &identityv1.RefreshSessionRequest{RefreshToken: login.GetRefreshToken()})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.RefreshSession(ctx, &identityv1.RefreshSessionRequest{RefreshToken: refreshed.GetRefreshToken()})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.GetCurrentUser(in("demo", refreshed.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)

	// A fresh login, then logout ends that session.
	again, err := s.auth.Login(ctx, &identityv1.LoginRequest{Email: "ann@example.com", Password: goodPassword})
	require.NoError(t, err)
	sessions, err := s.auth.ListSessions(in("demo", again.GetAccessToken()), &identityv1.ListSessionsRequest{})
	require.NoError(t, err)
	require.NotEmpty(t, sessions.GetSessions())
	_, err = s.auth.Logout(in("demo", again.GetAccessToken()), &identityv1.LogoutRequest{})
	require.NoError(t, err)
	_, err = s.auth.GetCurrentUser(in("demo", again.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.RefreshSession(ctx, &identityv1.RefreshSessionRequest{RefreshToken: again.GetRefreshToken()})
	requireCode(t, err, codes.Unauthenticated)
}

func TestPasswordResetAndChange(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	ctx := in("demo")
	first := s.signUpAndLogin("demo", "bob@example.com")

	_, err := s.auth.RequestPasswordReset(ctx, &identityv1.RequestPasswordResetRequest{Email: "bob@example.com"})
	require.NoError(t, err)
	_, _, token := s.mailTo("bob@example.com", "Reset your password")
	require.NotEmpty(t, token)

	// A weak new password is refused and the token stays usable.
	_, err = s.auth.ResetPassword(ctx, &identityv1.ResetPasswordRequest{Token: token, NewPassword: "password"})
	requireCode(t, err, codes.InvalidArgument)
	_, err = s.auth.ResetPassword(ctx, &identityv1.ResetPasswordRequest{Token: token, NewPassword: "a whole new passphrase"})
	require.NoError(t, err)
	_, err = s.auth.ResetPassword(ctx, &identityv1.ResetPasswordRequest{Token: token, NewPassword: "yet another passphrase"})
	requireCode(t, err, codes.InvalidArgument) // single use

	// The reset ended every session; the old password no longer works.
	_, err = s.auth.GetCurrentUser(in("demo", first.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.Login(ctx, &identityv1.LoginRequest{Email: "bob@example.com", Password: goodPassword})
	requireCode(t, err, codes.Unauthenticated)
	login, err := s.auth.Login(ctx, &identityv1.LoginRequest{Email: "bob@example.com", Password: "a whole new passphrase"})
	require.NoError(t, err)

	// Changing the password needs the current one.
	user := in("demo", login.GetAccessToken())
	_, err = s.auth.ChangePassword(user, &identityv1.ChangePasswordRequest{CurrentPassword: "wrong", NewPassword: "third passphrase here"})
	requireCode(t, err, codes.InvalidArgument)
	_, err = s.auth.ChangePassword(user, &identityv1.ChangePasswordRequest{CurrentPassword: "a whole new passphrase", NewPassword: "third passphrase here"})
	require.NoError(t, err)
	_, err = s.auth.GetCurrentUser(user, &identityv1.GetCurrentUserRequest{})
	require.NoError(t, err, "the session that changed the password stays open")
	_, err = s.auth.Login(ctx, &identityv1.LoginRequest{Email: "bob@example.com", Password: "third passphrase here"})
	require.NoError(t, err)

	// A verification token cannot reset a password.
	_, err = s.auth.ChangeEmail(user, &identityv1.ChangeEmailRequest{NewEmail: "robert@example.com", Password: "third passphrase here"})
	require.NoError(t, err)
	_, _, verifyToken := s.mailTo("robert@example.com", "Confirm your email")
	_, err = s.auth.ResetPassword(ctx, &identityv1.ResetPasswordRequest{Token: verifyToken, NewPassword: "sneaky new passphrase"})
	requireCode(t, err, codes.InvalidArgument)
	_, err = s.auth.VerifyEmail(ctx, &identityv1.VerifyEmailRequest{Token: verifyToken})
	require.NoError(t, err)
	_, err = s.auth.Login(ctx, &identityv1.LoginRequest{Email: "robert@example.com", Password: "third passphrase here"})
	require.NoError(t, err, "the new address replaced the old one once verified")
}

func TestInvitationMakesTheFirstAdmin(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	inv, err := s.users.InviteUser(asOperator("demo"), &identityv1.InviteUserRequest{Email: "admin@example.com", Roles: []string{"admin"}})
	require.NoError(t, err)
	require.Equal(t, identityv1.User_STATE_INVITED, inv.GetUser().GetState())
	_, _, token := s.mailTo("admin@example.com", "invited")

	accepted, err := s.auth.AcceptInvitation(in("demo"), &identityv1.AcceptInvitationRequest{Token: token, Password: goodPassword, DisplayName: "Admin"})
	require.NoError(t, err)
	require.Equal(t, identityv1.User_STATE_ACTIVE, accepted.GetUser().GetState())
	require.True(t, accepted.GetUser().GetEmailVerified())

	admin, err := s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "admin@example.com", Password: goodPassword})
	require.NoError(t, err)
	plain := s.signUpAndLogin("demo", "plain@example.com")

	// The admin administers; a plain user may not.
	list, err := s.users.ListUsers(in("demo", admin.GetAccessToken()), &identityv1.ListUsersRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetUsers(), 2)
	_, err = s.users.ListUsers(in("demo", plain.GetAccessToken()), &identityv1.ListUsersRequest{})
	requireCode(t, err, codes.PermissionDenied)

	// Disabling a user ends their sessions and refuses their login.
	target := plain.GetUser()
	_, err = s.users.UpdateUser(in("demo", admin.GetAccessToken()), &identityv1.UpdateUserRequest{
		User:       &identityv1.User{Name: target.GetName(), Disabled: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}},
	})
	require.NoError(t, err)
	_, err = s.auth.GetCurrentUser(in("demo", plain.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	require.Error(t, err)
	_, err = s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "plain@example.com", Password: goodPassword})
	requireCode(t, err, codes.PermissionDenied)

	// Settings: invite-only closes sign-up.
	_, err = s.users.UpdateTenantSettings(in("demo", admin.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
		Settings:   &identityv1.TenantSettings{SignupPolicy: identityv1.SignupPolicy_SIGNUP_POLICY_INVITE_ONLY},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"signup_policy"}},
	})
	require.NoError(t, err)
	_, err = s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: "late@example.com", Password: goodPassword})
	requireCode(t, err, codes.PermissionDenied)
}

func TestTenantsAreIsolated(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha", "beta")
	a := s.signUpAndLogin("alpha", "same@example.com")
	b := s.signUpAndLogin("beta", "same@example.com")
	require.NotEqual(t, a.GetUser().GetId(), b.GetUser().GetId(), "one email, two tenants, two accounts")

	// A's access token is refused in B, even with a valid signature.
	_, err := s.auth.GetCurrentUser(in("beta", a.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)
	// A's refresh token means nothing in B.
	_, err = s.auth.RefreshSession(in("beta"), &identityv1.RefreshSessionRequest{RefreshToken: a.GetRefreshToken()})
	requireCode(t, err, codes.Unauthenticated)
	// A reset token of A is useless in B.
	_, err = s.auth.RequestPasswordReset(in("alpha"), &identityv1.RequestPasswordResetRequest{Email: "same@example.com"})
	require.NoError(t, err)
	_, _, token := s.mailTo("same@example.com", "Reset your password for Tenant alpha")
	_, err = s.auth.ResetPassword(in("beta"), &identityv1.ResetPasswordRequest{Token: token, NewPassword: "hijacked passphrase"})
	requireCode(t, err, codes.InvalidArgument)
	_, err = s.auth.Login(in("beta"), &identityv1.LoginRequest{Email: "same@example.com", Password: goodPassword})
	require.NoError(t, err, "B's password is unchanged")

	// An unknown tenant, and no tenant at all.
	_, err = s.auth.Login(in("gamma"), &identityv1.LoginRequest{Email: "same@example.com", Password: goodPassword})
	requireCode(t, err, codes.NotFound)
	_, err = s.auth.GetAuthConfig(t.Context(), &identityv1.GetAuthConfigRequest{})
	requireCode(t, err, codes.InvalidArgument)
}

func TestTokensAreChecked(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	login := s.signUpAndLogin("demo", "tok@example.com")
	access := login.GetAccessToken()

	tampered := access[:len(access)-4] + "AAAA"
	_, err := s.auth.GetCurrentUser(in("demo", tampered), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.GetCurrentUser(in("demo", "not.a.jwt"), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.GetCurrentUser(in("demo"), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)

	// Introspection, for other services, with the service credential.
	svc := in("demo", "service-token-for-tests-0123456789")
	resp, err := s.tokens.IntrospectToken(svc, &identityv1.IntrospectTokenRequest{Token: access})
	require.NoError(t, err)
	require.True(t, resp.GetActive())
	require.Equal(t, "demo", resp.GetTid())
	require.Equal(t, login.GetUser().GetId(), resp.GetSub())
	resp, err = s.tokens.IntrospectToken(svc, &identityv1.IntrospectTokenRequest{Token: tampered})
	require.NoError(t, err)
	require.False(t, resp.GetActive())
	_, err = s.tokens.IntrospectToken(in("demo", access), &identityv1.IntrospectTokenRequest{Token: access})
	requireCode(t, err, codes.PermissionDenied) // users cannot introspect

	jwks, err := s.tokens.GetJwks(in("demo"), &identityv1.GetJwksRequest{})
	require.NoError(t, err)
	require.NotEmpty(t, jwks.GetKeys())
	require.Equal(t, "EdDSA", jwks.GetKeys()[0].GetAlg())

	_, err = s.auth.Logout(in("demo", access), &identityv1.LogoutRequest{})
	require.NoError(t, err)
	resp, err = s.tokens.IntrospectToken(svc, &identityv1.IntrospectTokenRequest{Token: access})
	require.NoError(t, err)
	require.False(t, resp.GetActive(), "a logged-out session's token is no longer active")
}

func TestNoUserEnumeration(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	s.signUpAndLogin("demo", "known@example.com")
	ctx := in("demo")

	// Sign-up with a registered email answers exactly like a new one.
	fresh, err := s.auth.SignUp(ctx, &identityv1.SignUpRequest{Email: "new@example.com", Password: goodPassword})
	require.NoError(t, err)
	dup, err := s.auth.SignUp(ctx, &identityv1.SignUpRequest{Email: "known@example.com", Password: "another good passphrase"})
	require.NoError(t, err)
	require.Equal(t, fresh.String(), dup.String())
	s.mailTo("known@example.com", "Someone tried to use your email")

	// Login: unknown account and wrong password are the same error.
	_, errUnknown := s.auth.Login(ctx, &identityv1.LoginRequest{Email: "nobody@example.com", Password: goodPassword})
	_, errWrong := s.auth.Login(ctx, &identityv1.LoginRequest{Email: "known@example.com", Password: "wrong passphrase!"})
	stUnknown, stWrong := requireCode(t, errUnknown, codes.Unauthenticated), requireCode(t, errWrong, codes.Unauthenticated)
	require.Equal(t, stUnknown.Message(), stWrong.Message())

	// Reset: the same empty answer; each address gets a mail either way.
	_, err = s.auth.RequestPasswordReset(ctx, &identityv1.RequestPasswordResetRequest{Email: "nobody@example.com"})
	require.NoError(t, err)
	_, err = s.auth.RequestPasswordReset(ctx, &identityv1.RequestPasswordResetRequest{Email: "known@example.com"})
	require.NoError(t, err)
	s.mailTo("nobody@example.com", "Password reset")
	s.mailTo("known@example.com", "Reset your password")
}

func TestBruteForceHitsTheRateLimit(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	s.signUpAndLogin("demo", "victim@example.com")
	var limited error
	for range 40 {
		_, err := s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "victim@example.com", Password: "guess number x"})
		if err != nil && requireCodeIs(err, codes.ResourceExhausted) {
			limited = err
			break
		}
	}
	require.Error(t, limited, "40 wrong passwords in a row must hit the limit")
	st := requireCode(t, limited, codes.ResourceExhausted)
	require.Contains(t, st.Message(), "retry")
}

func TestConcurrentSignUpsWithOneEmail(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: "race@example.com", Password: goodPassword})
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	list, err := s.users.ListUsers(asOperator("demo"), &identityv1.ListUsersRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetUsers(), 1, "exactly one account")
}

func TestSuspendedTenantStopsLoggingIn(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	s.signUpAndLogin("demo", "sus@example.com")
	s.registry.Suspend("demo")
	registrytestEventually(t, "login to be refused in a suspended tenant", func() bool {
		_, err := s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "sus@example.com", Password: goodPassword})
		return requireCodeIs(err, codes.FailedPrecondition)
	})
}

func TestRegistryDownKeepsCachedTenantsWorking(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	s.signUpAndLogin("demo", "up@example.com")
	s.registry.Kill()
	_, err := s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "up@example.com", Password: goodPassword})
	require.NoError(t, err, "a cached tenant keeps working while the registry is down")
	_, err = s.auth.Login(in("unknown"), &identityv1.LoginRequest{Email: "up@example.com", Password: goodPassword})
	requireCode(t, err, codes.Unavailable)
}

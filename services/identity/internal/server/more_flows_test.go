package server_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/grpcerr"
)

func TestSessionsAndUserAdministration(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	first := s.signUpAndLogin("demo", "multi@example.com")
	second, err := s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "multi@example.com", Password: goodPassword})
	require.NoError(t, err)

	sessions, err := s.auth.ListSessions(in("demo", second.GetAccessToken()), &identityv1.ListSessionsRequest{})
	require.NoError(t, err)
	require.Len(t, sessions.GetSessions(), 2)
	var other string
	for _, ses := range sessions.GetSessions() {
		if !ses.GetCurrent() {
			other = ses.GetId()
		}
	}
	require.NotEmpty(t, other, "exactly one session is the caller's")

	// Ending the other session stops its refresh token; the caller's stays.
	_, err = s.auth.RevokeSession(in("demo", second.GetAccessToken()), &identityv1.RevokeSessionRequest{SessionId: other})
	require.NoError(t, err)
	_, err = s.auth.RefreshSession(in("demo"), &identityv1.RefreshSessionRequest{RefreshToken: first.GetRefreshToken()})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.RefreshSession(in("demo"), &identityv1.RefreshSessionRequest{RefreshToken: second.GetRefreshToken()})
	require.NoError(t, err)

	// Another user's session cannot be revoked: it is simply not found.
	stranger := s.signUpAndLogin("demo", "stranger@example.com")
	_, err = s.auth.RevokeSession(in("demo", stranger.GetAccessToken()), &identityv1.RevokeSessionRequest{SessionId: other})
	requireCode(t, err, codes.NotFound)

	// Operators administer users of a tenant.
	op := asOperator("demo")
	got, err := s.users.GetUser(op, &identityv1.GetUserRequest{Name: second.GetUser().GetName()})
	require.NoError(t, err)
	require.Equal(t, "multi@example.com", got.GetUser().GetEmail())
	_, err = s.users.UpdateUser(op, &identityv1.UpdateUserRequest{
		User:       &identityv1.User{Name: got.GetUser().GetName(), Roles: []string{"billing"}, Etag: `"999"`},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"roles"}},
	})
	requireCode(t, err, codes.Aborted) // stale etag
	upd, err := s.users.UpdateUser(op, &identityv1.UpdateUserRequest{
		User:       &identityv1.User{Name: got.GetUser().GetName(), Roles: []string{"billing"}, Etag: got.GetUser().GetEtag()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"roles"}},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"billing"}, upd.GetUser().GetRoles())
	_, err = s.users.GetUser(op, &identityv1.GetUserRequest{Name: "users/not-a-uuid"})
	requireCode(t, err, codes.InvalidArgument)
	_, err = s.users.GetUser(op, &identityv1.GetUserRequest{Name: "users/00000000-0000-0000-0000-000000000000"})
	requireCode(t, err, codes.NotFound)

	// Deleting a user ends their sessions and their account.
	_, err = s.users.DeleteUser(op, &identityv1.DeleteUserRequest{Name: got.GetUser().GetName()})
	require.NoError(t, err)
	_, err = s.auth.GetCurrentUser(in("demo", second.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "multi@example.com", Password: goodPassword})
	requireCode(t, err, codes.Unauthenticated)

	// Filters.
	list, err := s.users.ListUsers(op, &identityv1.ListUsersRequest{Filter: "email_verified = false"})
	require.NoError(t, err)
	require.Len(t, list.GetUsers(), 1)
	_, err = s.users.ListUsers(op, &identityv1.ListUsersRequest{Filter: "email ~ 'x'"})
	requireCode(t, err, codes.InvalidArgument)
}

func TestMandatoryVerificationAndResend(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "strict")
	_, err := s.users.UpdateTenantSettings(asOperator("strict"), &identityv1.UpdateTenantSettingsRequest{
		Settings:   &identityv1.TenantSettings{EmailVerification: identityv1.EmailVerification_EMAIL_VERIFICATION_MANDATORY},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email_verification"}},
	})
	require.NoError(t, err)
	resp, err := s.auth.SignUp(in("strict"), &identityv1.SignUpRequest{Email: "cara@example.com", Password: goodPassword})
	require.NoError(t, err)
	require.True(t, resp.GetVerificationRequired())
	// An unverified account's right password gets the wrong password's
	// answer: otherwise signing up and logging in would tell a stranger
	// whether the address (or the username) was free. The owner gets a
	// new link instead.
	_, errUnverified := s.auth.Login(in("strict"), &identityv1.LoginRequest{Email: "cara@example.com", Password: goodPassword})
	_, errWrong := s.auth.Login(in("strict"), &identityv1.LoginRequest{Email: "cara@example.com", Password: "not the password at all"})
	stUnverified, stWrong := requireCode(t, errUnverified, codes.Unauthenticated), requireCode(t, errWrong, codes.Unauthenticated)
	require.Equal(t, stWrong.Message(), stUnverified.Message())
	require.Equal(t, grpcerr.Reason(stWrong), grpcerr.Reason(stUnverified))

	// Resending answers the same for unknown addresses, and mails only real ones.
	_, err = s.auth.ResendVerificationEmail(in("strict"), &identityv1.ResendVerificationEmailRequest{Email: "ghost@example.com"})
	require.NoError(t, err)
	_, err = s.auth.ResendVerificationEmail(in("strict"), &identityv1.ResendVerificationEmailRequest{Email: "cara@example.com"})
	require.NoError(t, err)
	// Three links in all, each making the ones before it useless: the
	// sign-up's, the one the unverified login sent, the one resent (all
	// within the verification limit's burst of three). Wait for the third:
	// with only two in, the newest link would not be among them.
	registrytest.Eventually(t, "three verification mails to cara", func() bool { return s.mailsTo("cara@example.com") >= 3 })
	require.Zero(t, s.mailsTo("ghost@example.com"))

	// Only the newest link works.
	_, body, token := s.mailTo("cara@example.com", "Confirm your email")
	require.NotEmpty(t, body)
	var newest string
	for _, m := range s.smtp.Messages() {
		if match := tokenLink.FindStringSubmatch(decodeBody(t, m.Data)); match != nil {
			newest = match[1]
		}
	}
	if token != newest {
		_, err = s.auth.VerifyEmail(in("strict"), &identityv1.VerifyEmailRequest{Token: token})
		requireCode(t, err, codes.InvalidArgument)
	}
	_, err = s.auth.VerifyEmail(in("strict"), &identityv1.VerifyEmailRequest{Token: newest})
	require.NoError(t, err)
	_, err = s.auth.Login(in("strict"), &identityv1.LoginRequest{Email: "cara@example.com", Password: goodPassword})
	require.NoError(t, err)
}

func TestPurgedTenantIsForgottenAndItsSlugStartsAfresh(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "phoenix")
	s.signUpAndLogin("phoenix", "old@example.com")
	s.registry.Delete("phoenix", true)
	registrytest.Eventually(t, "identity to forget the purged tenant", func() bool {
		_, err := s.auth.GetAuthConfig(in("phoenix"), &identityv1.GetAuthConfigRequest{})
		return requireCodeIs(err, codes.NotFound)
	})
	// The slug is reused: identity migrates the new, empty schema.
	s.registry.Create("phoenix")
	registrytest.Eventually(t, "identity to serve the new tenant", func() bool {
		_, err := s.auth.SignUp(in("phoenix"), &identityv1.SignUpRequest{Email: "new@example.com", Password: goodPassword})
		return err == nil
	})
	_, err := s.auth.Login(in("phoenix"), &identityv1.LoginRequest{Email: "old@example.com", Password: goodPassword})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.Login(in("phoenix"), &identityv1.LoginRequest{Email: "new@example.com", Password: goodPassword})
	require.NoError(t, err)
}

func TestSecurityEventsAreAudited(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "audited")
	s.signUpAndLogin("audited", "eve@example.com")
	_, err := s.auth.Login(in("audited"), &identityv1.LoginRequest{Email: "eve@example.com", Password: "wrong wrong wrong"})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.RequestPasswordReset(in("audited"), &identityv1.RequestPasswordResetRequest{Email: "eve@example.com"})
	require.NoError(t, err)

	db, err := pgxpool.New(context.Background(), s.registry.DBURL)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(context.Background(), `SELECT event FROM `+pgx.Identifier{"audited", "audit_log"}.Sanitize()+` ORDER BY id`)
	require.NoError(t, err)
	events, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"user.signed_up", "user.logged_in", "user.login_failed", "user.password_reset_requested"}, events)
}

// A login is not an edit: it stamps the login time without changing the
// user's etag, so an administrator's copy does not go stale.
func TestLoginDoesNotChangeTheUsersEtag(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	first := s.signUpAndLogin("demo", "etag@example.com")
	before, err := s.users.GetUser(asOperator("demo"), &identityv1.GetUserRequest{Name: first.GetUser().GetName()})
	require.NoError(t, err)
	_, err = s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "etag@example.com", Password: goodPassword})
	require.NoError(t, err)
	after, err := s.users.GetUser(asOperator("demo"), &identityv1.GetUserRequest{Name: first.GetUser().GetName()})
	require.NoError(t, err)
	require.Equal(t, before.GetUser().GetEtag(), after.GetUser().GetEtag())
	require.True(t, after.GetUser().GetLastLoginTime().AsTime().After(before.GetUser().GetLastLoginTime().AsTime()),
		"the second login is stamped")

	// The admin's update with the etag read before the login still applies.
	_, err = s.users.UpdateUser(asOperator("demo"), &identityv1.UpdateUserRequest{
		User:       &identityv1.User{Name: before.GetUser().GetName(), Disabled: true, Etag: before.GetUser().GetEtag()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}},
	})
	require.NoError(t, err)
}

package server_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/server"
	"tenantry.dev/identity/internal/smtptest"
	"tenantry.dev/kit/registrytest"
)

// loginCodeSystem starts a system whose tenant lets users log in by a
// mailed code.
func loginCodeSystem(t *testing.T, tenant string) (*system, *testClock) {
	t.Helper()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, tenant)
	_, err := s.users.UpdateTenantSettings(asOperator(tenant), &identityv1.UpdateTenantSettingsRequest{
		Settings: &identityv1.TenantSettings{LoginByEmailCode: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"login_by_email_code"}}})
	require.NoError(t, err)
	return s, clock
}

var mailedLoginCode = regexp.MustCompile(`\n    (\d{6})\r?\n`)

// requestLoginCode asks for a login code for email and returns the token
// and, when a mail is expected, the code of the newest mail to email.
func (s *system) requestLoginCode(tenant, email string, mailed bool) (token, code string) {
	s.t.Helper()
	before := len(s.smtp.Messages())
	resp, err := s.auth.RequestLoginCode(in(tenant), &identityv1.RequestLoginCodeRequest{Email: email})
	require.NoError(s.t, err)
	if !mailed {
		return resp.GetLoginCodeToken(), ""
	}
	registrytestEventually(s.t, "a login code mailed to "+email, func() bool {
		for _, m := range s.smtp.Messages()[before:] {
			if strings.Contains(strings.Join(m.To, ","), email) {
				if c := mailedLoginCode.FindStringSubmatch(decodeBody(s.t, m.Data)); c != nil {
					code = c[1]
					return true
				}
			}
		}
		return false
	})
	return resp.GetLoginCodeToken(), code
}

// A run of wrong codes answers the same whether or not the address has an
// account: the token of an unknown address spends the login budget of the
// address as an account's does (it was refused before any limit, so after
// ten attempts an account answered RATE_LIMITED and an unknown address
// went on answering LOGIN_CODE_INVALID).
func TestWrongLoginCodesAnswerTheSameWithOrWithoutAnAccount(t *testing.T) {
	t.Parallel()
	s, _ := loginCodeSystem(t, "codes")
	_, err := s.auth.SignUp(in("codes"), &identityv1.SignUpRequest{Email: "real@example.com", Password: goodPassword})
	require.NoError(t, err)

	answers := func(email string, mailed bool) []string {
		token, code := s.requestLoginCode("codes", email, mailed)
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		var got []string
		for range 14 {
			_, err := s.auth.LoginWithCode(in("codes"), &identityv1.LoginWithCodeRequest{LoginCodeToken: token, Code: wrong})
			require.Error(t, err)
			got = append(got, status.Code(err).String()+" "+reasonOf(err))
		}
		return got
	}
	real := answers("real@example.com", true)
	unknown := answers("nobody@example.com", false)
	require.Equal(t, real, unknown)
	require.Equal(t, "Unauthenticated LOGIN_CODE_INVALID", real[0])
	require.Equal(t, "ResourceExhausted RATE_LIMITED", real[13], "the login limit of the address applies to both")
}

// The first proof of an address by a mailed code takes the account over
// from whoever set it up with that address (pre-hijacking): their session,
// password and second factor end. An account whose address was verified
// already keeps all of them.
func TestLoginCodeClaimsAnAccountSetUpByAnother(t *testing.T) {
	t.Parallel()
	s, clock := loginCodeSystem(t, "claim")
	const victim = "victim@example.com"

	// The attacker signs up with the victim's address and a password of
	// their own, logs in (verification is optional), begins moving the
	// account to an address of their own, adds another as a secondary
	// address, and adds an app.
	attacker := s.signUpAndLogin("claim", victim)
	_, err := s.auth.ChangeEmail(in("claim", attacker.GetAccessToken()), &identityv1.ChangeEmailRequest{
		NewEmail: "attacker@evil.example", Password: goodPassword})
	require.NoError(t, err)
	_, _, change := s.mailTo("attacker@evil.example", "Confirm your email")
	accounts := identityv1.NewAccountServiceClient(s.conn)
	_, err = accounts.AddEmailAddress(in("claim", attacker.GetAccessToken()), &identityv1.AddEmailAddressRequest{Email: "second@evil.example"})
	require.NoError(t, err)
	begun, err := s.auth.BeginTotpEnrollment(in("claim", attacker.GetAccessToken()), &identityv1.BeginTotpEnrollmentRequest{})
	require.NoError(t, err)
	_, err = s.auth.ConfirmTotpEnrollment(in("claim", attacker.GetAccessToken()), &identityv1.ConfirmTotpEnrollmentRequest{
		TotpCode: oathtool(t, begun.GetSecret(), clock.Now())})
	require.NoError(t, err)

	// The owner of the mailbox logs in by code: no challenge of the
	// attacker's app, the address verified.
	token, code := s.requestLoginCode("claim", victim, true)
	owner, err := s.auth.LoginWithCode(in("claim"), &identityv1.LoginWithCodeRequest{LoginCodeToken: token, Code: code})
	require.NoError(t, err)
	require.NotEmpty(t, owner.GetAccessToken(), "the attacker's app is gone, not asked for")
	require.True(t, owner.GetUser().GetEmailVerified())

	_, err = s.auth.GetCurrentUser(in("claim", attacker.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.RefreshSession(in("claim"), &identityv1.RefreshSessionRequest{RefreshToken: attacker.GetRefreshToken()})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.Login(in("claim"), &identityv1.LoginRequest{Email: victim, Password: goodPassword})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.GetCurrentUser(in("claim", owner.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	_, err = s.auth.VerifyEmail(in("claim"), &identityv1.VerifyEmailRequest{Token: change})
	requireCode(t, err, codes.InvalidArgument) // the change's link ended with the takeover
	addresses, err := accounts.ListEmailAddresses(in("claim", owner.GetAccessToken()), &identityv1.ListEmailAddressesRequest{})
	require.NoError(t, err)
	require.Len(t, addresses.GetEmailAddresses(), 1, "the primary address only")
	require.Equal(t, victim, addresses.GetEmailAddresses()[0].GetEmail())
	_, body, _ := s.mailTo(victim, "is yours alone now")
	require.Contains(t, body, "/forgot-password")
	require.Contains(t, s.auditEvents("claim", victim), "user.account_claimed")

	// The account has no password now: the changes that need the current
	// one say so, rather than failing inside (the hash checked was empty).
	_, err = s.auth.ChangePassword(in("claim", owner.GetAccessToken()), &identityv1.ChangePasswordRequest{
		CurrentPassword: goodPassword, NewPassword: goodPassword + "-new"})
	requireCode(t, err, codes.FailedPrecondition)
	require.Equal(t, "PASSWORD_NOT_SET", reasonOf(err))
	_, err = s.auth.ChangeEmail(in("claim", owner.GetAccessToken()), &identityv1.ChangeEmailRequest{
		NewEmail: "elsewhere@example.com", Password: goodPassword})
	requireCode(t, err, codes.FailedPrecondition)
	require.Equal(t, "PASSWORD_NOT_SET", reasonOf(err))

	t.Run("an account verified before keeps its password and sessions", func(t *testing.T) {
		const ann = "ann@example.com"
		session := s.signUpAndLogin("claim", ann)
		_, _, verify := s.mailTo(ann, "Confirm your email")
		_, err := s.auth.VerifyEmail(in("claim"), &identityv1.VerifyEmailRequest{Token: verify})
		require.NoError(t, err)

		token, code := s.requestLoginCode("claim", ann, true)
		_, err = s.auth.LoginWithCode(in("claim"), &identityv1.LoginWithCodeRequest{LoginCodeToken: token, Code: code})
		require.NoError(t, err)
		_, err = s.auth.GetCurrentUser(in("claim", session.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		_, err = s.auth.Login(in("claim"), &identityv1.LoginRequest{Email: ann, Password: goodPassword})
		require.NoError(t, err)
		require.NotContains(t, s.auditEvents("claim", ann), "user.account_claimed")
	})
}

// A refused code is held to the floor of time like the other answers that
// must not tell whether an account exists: the paths of an account's token
// and of an unknown address's write differently.
func TestWrongLoginCodesAreHeldToTheFloor(t *testing.T) {
	t.Parallel()
	var (
		mu        sync.Mutex
		deadlines []time.Time
	)
	s := &system{t: t, registry: registrytest.Start(t, registryBin), smtp: smtptest.Start(t, smtptest.Options{})}
	s.opts.WaitUntil = func(_ context.Context, deadline time.Time) {
		mu.Lock()
		defer mu.Unlock()
		deadlines = append(deadlines, deadline)
	}
	s.registry.Create("floor")
	s.startIdentity(s.registry.DBURL)
	_, err := s.users.UpdateTenantSettings(asOperator("floor"), &identityv1.UpdateTenantSettingsRequest{
		Settings: &identityv1.TenantSettings{LoginByEmailCode: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"login_by_email_code"}}})
	require.NoError(t, err)
	_, err = s.auth.SignUp(in("floor"), &identityv1.SignUpRequest{Email: "real@example.com", Password: goodPassword})
	require.NoError(t, err)

	for _, c := range []struct {
		name, email string
		mailed      bool
	}{{"an account's token", "real@example.com", true}, {"an unknown address's token", "nobody@example.com", false}} {
		token, code := s.requestLoginCode("floor", c.email, c.mailed)
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		mu.Lock()
		deadlines = nil
		mu.Unlock()
		start := time.Now()
		_, err := s.auth.LoginWithCode(in("floor"), &identityv1.LoginWithCodeRequest{LoginCodeToken: token, Code: wrong})
		requireCode(t, err, codes.Unauthenticated)
		mu.Lock()
		got := append([]time.Time(nil), deadlines...)
		mu.Unlock()
		require.Len(t, got, 1, "%s: the refusal was not held to the floor", c.name)
		require.GreaterOrEqual(t, got[0].Sub(start), account.DefaultResponseFloor, "%s: held to a deadline before the floor", c.name)
	}
}

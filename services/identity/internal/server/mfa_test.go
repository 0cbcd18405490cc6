package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/server"
)

// testClock is identity's clock in the MFA tests: the wall clock moved
// forward by hand, so that a test reaches the next TOTP time step, or a
// challenge's expiry, without sleeping.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// oathtool computes the TOTP code of secret at instant at with Debian's
// oathtool, an implementation of RFC 6238 independent of identity's.
func oathtool(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--totp", "--base32", "--now", fmt.Sprintf("@%d", at.Unix()), secret).CombinedOutput()
	require.NoError(t, err, "oathtool (apt-get install oathtool; make test installs it): %s", out)
	code := strings.TrimSpace(string(out))
	require.Regexp(t, `^\d{6}$`, code)
	return code
}

// mfaUser is an account of the MFA tests, with its authenticator app.
type mfaUser struct {
	email    string
	secret   string
	recovery []string
}

// enrolTOTP signs email up in tenant, logs in and enrols an authenticator
// app with a code oathtool computes now.
func (s *system) enrolTOTP(clock *testClock, tenant, email string) mfaUser {
	s.t.Helper()
	login := s.signUpAndLogin(tenant, email)
	ctx := in(tenant, login.GetAccessToken())
	begun, err := s.auth.BeginTotpEnrollment(ctx, &identityv1.BeginTotpEnrollmentRequest{})
	require.NoError(s.t, err)
	confirmed, err := s.auth.ConfirmTotpEnrollment(ctx, &identityv1.ConfirmTotpEnrollmentRequest{
		TotpCode: oathtool(s.t, begun.GetSecret(), clock.Now())})
	require.NoError(s.t, err)
	return mfaUser{email: email, secret: begun.GetSecret(), recovery: confirmed.GetRecoveryCodes()}
}

// challenge logs u in with the password and returns the MFA challenge.
func (s *system) challenge(tenant string, u mfaUser) *identityv1.MfaChallenge {
	s.t.Helper()
	resp, err := s.auth.Login(in(tenant), loginRequest(u.email, goodPassword))
	require.NoError(s.t, err)
	require.Empty(s.t, resp.GetAccessToken(), "no session before the second factor")
	require.Empty(s.t, resp.GetRefreshToken())
	require.NotNil(s.t, resp.GetMfaChallenge())
	return resp.GetMfaChallenge()
}

func (s *system) verifyTOTP(tenant, challenge, code string) (*identityv1.VerifyMfaResponse, error) {
	return s.auth.VerifyMfa(in(tenant), &identityv1.VerifyMfaRequest{MfaChallenge: challenge, TotpCode: code})
}

func (s *system) verifyRecovery(tenant, challenge, code string) (*identityv1.VerifyMfaResponse, error) {
	return s.auth.VerifyMfa(in(tenant), &identityv1.VerifyMfaRequest{MfaChallenge: challenge, RecoveryCode: code})
}

// auditEvents lists the events of the audit log of tenant's schema about
// the user with email, oldest first.
func (s *system) auditEvents(tenant, email string) []string {
	s.t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, s.registry.DBURL)
	require.NoError(s.t, err)
	defer db.Close(ctx)
	schema := tenant // a tenant's schema is named after its slug
	rows, err := db.Query(ctx, `SELECT a.event FROM `+pgx.Identifier{schema, "audit_log"}.Sanitize()+` a
		JOIN `+pgx.Identifier{schema, "users"}.Sanitize()+` u ON u.id = a.user_id WHERE u.email = $1 ORDER BY a.id`, email)
	require.NoError(s.t, err)
	events, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(s.t, err)
	return events
}

func TestTOTPSecondFactor(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "acme", "beta")

	var (
		ann mfaUser
		// confirmCode is the code that confirmed ann's enrolment: the
		// clock goes on with the wall clock, so a code computed again
		// later may be the next step's.
		confirmCode string
	)
	t.Run("enrolment gives a secret, its otpauth URI with the tenant's name as issuer, a QR code, then recovery codes", func(t *testing.T) {
		login := s.signUpAndLogin("acme", "ann@example.com")
		ctx := in("acme", login.GetAccessToken())
		st, err := s.auth.GetMfaStatus(ctx, &identityv1.GetMfaStatusRequest{})
		require.NoError(t, err)
		require.False(t, st.GetTotpEnrolled())

		begun, err := s.auth.BeginTotpEnrollment(ctx, &identityv1.BeginTotpEnrollmentRequest{})
		require.NoError(t, err)
		require.Regexp(t, `^[A-Z2-7]{32}$`, begun.GetSecret(), "160 bits of base32")
		uri, err := url.Parse(begun.GetOtpauthUri())
		require.NoError(t, err)
		require.Equal(t, "otpauth", uri.Scheme)
		require.Equal(t, "totp", uri.Host)
		require.Equal(t, "/Tenant acme:ann@example.com", uri.Path)
		require.Equal(t, "Tenant acme", uri.Query().Get("issuer"))
		require.Equal(t, begun.GetSecret(), uri.Query().Get("secret"))
		img, err := png.Decode(bytes.NewReader(begun.GetQrCodePng()))
		require.NoError(t, err, "a PNG")
		require.Equal(t, 256, img.Bounds().Dx())

		// Not enrolled until confirmed: logins still open sessions.
		resp, err := s.auth.Login(in("acme"), loginRequest("ann@example.com", goodPassword))
		require.NoError(t, err)
		require.NotEmpty(t, resp.GetAccessToken())
		require.Nil(t, resp.GetMfaChallenge())

		_, err = s.auth.ConfirmTotpEnrollment(ctx, &identityv1.ConfirmTotpEnrollmentRequest{TotpCode: "000000"})
		if err != nil { // one chance in a million that 000000 is the code
			requireCode(t, err, codes.Unauthenticated)
			require.Equal(t, "MFA_CODE_INVALID", reasonOf(err))
		}
		_, err = s.auth.ConfirmTotpEnrollment(ctx, &identityv1.ConfirmTotpEnrollmentRequest{TotpCode: "12ab"})
		requireCode(t, err, codes.InvalidArgument)

		confirmCode = oathtool(t, begun.GetSecret(), clock.Now())
		confirmed, err := s.auth.ConfirmTotpEnrollment(ctx, &identityv1.ConfirmTotpEnrollmentRequest{TotpCode: confirmCode})
		require.NoError(t, err)
		codesSeen := map[string]bool{}
		for _, c := range confirmed.GetRecoveryCodes() {
			require.Regexp(t, `^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$`, c)
			codesSeen[c] = true
		}
		require.Len(t, codesSeen, 10)
		ann = mfaUser{email: "ann@example.com", secret: begun.GetSecret(), recovery: confirmed.GetRecoveryCodes()}

		st, err = s.auth.GetMfaStatus(ctx, &identityv1.GetMfaStatusRequest{})
		require.NoError(t, err)
		require.True(t, st.GetTotpEnrolled())
		require.EqualValues(t, 10, st.GetRecoveryCodesRemaining())
		me, err := s.auth.GetCurrentUser(ctx, &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.True(t, me.GetUser().GetMfaEnabled(), "the user as the API shows it, the cache's copy forgotten")

		_, err = s.auth.BeginTotpEnrollment(ctx, &identityv1.BeginTotpEnrollmentRequest{})
		requireCode(t, err, codes.FailedPrecondition)
		require.Equal(t, "TOTP_ALREADY_ENROLLED", reasonOf(err))

		_, body, _ := s.mailTo("ann@example.com", "An authenticator app was added")
		require.Contains(t, body, "Tenant acme")
	})
	require.NotEmpty(t, ann.secret)

	t.Run("the password answers with a challenge; oathtool's code opens the session once, and the code is not taken again", func(t *testing.T) {
		ch := s.challenge("acme", ann)
		require.InDelta(t, 300, ch.GetExpiresIn(), 2)
		require.Equal(t, []identityv1.MfaFactor{identityv1.MfaFactor_MFA_FACTOR_TOTP, identityv1.MfaFactor_MFA_FACTOR_RECOVERY_CODE}, ch.GetFactors())

		// The code of the step used to confirm the enrolment is spent.
		_, err := s.verifyTOTP("acme", ch.GetToken(), confirmCode)
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CODE_INVALID", reasonOf(err))

		clock.Advance(30 * time.Second)
		code := oathtool(t, ann.secret, clock.Now())
		done, err := s.verifyTOTP("acme", ch.GetToken(), code)
		require.NoError(t, err)
		require.NotEmpty(t, done.GetRefreshToken())
		me, err := s.auth.GetCurrentUser(in("acme", done.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.Equal(t, "ann@example.com", me.GetUser().GetEmail())

		// The challenge is used up, whatever the code.
		_, err = s.verifyTOTP("acme", ch.GetToken(), oathtool(t, ann.secret, clock.Now().Add(30*time.Second)))
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))

		// The same code on a new challenge is a replay.
		_, err = s.verifyTOTP("acme", s.challenge("acme", ann).GetToken(), code)
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CODE_INVALID", reasonOf(err))

		events := s.auditEvents("acme", ann.email)
		for _, e := range []string{"mfa.totp_enrollment_started", "mfa.totp_enrolled", "mfa.challenged", "mfa.used", "mfa.failed"} {
			require.Contains(t, events, e)
		}
	})

	bob := s.enrolTOTP(clock, "acme", "bob@example.com")
	t.Run("another account's code, and a challenge on another tenant's host, are refused", func(t *testing.T) {
		clock.Advance(30 * time.Second)
		ch := s.challenge("acme", bob)
		_, err := s.verifyTOTP("acme", ch.GetToken(), oathtool(t, ann.secret, clock.Now()))
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CODE_INVALID", reasonOf(err))

		// Tenant beta does not know acme's challenge, even with the right code.
		_, err = s.verifyTOTP("beta", ch.GetToken(), oathtool(t, bob.secret, clock.Now()))
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))
		// Which left it unused at acme.
		_, err = s.verifyTOTP("acme", ch.GetToken(), oathtool(t, bob.secret, clock.Now()))
		require.NoError(t, err)
	})

	t.Run("a challenge expires after five minutes", func(t *testing.T) {
		ch := s.challenge("acme", bob)
		clock.Advance(5*time.Minute + time.Second)
		_, err := s.verifyTOTP("acme", ch.GetToken(), oathtool(t, bob.secret, clock.Now()))
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))
	})

	t.Run("a challenge is no access token, and no refresh token", func(t *testing.T) {
		ch := s.challenge("acme", bob)
		_, err := s.auth.GetCurrentUser(in("acme", ch.GetToken()), &identityv1.GetCurrentUserRequest{})
		requireCode(t, err, codes.Unauthenticated)
		_, err = s.auth.RefreshSession(in("acme"), &identityv1.RefreshSessionRequest{RefreshToken: ch.GetToken()})
		requireCode(t, err, codes.Unauthenticated)
	})

	t.Run("recovery codes work once each, typed any way, and can be regenerated", func(t *testing.T) {
		carl := s.enrolTOTP(clock, "acme", "carl@example.com")
		_, err := s.verifyRecovery("acme", s.challenge("acme", carl).GetToken(), carl.recovery[0])
		require.NoError(t, err)
		_, err = s.verifyRecovery("acme", s.challenge("acme", carl).GetToken(), carl.recovery[0])
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CODE_INVALID", reasonOf(err))
		sloppy := strings.ToLower(strings.ReplaceAll(carl.recovery[1], "-", " "))
		done, err := s.verifyRecovery("acme", s.challenge("acme", carl).GetToken(), sloppy)
		require.NoError(t, err)

		ctx := in("acme", done.GetAccessToken())
		st, err := s.auth.GetMfaStatus(ctx, &identityv1.GetMfaStatusRequest{})
		require.NoError(t, err)
		require.EqualValues(t, 8, st.GetRecoveryCodesRemaining())

		clock.Advance(30 * time.Second)
		fresh, err := s.auth.RegenerateRecoveryCodes(ctx, &identityv1.RegenerateRecoveryCodesRequest{TotpCode: oathtool(t, carl.secret, clock.Now())})
		require.NoError(t, err)
		require.Len(t, fresh.GetRecoveryCodes(), 10)
		require.NotContains(t, fresh.GetRecoveryCodes(), carl.recovery[2])
		require.Contains(t, s.auditEvents("acme", carl.email), "mfa.recovery_codes_regenerated")
	})

	t.Run("a recovery code proves the removal of the app; logins then ask for the password only", func(t *testing.T) {
		dan := s.enrolTOTP(clock, "acme", "dan@example.com")
		done, err := s.verifyRecovery("acme", s.challenge("acme", dan).GetToken(), dan.recovery[0])
		require.NoError(t, err)
		ctx := in("acme", done.GetAccessToken())

		// The old codes stop working once regenerated.
		fresh, err := s.auth.RegenerateRecoveryCodes(ctx, &identityv1.RegenerateRecoveryCodesRequest{RecoveryCode: dan.recovery[1]})
		require.NoError(t, err)
		_, err = s.auth.RemoveTotp(ctx, &identityv1.RemoveTotpRequest{RecoveryCode: dan.recovery[2]})
		requireCode(t, err, codes.Unauthenticated)
		_, err = s.auth.RemoveTotp(ctx, &identityv1.RemoveTotpRequest{})
		requireCode(t, err, codes.InvalidArgument)

		_, err = s.auth.RemoveTotp(ctx, &identityv1.RemoveTotpRequest{RecoveryCode: fresh.GetRecoveryCodes()[0]})
		require.NoError(t, err)
		resp, err := s.auth.Login(in("acme"), loginRequest(dan.email, goodPassword))
		require.NoError(t, err)
		require.NotEmpty(t, resp.GetAccessToken())
		require.Nil(t, resp.GetMfaChallenge())
		st, err := s.auth.GetMfaStatus(in("acme", resp.GetAccessToken()), &identityv1.GetMfaStatusRequest{})
		require.NoError(t, err)
		require.False(t, st.GetTotpEnrolled())
		require.Zero(t, st.GetRecoveryCodesRemaining())

		s.mailTo(dan.email, "The authenticator app was removed")
		require.Contains(t, s.auditEvents("acme", dan.email), "mfa.totp_removed")
	})

	t.Run("guessing codes hits the limit, which then refuses even the right code", func(t *testing.T) {
		eve := s.enrolTOTP(clock, "acme", "eve@example.com") // 1 attempt of eve's budget
		ch := s.challenge("acme", eve)
		clock.Advance(30 * time.Second)
		right := oathtool(t, eve.secret, clock.Now())
		wrong := 0
		var err error
		for guess := 0; guess < 20; guess++ {
			code := fmt.Sprintf("%06d", guess)
			if code == right {
				continue
			}
			_, err = s.verifyTOTP("acme", ch.GetToken(), code)
			if requireCodeIs(err, codes.ResourceExhausted) {
				break
			}
			requireCode(t, err, codes.Unauthenticated)
			wrong++
		}
		requireCode(t, err, codes.ResourceExhausted)
		require.Equal(t, 4, wrong, "five attempts in a row from one address, the enrolment's among them")
		_, err = s.verifyTOTP("acme", ch.GetToken(), right)
		requireCode(t, err, codes.ResourceExhausted)
		require.Contains(t, s.auditEvents("acme", eve.email), "mfa.rate_limited")
	})

	t.Run("over REST, a browser's login gets the challenge, and its second step the session cookies", func(t *testing.T) {
		gina := s.enrolTOTP(clock, "acme", "gina@example.com")
		clock.Advance(30 * time.Second)
		const host = "acme.localhost"
		resp, raw := s.restResponse(http.MethodPost, host, "/v1/auth:login",
			`{"email":"gina@example.com","password":"`+goodPassword+`"}`, "X-Tenantry-Client", "browser")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		require.Empty(t, resp.Header.Values("Set-Cookie"), "no session cookie before the second factor")
		var login struct {
			AccessToken  string
			MfaChallenge struct {
				Token   string
				Factors []string
			}
		}
		require.NoError(t, json.Unmarshal(raw, &login))
		require.Empty(t, login.AccessToken)
		require.Equal(t, []string{"MFA_FACTOR_TOTP", "MFA_FACTOR_RECOVERY_CODE"}, login.MfaChallenge.Factors)

		resp, raw = s.restResponse(http.MethodPost, host, "/v1/auth:verifyMfa",
			`{"mfaChallenge":"`+login.MfaChallenge.Token+`","totpCode":"`+oathtool(t, gina.secret, clock.Now())+`"}`,
			"X-Tenantry-Client", "browser")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		cookies := setCookies(t, resp)
		require.NotNil(t, cookies["tenantry_session /v1/auth:refresh"], "%v", cookies)
		var opened struct{ AccessToken, RefreshToken string }
		require.NoError(t, json.Unmarshal(raw, &opened))
		require.NotEmpty(t, opened.AccessToken)
		require.Empty(t, opened.RefreshToken, "a browser's refresh token is in the cookie only")

		// A wrong code over REST: the gRPC answer, as JSON.
		resp, raw = s.restResponse(http.MethodPost, host, "/v1/auth:login", `{"email":"gina@example.com","password":"`+goodPassword+`"}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NoError(t, json.Unmarshal(raw, &login))
		code, raw2 := s.rest(http.MethodPost, host, "/v1/auth:verifyMfa", `{"mfaChallenge":"`+login.MfaChallenge.Token+`","recoveryCode":"AAAA-AAAA-AAAA-AAAA"}`)
		require.Equal(t, http.StatusUnauthorized, code, "%s", raw2)
		require.Contains(t, string(raw2), "MFA_CODE_INVALID")
	})

	t.Run("the login page without the script asks for the code after the password, then logs in", func(t *testing.T) {
		hal := s.enrolTOTP(clock, "acme", "hal@example.com")
		clock.Advance(30 * time.Second)
		const host = "acme.localhost"
		resp, body := s.postForm(host, "/login", url.Values{"email": {hal.email}, "password": {goodPassword}, "next": {"/account?tab=1"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Empty(t, resp.Header.Values("Set-Cookie"))
		m := regexp.MustCompile(`name="mfa_challenge" value="([^"]+)"`).FindStringSubmatch(body)
		require.NotNil(t, m, body)
		require.Contains(t, body, `<form id="login-form" method="post" action="/login" novalidate hidden>`)

		resp, body = s.postForm(host, "/login", url.Values{"mfa_challenge": {m[1]}, "code": {"123 456"}, "next": {"/account?tab=1"}})
		if resp.StatusCode != http.StatusSeeOther { // one chance in a million that it was the code
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
			require.Contains(t, body, `value="`+m[1]+`"`, "the same challenge takes another code")
		}
		resp, body = s.postForm(host, "/login", url.Values{"mfa_challenge": {m[1]}, "code": {oathtool(t, hal.secret, clock.Now())}, "next": {"/account?tab=1"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		require.Equal(t, "/account?tab=1", resp.Header.Get("Location"))
		require.NotNil(t, setCookies(t, resp)["tenantry_session /v1/auth:refresh"])
	})
}

func TestTenantMFAPolicy(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "strict")
	admin := s.makeAdmin("strict", "boss@example.com")
	plain := s.signUpAndLogin("strict", "staff@example.com")
	setPolicy := func(p identityv1.MfaPolicy) {
		t.Helper()
		resp, err := s.users.UpdateTenantSettings(in("strict", admin.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{MfaPolicy: p}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_policy"}}})
		require.NoError(t, err)
		require.Equal(t, p, resp.GetSettings().GetMfaPolicy())
	}

	t.Run("new tenants are optional, and the policy is a setting like the others", func(t *testing.T) {
		st, err := s.users.GetTenantSettings(asOperator("strict"), &identityv1.GetTenantSettingsRequest{})
		require.NoError(t, err)
		require.Equal(t, identityv1.MfaPolicy_MFA_POLICY_OPTIONAL, st.GetSettings().GetMfaPolicy())
		_, err = s.users.UpdateTenantSettings(asOperator("strict"), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_policy"}}})
		requireCode(t, err, codes.InvalidArgument)
		_, err = s.users.UpdateTenantSettings(in("strict", plain.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{MfaPolicy: identityv1.MfaPolicy_MFA_POLICY_OPTIONAL}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_policy"}}})
		requireCode(t, err, codes.PermissionDenied)
	})

	t.Run("required for admins: an admin without a factor is led to enrol at login, a plain user is not", func(t *testing.T) {
		setPolicy(identityv1.MfaPolicy_MFA_POLICY_REQUIRED_FOR_ADMINS)
		resp, err := s.auth.Login(in("strict"), loginRequest("staff@example.com", goodPassword))
		require.NoError(t, err)
		require.NotEmpty(t, resp.GetAccessToken())

		resp, err = s.auth.Login(in("strict"), loginRequest("boss@example.com", goodPassword))
		require.NoError(t, err)
		require.Empty(t, resp.GetAccessToken(), "no session without the factor the tenant requires")
		ch := resp.GetMfaChallenge()
		require.True(t, ch.GetEnrollmentRequired())
		require.Empty(t, ch.GetFactors())

		// VerifyMfa has nothing to check: the account has no factor.
		_, err = s.verifyTOTP("strict", ch.GetToken(), "123456")
		requireCode(t, err, codes.Unauthenticated)

		begun, err := s.auth.BeginLoginTotpEnrollment(in("strict"), &identityv1.BeginLoginTotpEnrollmentRequest{MfaChallenge: ch.GetToken()})
		require.NoError(t, err)
		require.Contains(t, begun.GetOtpauthUri(), "boss@example.com")
		done, err := s.auth.ConfirmLoginTotpEnrollment(in("strict"), &identityv1.ConfirmLoginTotpEnrollmentRequest{
			MfaChallenge: ch.GetToken(), TotpCode: oathtool(t, begun.GetSecret(), clock.Now())})
		require.NoError(t, err)
		require.Len(t, done.GetRecoveryCodes(), 10)
		me, err := s.auth.GetCurrentUser(in("strict", done.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.Equal(t, "boss@example.com", me.GetUser().GetEmail())

		// The challenge is used up; the next login asks for the new factor.
		_, err = s.auth.BeginLoginTotpEnrollment(in("strict"), &identityv1.BeginLoginTotpEnrollmentRequest{MfaChallenge: ch.GetToken()})
		requireCode(t, err, codes.Unauthenticated)
		next := s.challenge("strict", mfaUser{email: "boss@example.com"})
		require.False(t, next.GetEnrollmentRequired())
		clock.Advance(30 * time.Second)
		_, err = s.verifyTOTP("strict", next.GetToken(), oathtool(t, begun.GetSecret(), clock.Now()))
		require.NoError(t, err)

		// A factor the tenant requires cannot be removed.
		_, err = s.auth.RemoveTotp(in("strict", done.GetAccessToken()), &identityv1.RemoveTotpRequest{RecoveryCode: done.GetRecoveryCodes()[0]})
		requireCode(t, err, codes.FailedPrecondition)
		require.Equal(t, "MFA_REQUIRED_BY_TENANT", reasonOf(err))
		// And the refusal spent no recovery code.
		st, err := s.auth.GetMfaStatus(in("strict", done.GetAccessToken()), &identityv1.GetMfaStatusRequest{})
		require.NoError(t, err)
		require.EqualValues(t, 10, st.GetRecoveryCodesRemaining())
	})

	t.Run("required for all: a password alone logs nobody in; enrolment over REST sets a browser's session", func(t *testing.T) {
		setPolicy(identityv1.MfaPolicy_MFA_POLICY_REQUIRED)
		const host = "strict.localhost"
		resp, raw := s.restResponse(http.MethodPost, host, "/v1/auth:login",
			`{"email":"staff@example.com","password":"`+goodPassword+`"}`, "X-Tenantry-Client", "browser")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		require.Empty(t, resp.Header.Values("Set-Cookie"))
		var login struct {
			AccessToken  string
			MfaChallenge struct {
				Token              string
				EnrollmentRequired bool
			}
		}
		require.NoError(t, json.Unmarshal(raw, &login))
		require.Empty(t, login.AccessToken)
		require.True(t, login.MfaChallenge.EnrollmentRequired)

		code, raw := s.rest(http.MethodPost, host, "/v1/auth:beginLoginTotpEnrollment", `{"mfaChallenge":"`+login.MfaChallenge.Token+`"}`)
		require.Equal(t, http.StatusOK, code, "%s", raw)
		var begun struct{ Secret, OtpauthUri, QrCodePng string }
		require.NoError(t, json.Unmarshal(raw, &begun))
		require.NotEmpty(t, begun.QrCodePng)

		resp, raw = s.restResponse(http.MethodPost, host, "/v1/auth:confirmLoginTotpEnrollment",
			`{"mfaChallenge":"`+login.MfaChallenge.Token+`","totpCode":"`+oathtool(t, begun.Secret, clock.Now())+`"}`,
			"X-Tenantry-Client", "browser")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		require.NotNil(t, setCookies(t, resp)["tenantry_session /v1/auth:refresh"])
		var done struct {
			RecoveryCodes             []string
			AccessToken, RefreshToken string
		}
		require.NoError(t, json.Unmarshal(raw, &done))
		require.Len(t, done.RecoveryCodes, 10)
		require.NotEmpty(t, done.AccessToken)
		require.Empty(t, done.RefreshToken, "a browser's refresh token is in the cookie only")

		// Sessions opened before the policy stay open.
		_, err := s.auth.GetCurrentUser(in("strict", plain.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
	})

	t.Run("required for all: the login page without the script shows the app's key, and enrols it with a code", func(t *testing.T) {
		clock.Advance(30 * time.Second)
		_, err := s.auth.SignUp(in("strict"), &identityv1.SignUpRequest{Email: "paper@example.com", Password: goodPassword})
		require.NoError(t, err)
		const host = "strict.localhost"
		resp, body := s.postForm(host, "/login", url.Values{"email": {"paper@example.com"}, "password": {goodPassword}, "next": {"/account?tab=2"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Empty(t, resp.Header.Values("Set-Cookie"))
		require.Contains(t, body, `<section id="enrol-section">`)
		require.Regexp(t, `<img id="enrol-qr" src="data:image/png;base64,([A-Za-z0-9/=]|&#43;)+"`, body)
		secret := regexp.MustCompile(`<code id="enrol-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(body)
		require.NotNil(t, secret, body)
		challenge := regexp.MustCompile(`name="mfa_challenge" value="([^"]+)"`).FindStringSubmatch(body)
		require.NotNil(t, challenge, body)

		form := url.Values{"mfa_challenge": {challenge[1]}, "enrol": {"1"}, "secret": {secret[1]}, "next": {"/account?tab=2"}}
		form.Set("enrol_code", "12345") // malformed: the page asks again, with the key
		resp, body = s.postForm(host, "/login", form)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		require.Contains(t, body, `<code id="enrol-secret">`+secret[1]+`</code>`)

		form.Set("enrol_code", oathtool(t, secret[1], clock.Now()))
		resp, body = s.postForm(host, "/login", form)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.NotNil(t, setCookies(t, resp)["tenantry_session /v1/auth:refresh"])
		require.Len(t, regexp.MustCompile(`<li><code>[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}</code></li>`).FindAllString(body, -1), 10, body)
		require.Contains(t, body, `href="/account?tab=2"`)
	})

	t.Run("an admin resets the factor of a user who lost it, who then enrols a new one at login", func(t *testing.T) {
		users, err := s.users.ListUsers(in("strict", admin.GetAccessToken()), &identityv1.ListUsersRequest{})
		require.NoError(t, err)
		var staff string
		for _, u := range users.GetUsers() {
			if u.GetEmail() == "staff@example.com" {
				staff = u.GetName()
				require.True(t, u.GetMfaEnabled(), "the admin sees the factor")
			}
		}
		require.NotEmpty(t, staff)
		paper := s.challenge("strict", mfaUser{email: "paper@example.com"}) // another user's: untouched
		_, err = s.users.ResetUserMfa(in("strict", plain.GetAccessToken()), &identityv1.ResetUserMfaRequest{Name: staff})
		requireCode(t, err, codes.PermissionDenied)
		_, err = s.users.ResetUserMfa(in("strict", admin.GetAccessToken()), &identityv1.ResetUserMfaRequest{Name: staff})
		require.NoError(t, err)
		got, err := s.users.GetUser(in("strict", admin.GetAccessToken()), &identityv1.GetUserRequest{Name: staff})
		require.NoError(t, err)
		require.False(t, got.GetUser().GetMfaEnabled())
		_, err = s.users.ResetUserMfa(in("strict", admin.GetAccessToken()), &identityv1.ResetUserMfaRequest{Name: staff})
		requireCode(t, err, codes.FailedPrecondition)
		require.Equal(t, "TOTP_NOT_ENROLLED", reasonOf(err))
		_, body, _ := s.mailTo("staff@example.com", "An administrator reset the second factors")
		require.Contains(t, body, "its authenticator app, its recovery codes and its passkeys", "the mail names every factor the reset removed")
		require.Contains(t, s.auditEvents("strict", "staff@example.com"), "mfa.reset_by_admin")

		resp, err := s.auth.Login(in("strict"), loginRequest("staff@example.com", goodPassword))
		require.NoError(t, err)
		require.True(t, resp.GetMfaChallenge().GetEnrollmentRequired(), "the policy still requires one")
		require.False(t, paper.GetEnrollmentRequired())

		code, raw := s.rest(http.MethodPost, "strict.localhost", "/v1/"+staff+":resetMfa", `{}`, "Authorization", "Bearer "+admin.GetAccessToken())
		require.Equal(t, http.StatusBadRequest, code, "the REST route, answering FAILED_PRECONDITION: %s", raw)
		require.Contains(t, string(raw), "TOTP_NOT_ENROLLED")
	})

	t.Run("back to optional, logins of accounts without a factor open sessions again", func(t *testing.T) {
		setPolicy(identityv1.MfaPolicy_MFA_POLICY_OPTIONAL)
		_ = s.signUpAndLogin("strict", "late@example.com") // signUpAndLogin requires a session
	})
}

// TestSignInWithAProviderAsksForTheSecondFactor: another identity provider
// stands in for the password, not for the second factor: the browser goes
// on at the login page's code form, or the enrolment a tenant requires.
// The sessions say so in the ID tokens' amr: "fed", then the factor's.
func TestSignInWithAProviderAsksForTheSecondFactor(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "alpha", "beta")
	f := setUpFederation(t, s, true)
	app := s.firstPartyApp("alpha")
	f.betaUser(t, "carol@beta.example", true)
	first := s.newBrowser()
	resp, body := f.signInWithBeta(t, first, "carol@beta.example")
	require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
	require.Equal(t, []string{"fed"}, app.idTokenAMR(t, first), "another provider vouched; no password was given here")
	carol := in("alpha", first.accessToken(f.alpha))
	begun, err := s.auth.BeginTotpEnrollment(carol, &identityv1.BeginTotpEnrollmentRequest{})
	require.NoError(t, err)
	_, err = s.auth.ConfirmTotpEnrollment(carol, &identityv1.ConfirmTotpEnrollmentRequest{TotpCode: oathtool(t, begun.GetSecret(), clock.Now())})
	require.NoError(t, err)
	challengeIn := regexp.MustCompile(`<form id="mfa-form" method="post" action="/login" novalidate>\s*<input type="hidden" name="mfa_challenge" value="([^"]+)">`)

	t.Run("an account with an app signs in with the provider, then gives the app's code", func(t *testing.T) {
		b := s.newBrowser()
		resp, body := f.signInWithBeta(t, b, "carol@beta.example")
		require.Equal(t, f.alpha+"/login?next=%2Faccount", resp.Request.URL.String(), body)
		require.Empty(t, f.whoAmI(t, b), "no session before the second factor")
		m := challengeIn.FindStringSubmatch(body)
		require.NotNil(t, m, "the code form, shown: %s", body)

		clock.Advance(30 * time.Second)
		resp, body = b.post(f.alpha+"/login", url.Values{"mfa_challenge": {m[1]}, "code": {oathtool(t, begun.GetSecret(), clock.Now())}, "next": {"/account"}})
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		require.Equal(t, "carol@beta.example", f.whoAmI(t, b))
		require.Equal(t, []string{"fed", "otp", "mfa"}, app.idTokenAMR(t, b))

		// The pending sign-in is over: the login page is the plain one again.
		_, body = b.get(f.alpha + "/login")
		require.Nil(t, challengeIn.FindStringSubmatch(body), body)
	})

	t.Run("a tenant requiring a factor leads a new person from the provider through the enrolment", func(t *testing.T) {
		_, err := s.users.UpdateTenantSettings(in("alpha", f.adminA), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{MfaPolicy: identityv1.MfaPolicy_MFA_POLICY_REQUIRED}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_policy"}}})
		require.NoError(t, err)
		f.betaUser(t, "dora@beta.example", true)
		b := s.newBrowser()
		resp, body := f.signInWithBeta(t, b, "dora@beta.example")
		require.Equal(t, f.alpha+"/login?next=%2Faccount", resp.Request.URL.String(), body)
		require.Empty(t, f.whoAmI(t, b))
		require.Contains(t, body, `<section id="enrol-section">`)
		secret := regexp.MustCompile(`<code id="enrol-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(body)
		require.NotNil(t, secret, body)
		challenge := regexp.MustCompile(`name="mfa_challenge" value="([^"]+)"`).FindStringSubmatch(body)
		require.NotNil(t, challenge, body)

		_, body = b.post(f.alpha+"/login", url.Values{"mfa_challenge": {challenge[1]}, "enrol": {"1"}, "secret": {secret[1]},
			"enrol_code": {oathtool(t, secret[1], clock.Now())}, "next": {"/account"}})
		require.Contains(t, body, `<section id="codes-section">`, body)
		require.Equal(t, "dora@beta.example", f.whoAmI(t, b))
		require.Equal(t, []string{"fed", "otp", "mfa"}, app.idTokenAMR(t, b), "the enrolment's code is the second factor")
	})
}

// proofAsked is the proof a REAUTHENTICATION_REQUIRED refusal asks for.
func proofAsked(t *testing.T, err error) string {
	t.Helper()
	requireCode(t, err, codes.PermissionDenied)
	require.Equal(t, "REAUTHENTICATION_REQUIRED", reasonOf(err))
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()["proof"]
		}
	}
	return ""
}

func TestReauthentication(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "demo")
	ann := s.enrolTOTP(clock, "demo", "ann@example.com")
	clock.Advance(30 * time.Second)
	done, err := s.verifyTOTP("demo", s.challenge("demo", ann).GetToken(), oathtool(t, ann.secret, clock.Now()))
	require.NoError(t, err)
	annCtx := in("demo", done.GetAccessToken())
	changeEmail := func(ctx context.Context, to string) error {
		_, err := s.auth.ChangeEmail(ctx, &identityv1.ChangeEmailRequest{NewEmail: to, Password: goodPassword})
		return err
	}

	t.Run("a login with the second factor is a proof for ten minutes, then a code of the factor is asked for", func(t *testing.T) {
		require.NoError(t, changeEmail(annCtx, "ann.new@example.com"))
		clock.Advance(ReauthWindowForTests + time.Minute)
		err := changeEmail(annCtx, "ann.newer@example.com")
		require.Equal(t, "code", proofAsked(t, err))
		_, err = s.auth.ChangePassword(annCtx, &identityv1.ChangePasswordRequest{CurrentPassword: goodPassword, NewPassword: "another long passphrase"})
		require.Equal(t, "code", proofAsked(t, err), "the current password alone is not enough")

		_, err = s.auth.Reauthenticate(annCtx, &identityv1.ReauthenticateRequest{Password: goodPassword})
		requireCode(t, err, codes.InvalidArgument)
		_, err = s.auth.Reauthenticate(annCtx, &identityv1.ReauthenticateRequest{TotpCode: oathtool(t, ann.secret, clock.Now())})
		require.NoError(t, err)
		require.NoError(t, changeEmail(annCtx, "ann.newer@example.com"))
		require.Contains(t, s.auditEvents("demo", "ann@example.com"), "session.reauthenticated")
	})

	t.Run("without a factor, the password is the proof; adding a factor asks for it after ten minutes", func(t *testing.T) {
		bob := s.signUpAndLogin("demo", "bob@example.com")
		bobCtx := in("demo", bob.GetAccessToken())
		clock.Advance(ReauthWindowForTests + time.Minute)
		require.NoError(t, changeEmail(bobCtx, "bob.new@example.com"), "the change takes the password itself")
		_, err := s.auth.BeginTotpEnrollment(bobCtx, &identityv1.BeginTotpEnrollmentRequest{})
		require.Equal(t, "password", proofAsked(t, err))
		_, err = s.auth.Reauthenticate(bobCtx, &identityv1.ReauthenticateRequest{Password: "not the password at all"})
		requireCode(t, err, codes.InvalidArgument)
		require.Equal(t, "PASSWORD_INCORRECT", reasonOf(err))
		resp, err := s.auth.Reauthenticate(bobCtx, &identityv1.ReauthenticateRequest{Password: goodPassword})
		require.NoError(t, err)
		require.WithinDuration(t, clock.Now().Add(ReauthWindowForTests), resp.GetExpireTime().AsTime(), 5*time.Second)
		_, err = s.auth.BeginTotpEnrollment(bobCtx, &identityv1.BeginTotpEnrollmentRequest{})
		require.NoError(t, err)
	})

	t.Run("managing OAuth clients needs a recent proof of an admin, not of the operator credential", func(t *testing.T) {
		admin := s.makeAdmin("demo", "boss@example.com")
		adminCtx := in("demo", admin.GetAccessToken())
		clients := identityv1.NewOAuthClientServiceClient(s.conn)
		_, err := clients.CreateOAuthClient(adminCtx, &identityv1.CreateOAuthClientRequest{OauthClient: webAppClient("Fresh")})
		require.NoError(t, err, "the login is a proof")
		clock.Advance(ReauthWindowForTests + time.Minute)
		_, err = clients.CreateOAuthClient(adminCtx, &identityv1.CreateOAuthClientRequest{OauthClient: webAppClient("Stale")})
		require.Equal(t, "password", proofAsked(t, err))
		_, err = clients.CreateOAuthClient(asOperator("demo"), &identityv1.CreateOAuthClientRequest{OauthClient: webAppClient("Operator's")})
		require.NoError(t, err)
		_, err = s.auth.Reauthenticate(adminCtx, &identityv1.ReauthenticateRequest{Password: goodPassword})
		require.NoError(t, err)
		_, err = clients.CreateOAuthClient(adminCtx, &identityv1.CreateOAuthClientRequest{OauthClient: webAppClient("Proved")})
		require.NoError(t, err)
	})
}

// ReauthWindowForTests is how long a proof counts.
const ReauthWindowForTests = account.ReauthWindow

func TestRememberedDevice(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "demo")
	admin := s.makeAdmin("demo", "boss@example.com")
	setDays := func(days int32) {
		t.Helper()
		_, err := s.users.UpdateTenantSettings(in("demo", admin.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{MfaRememberDeviceDays: days}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_remember_device_days"}}})
		require.NoError(t, err)
	}
	login := func(email, device string) *identityv1.LoginResponse {
		t.Helper()
		resp, err := s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: email, Password: goodPassword, DeviceToken: device})
		require.NoError(t, err)
		return resp
	}

	t.Run("new tenants remember no device; the setting is bounded", func(t *testing.T) {
		st, err := s.users.GetTenantSettings(asOperator("demo"), &identityv1.GetTenantSettingsRequest{})
		require.NoError(t, err)
		require.Zero(t, st.GetSettings().GetMfaRememberDeviceDays())
		_, err = s.users.UpdateTenantSettings(asOperator("demo"), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{MfaRememberDeviceDays: 91}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_remember_device_days"}}})
		requireCode(t, err, codes.InvalidArgument)
		ann := s.enrolTOTP(clock, "demo", "ann@example.com")
		ch := s.challenge("demo", ann)
		require.Zero(t, ch.GetRememberDeviceDays())
		clock.Advance(30 * time.Second)
		done, err := s.auth.VerifyMfa(in("demo"), &identityv1.VerifyMfaRequest{MfaChallenge: ch.GetToken(),
			TotpCode: oathtool(t, ann.secret, clock.Now()), RememberDevice: true})
		require.NoError(t, err)
		require.Empty(t, done.GetDeviceToken(), "the tenant does not remember devices")
	})

	setDays(30)
	var device string
	bob := s.enrolTOTP(clock, "demo", "bob@example.com")
	t.Run("a remembered device logs in with the password alone, for the tenant's days", func(t *testing.T) {
		ch := s.challenge("demo", bob)
		require.EqualValues(t, 30, ch.GetRememberDeviceDays())
		clock.Advance(30 * time.Second)
		done, err := s.auth.VerifyMfa(in("demo"), &identityv1.VerifyMfaRequest{MfaChallenge: ch.GetToken(),
			TotpCode: oathtool(t, bob.secret, clock.Now()), RememberDevice: true})
		require.NoError(t, err)
		device = done.GetDeviceToken()
		require.NotEmpty(t, device)

		resp := login(bob.email, device)
		require.Nil(t, resp.GetMfaChallenge())
		require.NotEmpty(t, resp.GetAccessToken())
		require.NotNil(t, login(bob.email, "").GetMfaChallenge(), "without the token, the code is asked for")
		require.NotNil(t, login(bob.email, "not a device").GetMfaChallenge())

		// Its sessions proved the password only: sensitive actions ask for a code.
		_, err = s.auth.ChangeEmail(in("demo", resp.GetAccessToken()), &identityv1.ChangeEmailRequest{NewEmail: "bob.new@example.com", Password: goodPassword})
		require.Equal(t, "code", proofAsked(t, err))
		require.Contains(t, s.auditEvents("demo", bob.email), "mfa.device_remembered")
	})

	t.Run("another account's device token does nothing", func(t *testing.T) {
		carl := s.enrolTOTP(clock, "demo", "carl@example.com")
		require.NotNil(t, login(carl.email, device).GetMfaChallenge())
	})

	t.Run("the tenant's days bound the device: fewer days, or none, end it", func(t *testing.T) {
		clock.Advance(3 * 24 * time.Hour)
		require.Nil(t, login(bob.email, device).GetMfaChallenge())
		setDays(2)
		require.NotNil(t, login(bob.email, device).GetMfaChallenge())
		setDays(30)
		require.Nil(t, login(bob.email, device).GetMfaChallenge())
		setDays(0)
		require.NotNil(t, login(bob.email, device).GetMfaChallenge())
		setDays(30)
		clock.Advance(28 * 24 * time.Hour)
		require.NotNil(t, login(bob.email, device).GetMfaChallenge(), "expired after 30 days")
	})

	t.Run("a browser keeps the device in a cookie for the login routes; a password change forgets it", func(t *testing.T) {
		dora := s.enrolTOTP(clock, "demo", "dora@example.com")
		const host = "demo.localhost"
		ch := s.challenge("demo", dora)
		clock.Advance(30 * time.Second)
		resp, raw := s.restResponse(http.MethodPost, host, "/v1/auth:verifyMfa",
			`{"mfaChallenge":"`+ch.GetToken()+`","totpCode":"`+oathtool(t, dora.secret, clock.Now())+`","rememberDevice":true}`,
			"X-Tenantry-Client", "browser")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		var done struct{ AccessToken, DeviceToken string }
		require.NoError(t, json.Unmarshal(raw, &done))
		require.Empty(t, done.DeviceToken, "a browser's device token is in the cookie only")
		cookies := setCookies(t, resp)
		apiCookie, pageCookie := cookies["tenantry_device /v1/auth:login"], cookies["tenantry_device /login"]
		require.NotNil(t, apiCookie, "%v", cookies)
		require.NotNil(t, pageCookie)
		require.True(t, apiCookie.HttpOnly)
		require.Equal(t, http.SameSiteStrictMode, apiCookie.SameSite)

		cookie := "tenantry_device=" + apiCookie.Value
		resp, raw = s.restResponse(http.MethodPost, host, "/v1/auth:login", `{"email":"dora@example.com","password":"`+goodPassword+`"}`,
			"X-Tenantry-Client", "browser", "Cookie", cookie)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		require.NotContains(t, string(raw), "mfaChallenge\":{", "no challenge for the remembered browser: %s", raw)
		require.NotNil(t, setCookies(t, resp)["tenantry_session /v1/auth:refresh"])

		form, body := s.postForm(host, "/login", url.Values{"email": {"dora@example.com"}, "password": {goodPassword}}, "Cookie", cookie)
		require.Equal(t, http.StatusSeeOther, form.StatusCode, "the login page's form too: %s", body)

		// A password change forgets every remembered device of the account.
		_, err := s.auth.Reauthenticate(in("demo", done.AccessToken), &identityv1.ReauthenticateRequest{RecoveryCode: dora.recovery[0]})
		require.NoError(t, err)
		_, err = s.auth.ChangePassword(in("demo", done.AccessToken), &identityv1.ChangePasswordRequest{CurrentPassword: goodPassword, NewPassword: "a brand new passphrase"})
		require.NoError(t, err)
		resp2, err := s.auth.Login(in("demo"), &identityv1.LoginRequest{Email: "dora@example.com", Password: "a brand new passphrase", DeviceToken: apiCookie.Value})
		require.NoError(t, err)
		require.NotNil(t, resp2.GetMfaChallenge())
	})
}

func TestLoginByEmailCode(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "demo")
	admin := s.makeAdmin("demo", "boss@example.com")
	request := func(email string) (string, error) {
		resp, err := s.auth.RequestLoginCode(in("demo"), &identityv1.RequestLoginCodeRequest{Email: email})
		return resp.GetLoginCodeToken(), err
	}
	withCode := func(token, code string) (*identityv1.LoginWithCodeResponse, error) {
		return s.auth.LoginWithCode(in("demo"), &identityv1.LoginWithCodeRequest{LoginCodeToken: token, Code: code})
	}
	codeIn := regexp.MustCompile(`\n    (\d{6})\r?\n`)
	mailedCode := func(email string, nth int) string {
		t.Helper()
		var code string
		registrytestEventually(t, "login code mail to "+email, func() bool {
			n := 0
			for _, m := range s.smtp.Messages() {
				if !strings.Contains(strings.Join(m.To, ","), email) {
					continue
				}
				if c := codeIn.FindStringSubmatch(decodeBody(t, m.Data)); c != nil {
					n++
					if n == nth {
						code = c[1]
						return true
					}
				}
			}
			return false
		})
		return code
	}
	_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: "ann@example.com", Password: goodPassword})
	require.NoError(t, err)
	var carl mfaUser // with an authenticator app

	t.Run("off by default", func(t *testing.T) {
		_, err := request("ann@example.com")
		requireCode(t, err, codes.FailedPrecondition)
		require.Equal(t, "LOGIN_BY_CODE_DISABLED", reasonOf(err))
		_, err = s.users.UpdateTenantSettings(in("demo", admin.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{LoginByEmailCode: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"login_by_email_code"}}})
		require.NoError(t, err)
		cfg, err := s.auth.GetAuthConfig(in("demo"), &identityv1.GetAuthConfigRequest{})
		require.NoError(t, err)
		require.True(t, cfg.GetLoginByEmailCode())
	})

	t.Run("the mailed code logs in once, with its own token, and verifies the address", func(t *testing.T) {
		token, err := request("ann@example.com")
		require.NoError(t, err)
		code := mailedCode("ann@example.com", 1)
		wrong := fmt.Sprintf("%06d", (mustAtoi(t, code)+1)%1_000_000)
		_, err = withCode(token, wrong)
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "LOGIN_CODE_INVALID", reasonOf(err))
		done, err := withCode(token, code)
		require.NoError(t, err)
		require.NotEmpty(t, done.GetAccessToken())
		require.True(t, done.GetUser().GetEmailVerified())
		_, err = withCode(token, code)
		requireCode(t, err, codes.Unauthenticated)

		// An unknown address gets a token just the same, and no mail.
		before := s.mailsTo("nobody@example.com")
		other, err := request("nobody@example.com")
		require.NoError(t, err)
		require.Len(t, other, len(token))
		_, err = withCode(other, code)
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, before, s.mailsTo("nobody@example.com"))
	})

	t.Run("a code works with its own token only, and five wrong codes end the token", func(t *testing.T) {
		_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: "dora@example.com", Password: goodPassword})
		require.NoError(t, err)
		first, err := request("dora@example.com")
		require.NoError(t, err)
		firstCode := mailedCode("dora@example.com", 1)
		second, err := request("dora@example.com")
		require.NoError(t, err)
		secondCode := mailedCode("dora@example.com", 2)
		if firstCode != secondCode {
			_, err = withCode(second, firstCode)
			requireCode(t, err, codes.Unauthenticated)
		}
		for range 5 {
			_, err = withCode(first, fmt.Sprintf("%06d", (mustAtoi(t, firstCode)+7)%1_000_000))
			requireCode(t, err, codes.Unauthenticated)
		}
		_, err = withCode(first, firstCode)
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "LOGIN_CODE_INVALID", reasonOf(err), "the right code after five wrong ones")
		_, err = withCode(second, secondCode)
		require.NoError(t, err)
	})

	t.Run("an account with a second factor still gives it after the code", func(t *testing.T) {
		carl = s.enrolTOTP(clock, "demo", "carl@example.com")
		// Verified first: the first proof of an address by a code takes
		// the account over, second factors and all (claimAccount).
		_, _, verify := s.mailTo(carl.email, "Confirm your email")
		_, err := s.auth.VerifyEmail(in("demo"), &identityv1.VerifyEmailRequest{Token: verify})
		require.NoError(t, err)
		token, err := request(carl.email)
		require.NoError(t, err)
		resp, err := withCode(token, mailedCode(carl.email, 1))
		require.NoError(t, err)
		require.Empty(t, resp.GetAccessToken())
		require.NotNil(t, resp.GetMfaChallenge())
		clock.Advance(30 * time.Second)
		_, err = s.verifyTOTP("demo", resp.GetMfaChallenge().GetToken(), oathtool(t, carl.secret, clock.Now()))
		require.NoError(t, err)
	})

	t.Run("over REST, a browser's code login gets the session cookies", func(t *testing.T) {
		_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: "eve@example.com", Password: goodPassword})
		require.NoError(t, err)
		code, raw := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:requestLoginCode", `{"email":"eve@example.com"}`)
		require.Equal(t, http.StatusOK, code, "%s", raw)
		var req struct{ LoginCodeToken string }
		require.NoError(t, json.Unmarshal(raw, &req))
		resp, raw := s.restResponse(http.MethodPost, "demo.localhost", "/v1/auth:loginWithCode",
			`{"loginCodeToken":"`+req.LoginCodeToken+`","code":"`+mailedCode("eve@example.com", 1)+`"}`, "X-Tenantry-Client", "browser")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", raw)
		require.NotNil(t, setCookies(t, resp)["tenantry_session /v1/auth:refresh"])
		require.Contains(t, s.auditEvents("demo", "eve@example.com"), "user.login_code_requested")
	})

	t.Run("the login page links to it, and its page logs in without the script, or goes on at the code form, whose session says email, otp", func(t *testing.T) {
		const host = "demo.localhost"
		_, body := s.restResponse(http.MethodGet, host, "/login?next=/account", "")
		require.Contains(t, string(body), `href="/login/code?next=%2faccount"`)
		_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: "frank@example.com", Password: goodPassword})
		require.NoError(t, err)
		resp, page := s.postForm(host, "/login/code", url.Values{"email": {"frank@example.com"}, "next": {"/account"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		token := regexp.MustCompile(`name="login_code_token" value="([^"]+)"`).FindStringSubmatch(page)
		require.NotNil(t, token, page)
		resp, page = s.postForm(host, "/login/code", url.Values{"login_code_token": {token[1]}, "code": {mailedCode("frank@example.com", 1)}, "next": {"/account"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, page)
		require.Equal(t, "/account", resp.Header.Get("Location"))
		require.NotNil(t, setCookies(t, resp)["tenantry_session /v1/auth:refresh"])

		// An account with a second factor: the login page's code form.
		resp, page = s.postForm(host, "/login/code", url.Values{"email": {"carl@example.com"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		token = regexp.MustCompile(`name="login_code_token" value="([^"]+)"`).FindStringSubmatch(page)
		require.NotNil(t, token, page)
		resp, page = s.postForm(host, "/login/code", url.Values{"login_code_token": {token[1]}, "code": {mailedCode("carl@example.com", 2)}})
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		require.Empty(t, resp.Header.Values("Set-Cookie"))
		challenge := regexp.MustCompile(`<form id="mfa-form" method="post" action="/login" novalidate>\s*<input type="hidden" name="mfa_challenge" value="([^"]+)">`).
			FindStringSubmatch(page)
		require.NotNil(t, challenge, page)

		// The app's code on that form: the session began with the mailed
		// code, not a password.
		b := s.newBrowser()
		clock.Advance(30 * time.Second)
		resp, page = b.post(s.issuer("demo")+"/login", url.Values{"mfa_challenge": {challenge[1]},
			"code": {oathtool(t, carl.secret, clock.Now())}, "next": {"/account"}})
		require.Equal(t, "/account", resp.Request.URL.Path, page)
		require.Equal(t, []string{"email", "otp", "mfa"}, s.firstPartyApp("demo").idTokenAMR(t, b))
	})

	t.Run("mailing codes is limited like password resets", func(t *testing.T) {
		var err error
		for range 3 {
			if _, err = request("ann@example.com"); err != nil {
				break
			}
		}
		requireCode(t, err, codes.ResourceExhausted)
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

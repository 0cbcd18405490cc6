package server_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
	"tenantry.dev/identity/internal/softkey"
)

// secondFactorRows counts the authenticator apps (pending or confirmed) and
// the recovery codes of the user with email in tenant's schema, read from
// the database itself.
func (s *system) secondFactorRows(tenant, email string) (apps, recoveryCodes int) {
	s.t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, s.registry.DBURL)
	require.NoError(s.t, err)
	defer db.Close(ctx)
	users := pgx.Identifier{tenant, "users"}.Sanitize()
	err = db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM `+pgx.Identifier{tenant, "totp_factors"}.Sanitize()+` f JOIN `+users+` u ON u.id = f.user_id WHERE u.email = $1),
		(SELECT count(*) FROM `+pgx.Identifier{tenant, "recovery_codes"}.Sanitize()+` r JOIN `+users+` u ON u.id = r.user_id WHERE u.email = $1)`,
		email).Scan(&apps, &recoveryCodes)
	require.NoError(s.t, err)
	return apps, recoveryCodes
}

// TestLoginEnrolmentOnlyForAnAccountWithoutFactor: the challenge of a login
// stands in for a session when enrolling an authenticator app only for an
// account that has no second factor and must have one. An account whose
// factor is a passkey is the case that matters: whoever knows its password
// gets a challenge, and must not trade it for a session by enrolling an
// app of their own, whichever first step issued it and whatever the policy.
func TestLoginEnrolmentOnlyForAnAccountWithoutFactor(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "alpha")
	passkeys := identityv1.NewPasskeyServiceClient(s.conn)
	const (
		host  = "alpha.localhost"
		email = "ada@example.com"
	)
	admin := s.makeAdmin("alpha", "boss@example.com")
	_, err := s.users.UpdateTenantSettings(in("alpha", admin.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
		Settings: &identityv1.TenantSettings{LoginByEmailCode: true}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"login_by_email_code"}}})
	require.NoError(t, err)
	setPolicy := func(t *testing.T, p identityv1.MfaPolicy) {
		t.Helper()
		_, err := s.users.UpdateTenantSettings(in("alpha", admin.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{MfaPolicy: p}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_policy"}}})
		require.NoError(t, err)
	}

	// Ada's only factor is a passkey. Her address is verified: a login
	// code would otherwise claim the account and drop the passkey.
	session := s.signUpAndLogin("alpha", email)
	_, verify := s.mailToken(email, "Confirm")
	_, err = s.auth.VerifyEmail(in("alpha"), &identityv1.VerifyEmailRequest{Token: verify})
	require.NoError(t, err)
	key := softkey.New("http://" + host)
	registerPasskey(t, passkeys, host, session.GetAccessToken(), key)

	byPassword := func(t *testing.T) *identityv1.MfaChallenge {
		t.Helper()
		return s.challenge("alpha", mfaUser{email: email})
	}
	withPasskey := func(t *testing.T, ch *identityv1.MfaChallenge) *identityv1.FinishPasskeyMfaResponse {
		t.Helper()
		begin, err := passkeys.BeginPasskeyMfa(onHost(host), &identityv1.BeginPasskeyMfaRequest{MfaChallenge: ch.GetToken()})
		require.NoError(t, err)
		assertion, err := key.Get(optionsJSON(t, begin.GetOptions()))
		require.NoError(t, err)
		done, err := passkeys.FinishPasskeyMfa(onHost(host), &identityv1.FinishPasskeyMfaRequest{
			MfaChallenge: ch.GetToken(), CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, assertion)})
		require.NoError(t, err)
		require.NotEmpty(t, done.GetAccessToken())
		return done
	}
	codeIn := regexp.MustCompile(`\n    (\d{6})\r?\n`)
	byMailedCode := func(t *testing.T) *identityv1.MfaChallenge {
		t.Helper()
		before := len(s.smtp.Messages())
		req, err := s.auth.RequestLoginCode(in("alpha"), &identityv1.RequestLoginCodeRequest{Email: email})
		require.NoError(t, err)
		var code string
		registrytestEventually(t, "a login code mailed to "+email, func() bool {
			for _, m := range s.smtp.Messages()[before:] {
				if strings.Contains(strings.Join(m.To, ","), email) {
					if c := codeIn.FindStringSubmatch(decodeBody(t, m.Data)); c != nil {
						code = c[1]
						return true
					}
				}
			}
			return false
		})
		res, err := s.auth.LoginWithCode(in("alpha"), &identityv1.LoginWithCodeRequest{LoginCodeToken: req.GetLoginCodeToken(), Code: code})
		require.NoError(t, err)
		require.Empty(t, res.GetAccessToken(), "the mailed code does not replace the passkey")
		require.NotNil(t, res.GetMfaChallenge())
		return res.GetMfaChallenge()
	}

	for _, policy := range []identityv1.MfaPolicy{identityv1.MfaPolicy_MFA_POLICY_OPTIONAL, identityv1.MfaPolicy_MFA_POLICY_REQUIRED} {
		for _, first := range []struct {
			name      string
			challenge func(t *testing.T) *identityv1.MfaChallenge
		}{{"a password", byPassword}, {"a mailed code", byMailedCode}} {
			t.Run("under "+policy.String()+", the challenge after "+first.name+" enrols no app", func(t *testing.T) {
				setPolicy(t, policy)
				ch := first.challenge(t)
				require.False(t, ch.GetEnrollmentRequired())
				require.Equal(t, []identityv1.MfaFactor{identityv1.MfaFactor_MFA_FACTOR_PASSKEY}, ch.GetFactors())

				_, err := s.auth.BeginLoginTotpEnrollment(in("alpha"), &identityv1.BeginLoginTotpEnrollmentRequest{MfaChallenge: ch.GetToken()})
				requireCode(t, err, codes.Unauthenticated)
				require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))
				_, err = s.auth.ConfirmLoginTotpEnrollment(in("alpha"), &identityv1.ConfirmLoginTotpEnrollmentRequest{
					MfaChallenge: ch.GetToken(), TotpCode: "123456"})
				requireCode(t, err, codes.Unauthenticated)
				require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))

				apps, recoveryCodes := s.secondFactorRows("alpha", email)
				require.Zero(t, apps, "not even a pending app")
				require.Zero(t, recoveryCodes)
			})
		}
	}

	t.Run("an app the owner began on the account page is not confirmed by a login's challenge", func(t *testing.T) {
		setPolicy(t, identityv1.MfaPolicy_MFA_POLICY_REQUIRED)
		// The owner logs in with the passkey, a fresh proof, and begins
		// adding an app.
		owner := withPasskey(t, byPassword(t))
		begun, err := s.auth.BeginTotpEnrollment(in("alpha", owner.GetAccessToken()), &identityv1.BeginTotpEnrollmentRequest{})
		require.NoError(t, err)
		ch := byPassword(t)
		_, err = s.auth.ConfirmLoginTotpEnrollment(in("alpha"), &identityv1.ConfirmLoginTotpEnrollmentRequest{
			MfaChallenge: ch.GetToken(), TotpCode: oathtool(t, begun.GetSecret(), clock.Now())})
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))
		st, err := s.auth.GetMfaStatus(in("alpha", owner.GetAccessToken()), &identityv1.GetMfaStatusRequest{})
		require.NoError(t, err)
		require.False(t, st.GetTotpEnrolled())
		_, recoveryCodes := s.secondFactorRows("alpha", email)
		require.Zero(t, recoveryCodes)
		require.NotContains(t, s.auditEvents("alpha", email), "mfa.totp_enrolled")

		t.Run("and the refusals left the challenge to the passkey", func(t *testing.T) {
			withPasskey(t, ch)
		})
	})

	t.Run("an account without a factor under a policy that requires one still enrols at login", func(t *testing.T) {
		setPolicy(t, identityv1.MfaPolicy_MFA_POLICY_REQUIRED)
		_, err := s.auth.SignUp(in("alpha"), &identityv1.SignUpRequest{Email: "new@example.com", Password: goodPassword})
		require.NoError(t, err)
		ch := s.challenge("alpha", mfaUser{email: "new@example.com"})
		require.True(t, ch.GetEnrollmentRequired())
		begun, err := s.auth.BeginLoginTotpEnrollment(in("alpha"), &identityv1.BeginLoginTotpEnrollmentRequest{MfaChallenge: ch.GetToken()})
		require.NoError(t, err)

		t.Run("unless the policy was relaxed since the challenge: the next login needs no factor", func(t *testing.T) {
			setPolicy(t, identityv1.MfaPolicy_MFA_POLICY_OPTIONAL)
			_, err := s.auth.ConfirmLoginTotpEnrollment(in("alpha"), &identityv1.ConfirmLoginTotpEnrollmentRequest{
				MfaChallenge: ch.GetToken(), TotpCode: oathtool(t, begun.GetSecret(), clock.Now())})
			require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))
			setPolicy(t, identityv1.MfaPolicy_MFA_POLICY_REQUIRED)
		})

		done, err := s.auth.ConfirmLoginTotpEnrollment(in("alpha"), &identityv1.ConfirmLoginTotpEnrollmentRequest{
			MfaChallenge: ch.GetToken(), TotpCode: oathtool(t, begun.GetSecret(), clock.Now())})
		require.NoError(t, err)
		require.Len(t, done.GetRecoveryCodes(), 10)
		require.NotEmpty(t, done.GetAccessToken())
	})
}

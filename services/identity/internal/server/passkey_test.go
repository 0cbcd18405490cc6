package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
	"tenantry.dev/identity/internal/softkey"
)

// onHost is a call to the tenant of host, named by its host as the REST
// gateway names it: passkeys are bound to it.
func onHost(host string, bearer ...string) context.Context {
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-tenant-host", host)
	if len(bearer) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer[0])
	}
	return ctx
}

func optionsJSON(t *testing.T, s *structpb.Struct) []byte {
	t.Helper()
	raw, err := protojson.Marshal(s)
	require.NoError(t, err)
	return raw
}

func credentialStruct(t *testing.T, raw []byte) *structpb.Struct {
	t.Helper()
	var out structpb.Struct
	require.NoError(t, protojson.Unmarshal(raw, &out))
	return &out
}

// registerPasskey adds a passkey made by key to the account of token.
func registerPasskey(t *testing.T, passkeys identityv1.PasskeyServiceClient, host, token string, key *softkey.Authenticator) *identityv1.Passkey {
	t.Helper()
	begin, err := passkeys.BeginPasskeyRegistration(onHost(host, token), &identityv1.BeginPasskeyRegistrationRequest{})
	require.NoError(t, err)
	cred, _, err := key.Create(optionsJSON(t, begin.GetOptions()))
	require.NoError(t, err)
	fin, err := passkeys.FinishPasskeyRegistration(onHost(host, token), &identityv1.FinishPasskeyRegistrationRequest{
		CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, cred), DisplayName: "Test key"})
	require.NoError(t, err)
	return fin.GetPasskey()
}

// TestPasskeysOverTheAPI registers a passkey made by a software
// authenticator through gRPC, then uses it without a password and as the
// second factor, and checks what must be refused: a replayed or expired
// ceremony, another tenant's ceremony or assertion, a call without a host.
func TestPasskeysOverTheAPI(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "alpha", "beta")
	passkeys := identityv1.NewPasskeyServiceClient(s.conn)
	const (
		alpha = "alpha.localhost"
		beta  = "beta.localhost"
		email = "ada@example.com"
	)
	for _, tenant := range []string{"alpha", "beta"} {
		_, err := s.auth.SignUp(in(tenant), &identityv1.SignUpRequest{Email: email, Password: goodPassword})
		require.NoError(t, err)
	}
	login := func(t *testing.T, tenant string) *identityv1.LoginResponse {
		t.Helper()
		res, err := s.auth.Login(in(tenant), &identityv1.LoginRequest{Email: email, Password: goodPassword})
		require.NoError(t, err)
		return res
	}
	key := softkey.New("http://" + alpha)
	first := login(t, "alpha")
	require.Nil(t, first.GetMfaChallenge())

	var pk *identityv1.Passkey
	t.Run("a fresh login registers a passkey; the owner is mailed", func(t *testing.T) {
		pk = registerPasskey(t, passkeys, alpha, first.GetAccessToken(), key)
		require.Equal(t, "Test key", pk.GetDisplayName())
		require.Equal(t, alpha, pk.GetRpId())
		s.mailTo(email, "A passkey was added")
		list, err := passkeys.ListPasskeys(onHost(alpha, first.GetAccessToken()), &identityv1.ListPasskeysRequest{})
		require.NoError(t, err)
		require.Len(t, list.GetPasskeys(), 1)
	})

	t.Run("the passkey logs in without a password", func(t *testing.T) {
		begin, err := passkeys.BeginPasskeyLogin(onHost(alpha), &identityv1.BeginPasskeyLoginRequest{})
		require.NoError(t, err)
		var opts map[string]any
		require.NoError(t, json.Unmarshal(optionsJSON(t, begin.GetOptions()), &opts))
		require.Equal(t, alpha, opts["rpId"])
		require.Nil(t, opts["allowCredentials"], "a login without a password names no user")
		assertion, err := key.Get(optionsJSON(t, begin.GetOptions()))
		require.NoError(t, err)
		res, err := passkeys.FinishPasskeyLogin(onHost(alpha), &identityv1.FinishPasskeyLoginRequest{
			CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, assertion)})
		require.NoError(t, err)
		require.Equal(t, email, res.GetUser().GetEmail())
		me, err := s.auth.GetCurrentUser(in("alpha", res.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.Equal(t, res.GetUser().GetId(), me.GetUser().GetId())

		t.Run("its ceremony works once", func(t *testing.T) {
			again, err := key.Get(optionsJSON(t, begin.GetOptions()))
			require.NoError(t, err)
			_, err = passkeys.FinishPasskeyLogin(onHost(alpha), &identityv1.FinishPasskeyLoginRequest{
				CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, again)})
			requireCode(t, err, codes.Unauthenticated)
			require.Equal(t, "PASSKEY_CEREMONY_INVALID", reasonOf(err))
		})
	})

	t.Run("a password login now waits for the passkey, the second factor", func(t *testing.T) {
		res := login(t, "alpha")
		ch := res.GetMfaChallenge()
		require.NotNil(t, ch)
		require.Equal(t, []identityv1.MfaFactor{identityv1.MfaFactor_MFA_FACTOR_PASSKEY}, ch.GetFactors())
		_, err := s.auth.VerifyMfa(in("alpha"), &identityv1.VerifyMfaRequest{MfaChallenge: ch.GetToken(), TotpCode: "123456"})
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "MFA_CODE_INVALID", reasonOf(err), "no code proves a passkey")
		begin, err := passkeys.BeginPasskeyMfa(onHost(alpha), &identityv1.BeginPasskeyMfaRequest{MfaChallenge: ch.GetToken()})
		require.NoError(t, err)
		assertion, err := key.Get(optionsJSON(t, begin.GetOptions()))
		require.NoError(t, err)
		done, err := passkeys.FinishPasskeyMfa(onHost(alpha), &identityv1.FinishPasskeyMfaRequest{
			MfaChallenge: ch.GetToken(), CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, assertion)})
		require.NoError(t, err)
		require.NotEmpty(t, done.GetAccessToken())

		t.Run("the challenge is used up with it", func(t *testing.T) {
			_, err := passkeys.BeginPasskeyMfa(onHost(alpha), &identityv1.BeginPasskeyMfaRequest{MfaChallenge: ch.GetToken()})
			require.Equal(t, "MFA_CHALLENGE_INVALID", reasonOf(err))
		})
	})

	t.Run("a refused answer uses its ceremony up", func(t *testing.T) {
		begin, err := passkeys.BeginPasskeyLogin(onHost(alpha), &identityv1.BeginPasskeyLoginRequest{})
		require.NoError(t, err)
		var opts struct {
			Challenge string `json:"challenge"`
		}
		require.NoError(t, json.Unmarshal(optionsJSON(t, begin.GetOptions()), &opts))
		wrong, err := key.Assert(key.Credentials()[0], beta, opts.Challenge)
		require.NoError(t, err)
		_, err = passkeys.FinishPasskeyLogin(onHost(alpha), &identityv1.FinishPasskeyLoginRequest{
			CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, wrong)})
		require.Equal(t, "PASSKEY_INVALID", reasonOf(err))
		right, err := key.Get(optionsJSON(t, begin.GetOptions()))
		require.NoError(t, err)
		_, err = passkeys.FinishPasskeyLogin(onHost(alpha), &identityv1.FinishPasskeyLoginRequest{
			CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, right)})
		require.Equal(t, "PASSKEY_CEREMONY_INVALID", reasonOf(err))
	})

	t.Run("an expired ceremony is refused", func(t *testing.T) {
		begin, err := passkeys.BeginPasskeyLogin(onHost(alpha), &identityv1.BeginPasskeyLoginRequest{})
		require.NoError(t, err)
		assertion, err := key.Get(optionsJSON(t, begin.GetOptions()))
		require.NoError(t, err)
		clock.Advance(6 * time.Minute)
		_, err = passkeys.FinishPasskeyLogin(onHost(alpha), &identityv1.FinishPasskeyLoginRequest{
			CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, assertion)})
		requireCode(t, err, codes.Unauthenticated)
		require.Equal(t, "PASSKEY_CEREMONY_INVALID", reasonOf(err))
	})

	t.Run("another tenant's host", func(t *testing.T) {
		t.Run("offers nothing the passkey can answer", func(t *testing.T) {
			begin, err := passkeys.BeginPasskeyLogin(onHost(beta), &identityv1.BeginPasskeyLoginRequest{})
			require.NoError(t, err)
			_, err = key.Get(optionsJSON(t, begin.GetOptions()))
			require.ErrorIs(t, err, softkey.ErrNoCredential)

			t.Run("and refuses an assertion made for the first tenant's host", func(t *testing.T) {
				var opts struct {
					Challenge string `json:"challenge"`
				}
				require.NoError(t, json.Unmarshal(optionsJSON(t, begin.GetOptions()), &opts))
				forAlpha, err := key.Assert(key.Credentials()[0], alpha, opts.Challenge)
				require.NoError(t, err)
				_, err = passkeys.FinishPasskeyLogin(onHost(beta), &identityv1.FinishPasskeyLoginRequest{
					CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, forAlpha)})
				requireCode(t, err, codes.Unauthenticated)
				require.Equal(t, "PASSKEY_INVALID", reasonOf(err))
			})
		})
		t.Run("does not know the first tenant's ceremonies", func(t *testing.T) {
			begin, err := passkeys.BeginPasskeyLogin(onHost(alpha), &identityv1.BeginPasskeyLoginRequest{})
			require.NoError(t, err)
			assertion, err := key.Get(optionsJSON(t, begin.GetOptions()))
			require.NoError(t, err)
			_, err = passkeys.FinishPasskeyLogin(onHost(beta), &identityv1.FinishPasskeyLoginRequest{
				CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, assertion)})
			require.Equal(t, "PASSKEY_CEREMONY_INVALID", reasonOf(err))
			_, err = passkeys.FinishPasskeyLogin(onHost(alpha), &identityv1.FinishPasskeyLoginRequest{
				CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, assertion)})
			require.NoError(t, err, "the other tenant could not even use up this tenant's ceremony")
		})
		t.Run("lets the same address's account there log in with its password alone", func(t *testing.T) {
			require.Nil(t, login(t, "beta").GetMfaChallenge())
		})
	})

	t.Run("a call naming its tenant by slug only has no host for a passkey", func(t *testing.T) {
		_, err := passkeys.BeginPasskeyLogin(in("alpha"), &identityv1.BeginPasskeyLoginRequest{})
		requireCode(t, err, codes.FailedPrecondition)
		require.Equal(t, "PASSKEY_HOST_REQUIRED", reasonOf(err))
	})

	t.Run("managing passkeys", func(t *testing.T) {
		token := first.GetAccessToken() // its login is long past
		_, err := passkeys.BeginPasskeyRegistration(onHost(alpha, token), &identityv1.BeginPasskeyRegistrationRequest{})
		requireCode(t, err, codes.PermissionDenied)
		require.Equal(t, "REAUTHENTICATION_REQUIRED", reasonOf(err))
		_, err = passkeys.DeletePasskey(onHost(alpha, token), &identityv1.DeletePasskeyRequest{Id: pk.GetId()})
		require.Equal(t, "REAUTHENTICATION_REQUIRED", reasonOf(err))

		renamed, err := passkeys.RenamePasskey(onHost(alpha, token), &identityv1.RenamePasskeyRequest{Id: pk.GetId(), DisplayName: "Laptop"})
		require.NoError(t, err)
		require.Equal(t, "Laptop", renamed.GetPasskey().GetDisplayName())

		begin, err := passkeys.BeginPasskeyReauthentication(onHost(alpha, token), &identityv1.BeginPasskeyReauthenticationRequest{})
		require.NoError(t, err)
		assertion, err := key.Get(optionsJSON(t, begin.GetOptions()))
		require.NoError(t, err)
		_, err = passkeys.FinishPasskeyReauthentication(onHost(alpha, token), &identityv1.FinishPasskeyReauthenticationRequest{
			CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, assertion)})
		require.NoError(t, err)

		_, err = passkeys.DeletePasskey(onHost(alpha, token), &identityv1.DeletePasskeyRequest{Id: pk.GetId()})
		require.NoError(t, err)
		s.mailTo(email, "A passkey was removed")
		require.Nil(t, login(t, "alpha").GetMfaChallenge(), "without its passkey the account has no second factor")
	})
	t.Run("an admin's reset of the user's factors removes their passkeys", func(t *testing.T) {
		res := login(t, "alpha")
		require.Nil(t, res.GetMfaChallenge())
		registerPasskey(t, passkeys, alpha, res.GetAccessToken(), softkey.New("http://"+alpha))
		admin := s.makeAdmin("alpha", "boss@alpha.example")
		name := "users/" + res.GetUser().GetId()
		u, err := s.users.GetUser(in("alpha", admin.GetAccessToken()), &identityv1.GetUserRequest{Name: name})
		require.NoError(t, err)
		require.True(t, u.GetUser().GetMfaEnabled(), "a passkey is a second factor")
		_, err = s.users.ResetUserMfa(in("alpha", admin.GetAccessToken()), &identityv1.ResetUserMfaRequest{Name: name})
		require.NoError(t, err)
		require.Nil(t, login(t, "alpha").GetMfaChallenge())
		list, err := passkeys.ListPasskeys(onHost(alpha, res.GetAccessToken()), &identityv1.ListPasskeysRequest{})
		require.NoError(t, err)
		require.Empty(t, list.GetPasskeys())
	})
}

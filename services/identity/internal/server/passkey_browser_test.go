package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// passkeyJS are the calls a page makes for passkeys, over REST from the
// tenant's own origin: the server's options go to navigator.credentials as
// they are (PublicKeyCredential.parse*OptionsFromJSON), and the browser's
// credential goes back as PublicKeyCredential.toJSON() makes it.
const passkeyJS = `
window.pkPost = async (path, body, token) => {
  const headers = {'Content-Type': 'application/json'};
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const r = await fetch(path, {method: 'POST', headers, body: JSON.stringify(body || {})});
  const j = await r.json();
  if (!r.ok) throw new Error('HTTP ' + r.status + ' ' + JSON.stringify(j));
  return j;
};
window.pkRegister = async (token) => {
  const b = await pkPost('/v1/auth/passkeys:beginRegistration', {}, token);
  const cred = await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(b.options)});
  const f = await pkPost('/v1/auth/passkeys:finishRegistration', {ceremonyToken: b.ceremonyToken, credential: cred.toJSON(), displayName: 'Virtual'}, token);
  return f.passkey.rpId;
};
window.pkGet = async (options) => {
  options.timeout = 2000; // a host with no passkey for it fails fast
  const cred = await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
  return cred.toJSON();
};
window.pkLogin = async () => {
  const b = await pkPost('/v1/auth:beginPasskeyLogin', {});
  const f = await pkPost('/v1/auth:finishPasskeyLogin', {ceremonyToken: b.ceremonyToken, credential: await pkGet(b.options)});
  return f.user.email;
};
window.pkMfa = async (challenge) => {
  const b = await pkPost('/v1/auth:beginPasskeyMfa', {mfaChallenge: challenge});
  const f = await pkPost('/v1/auth:finishPasskeyMfa', {mfaChallenge: challenge, ceremonyToken: b.ceremonyToken, credential: await pkGet(b.options)});
  return f.user.email;
};
window.pkError = async (p) => { try { await p; return ''; } catch (e) { return e.name + ': ' + e.message; } };
`

// TestPasskeysInABrowser registers a passkey through headless Chromium's
// virtual authenticator (the DevTools WebAuthn domain: CTAP2, internal
// transport, resident keys, user verification) over REST, uses it as the
// second factor and without a password, and shows it useless on another
// tenant's host: the browser has nothing to offer there, and an assertion
// made on the first host is refused by the second.
func TestPasskeysInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := startSystem(t, "alpha", "beta")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	alpha, beta := "http://alpha.localhost:"+port, "http://beta.localhost:"+port
	const email = "ada@example.com"
	for _, tenant := range []string{"alpha", "beta"} {
		_, err := s.auth.SignUp(in(tenant), &identityv1.SignUpRequest{Email: email, Password: goodPassword})
		require.NoError(t, err)
	}

	_, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{})
	require.NoError(t, err)
	auth, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	})
	require.NoError(t, err)
	open := func(t *testing.T, origin string) {
		b.run(t, "open "+origin, chromedp.Navigate(origin+"/login"))
		_ = eval[bool](t, b, passkeyJS+"; true")
	}

	t.Run("a fresh login registers a passkey made by the browser", func(t *testing.T) {
		login, err := s.auth.Login(in("alpha"), &identityv1.LoginRequest{Email: email, Password: goodPassword})
		require.NoError(t, err)
		open(t, alpha)
		require.Equal(t, "alpha.localhost", eval[string](t, b, fmt.Sprintf("pkRegister(%q)", login.GetAccessToken())))
		creds, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth.AuthenticatorID})
		require.NoError(t, err)
		require.Len(t, creds.Credentials, 1)
		require.Equal(t, "alpha.localhost", creds.Credentials[0].RpID)
		require.True(t, creds.Credentials[0].IsResidentCredential)
		s.mailTo(email, "A passkey was added")
	})

	t.Run("the passkey logs in without a password", func(t *testing.T) {
		require.Equal(t, email, eval[string](t, b, "pkLogin()"))
	})

	t.Run("a password login is completed with the passkey", func(t *testing.T) {
		res, err := s.auth.Login(in("alpha"), &identityv1.LoginRequest{Email: email, Password: goodPassword})
		require.NoError(t, err)
		require.NotNil(t, res.GetMfaChallenge())
		require.Equal(t, email, eval[string](t, b, fmt.Sprintf("pkMfa(%q)", res.GetMfaChallenge().GetToken())))
	})

	t.Run("on the other tenant's host", func(t *testing.T) {
		t.Run("the browser has no passkey to offer", func(t *testing.T) {
			open(t, beta)
			require.Contains(t, eval[string](t, b, "pkError(pkLogin())"), "NotAllowedError")
		})
		t.Run("the page cannot ask for the first host's passkey", func(t *testing.T) {
			got := eval[string](t, b, `pkError(pkGet({challenge: 'AAAAAAAAAAAAAAAAAAAAAA', rpId: 'alpha.localhost', userVerification: 'required'}))`)
			require.Contains(t, got, "SecurityError")
		})
		t.Run("an assertion made on the first host is refused", func(t *testing.T) {
			begin, err := identityv1.NewPasskeyServiceClient(s.conn).BeginPasskeyLogin(onHost("beta.localhost"), &identityv1.BeginPasskeyLoginRequest{})
			require.NoError(t, err)
			var opts map[string]any
			require.NoError(t, json.Unmarshal(optionsJSON(t, begin.GetOptions()), &opts))
			opts["rpId"] = "alpha.localhost"
			forBeta, err := json.Marshal(opts)
			require.NoError(t, err)
			open(t, alpha)
			assertion := eval[map[string]any](t, b, fmt.Sprintf("pkGet(%s)", forBeta))
			raw, err := json.Marshal(assertion)
			require.NoError(t, err)
			_, err = identityv1.NewPasskeyServiceClient(s.conn).FinishPasskeyLogin(onHost("beta.localhost"), &identityv1.FinishPasskeyLoginRequest{
				CeremonyToken: begin.GetCeremonyToken(), Credential: credentialStruct(t, raw)})
			requireCode(t, err, codes.Unauthenticated)
			require.Equal(t, "PASSKEY_INVALID", reasonOf(err))
		})
	})
}

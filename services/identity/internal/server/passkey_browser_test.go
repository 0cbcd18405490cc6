package server_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
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
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "alpha", "beta")
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
	// The pages, with a fresh authenticator and another user: the account
	// page adds a passkey, the login page logs in with it alone and as the
	// second factor, and removing it after ten minutes asks for it again.
	t.Run("the pages", func(t *testing.T) {
		_, err := chromedp.Call(b.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: auth.AuthenticatorID})
		require.NoError(t, err)
		_, err = chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			},
		})
		require.NoError(t, err)
		const bob = "bob@example.com"
		_, err = s.auth.SignUp(in("alpha"), &identityv1.SignUpRequest{Email: bob, Password: goodPassword})
		require.NoError(t, err)
		logOut := func(t *testing.T) {
			b.run(t, "log out", chromedp.Click(chromedp.CSS("#logout")))
			b.waitFor(t, "the logged-out page", visible("#logged-out"))
		}

		t.Run("the account page adds a passkey", func(t *testing.T) {
			b.run(t, "log in with the password",
				chromedp.Navigate(alpha+"/login"),
				chromedp.SendKeys(chromedp.CSS("#email"), bob),
				chromedp.SendKeys(chromedp.CSS("#password"), goodPassword),
				chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
			b.waitFor(t, "the account page", `location.pathname === '/account'`)
			b.waitFor(t, "the passkeys section", visible("#passkeys-section"))
			b.run(t, "add a passkey",
				chromedp.SendKeys(chromedp.CSS("#passkey-name"), "This laptop"),
				chromedp.Click(chromedp.CSS("#passkey-add-button")))
			b.waitFor(t, "the passkey listed", contains("#passkeys", "This laptop"))
			require.Contains(t, b.text(t, "#message"), "Your passkey is added")
			s.mailTo(bob, "A passkey was added")
		})

		t.Run("the login page logs in with the passkey alone", func(t *testing.T) {
			logOut(t)
			b.run(t, "open the login page", chromedp.Navigate(alpha+"/login"))
			b.waitFor(t, "the passkey button", visible("#passkey-login"))
			b.run(t, "log in with the passkey", chromedp.Click(chromedp.CSS("#passkey-login-button")))
			b.waitFor(t, "the account page", `location.pathname === '/account'`)
			b.waitFor(t, "the logged-in account", visible("#logged-in"))
			require.Equal(t, bob, b.text(t, "#me-email"))
		})

		t.Run("a password login asks for the passkey, the only second factor", func(t *testing.T) {
			logOut(t)
			b.run(t, "log in with the password",
				chromedp.Navigate(alpha+"/login"),
				chromedp.SendKeys(chromedp.CSS("#email"), bob),
				chromedp.SendKeys(chromedp.CSS("#password"), goodPassword),
				chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
			b.waitFor(t, "the passkey step", visible("#passkey-mfa"))
			require.False(t, eval[bool](t, b, `!document.querySelector('#mfa-form').hidden`), "no code to type without an app")
			b.run(t, "use the passkey", chromedp.Click(chromedp.CSS("#passkey-mfa-button")))
			b.waitFor(t, "the account page", `location.pathname === '/account'`)
			b.waitFor(t, "the logged-in account", visible("#logged-in"))
		})

		t.Run("an app's authorization request logs in with the passkey; the ID token says hwk, mfa", func(t *testing.T) {
			logOut(t)
			admin := s.makeAdmin("alpha", "admin@alpha.example")
			web := webAppClient("Alpha Web")
			web.FirstParty = true
			created, err := identityv1.NewOAuthClientServiceClient(s.conn).CreateOAuthClient(in("alpha", admin.GetAccessToken()),
				&identityv1.CreateOAuthClientRequest{OauthClient: web})
			require.NoError(t, err)
			const callback = "http://localhost:3000/callback"
			rp := s.relyingParty("alpha", created.GetOauthClient().GetClientId(), created.GetClientSecret(), callback, oidc.ScopeOpenID, "email")
			var trail navigations
			trail.listen(t, b)
			verifier := oauth2.GenerateVerifier()
			b.run(t, "open the authorization request",
				chromedp.Navigate(rp.config.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(verifier), oidc.Nonce(rand.Text()))))
			b.waitFor(t, "the login page's passkey button", visible("#passkey-login"))
			mark := trail.mark()
			b.run(t, "log in with the passkey", chromedp.Click(chromedp.CSS("#passkey-login-button")))
			var code string
			require.Eventually(t, func() bool {
				for _, u := range trail.since(mark) {
					if u.Scheme+"://"+u.Host+u.Path == callback {
						code = u.Query().Get("code")
						return true
					}
				}
				return false
			}, browserStep, 50*time.Millisecond, "the browser never reached the app's callback")
			tok, err := rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
			require.NoError(t, err)
			raw, _ := tok.Extra("id_token").(string)
			idToken, err := rp.verifier.Verify(rp.ctx, raw)
			require.NoError(t, err)
			var claims struct {
				AMR []string `json:"amr"`
			}
			require.NoError(t, idToken.Claims(&claims))
			require.Equal(t, []string{"hwk", "mfa"}, claims.AMR)
		})

		t.Run("ten minutes later, removing it asks for the passkey again", func(t *testing.T) {
			clock.Advance(11 * time.Minute)
			b.run(t, "reload the account page", chromedp.Navigate(alpha+"/account"))
			b.waitFor(t, "the passkey listed", contains("#passkeys", "This laptop"))
			b.run(t, "remove it", chromedp.Click(chromedp.CSS("#passkeys li button[aria-label^='Remove']")))
			b.waitFor(t, "the removal", contains("#message", "The passkey is removed"))
			// The message comes before the list is loaded again.
			b.waitFor(t, "no passkey listed", `document.querySelectorAll('#passkeys li').length === 0`)
			s.mailTo(bob, "A passkey was removed")
		})
	})
}

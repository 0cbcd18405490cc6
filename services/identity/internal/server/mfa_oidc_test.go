package server_test

import (
	"crypto/rand"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
)

// TestOpenIDProviderAsksForTheSecondFactor: an app's authorization request
// logs a user with an authenticator app in through the login page's two
// steps, and the ID tokens (the first and the refreshed) say so in amr;
// a password-only user's say pwd.
func TestOpenIDProviderAsksForTheSecondFactor(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "alpha")
	admin := s.makeAdmin("alpha", "admin@alpha.example")
	web := webAppClient("Alpha Web")
	web.FirstParty = true
	created, err := identityv1.NewOAuthClientServiceClient(s.conn).CreateOAuthClient(in("alpha", admin.GetAccessToken()),
		&identityv1.CreateOAuthClientRequest{OauthClient: web})
	require.NoError(t, err)
	const callback = "http://localhost:3000/callback"
	rp := s.relyingParty("alpha", created.GetOauthClient().GetClientId(), created.GetClientSecret(), callback,
		oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess)
	ann := s.enrolTOTP(clock, "alpha", "ann@alpha.example")
	s.signUpAndLogin("alpha", "bob@alpha.example")

	// login runs an authorization request through the login page, with
	// a code when the page asks for one, and returns the ID token's amr
	// and the tokens.
	login := func(t *testing.T, email string, code func() string) ([]string, *oauth2.Token) {
		t.Helper()
		b := s.newBrowser()
		verifier, state := oauth2.GenerateVerifier(), rand.Text()
		resp, body := b.get(rp.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(rand.Text())))
		require.Equal(t, "/login", resp.Request.URL.Path, body)
		next := resp.Request.URL.Query().Get("next")
		resp, body = b.post(s.issuer("alpha")+"/login", url.Values{"email": {email}, "password": {goodPassword}, "next": {next}})
		if code != nil {
			require.Equal(t, 200, resp.StatusCode, "the page asks for the code: %s", body)
			m := regexp.MustCompile(`name="mfa_challenge" value="([^"]+)"`).FindStringSubmatch(body)
			require.NotNil(t, m, body)
			resp, body = b.post(s.issuer("alpha")+"/login", url.Values{"mfa_challenge": {m[1]}, "code": {code()}, "next": {next}})
		}
		to := redirectedTo(t, resp, body)
		require.Equal(t, callback, to.Scheme+"://"+to.Host+to.Path)
		tok, err := rp.config.Exchange(rp.ctx, to.Query().Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		return rp.amrOf(t, tok), tok
	}

	t.Run("a user with an app gives its code on the login page, and the ID token says pwd, otp, mfa", func(t *testing.T) {
		clock.Advance(30 * time.Second)
		amr, tok := login(t, ann.email, func() string { return oathtool(t, ann.secret, clock.Now()) })
		require.Equal(t, []string{"pwd", "otp", "mfa"}, amr)

		refreshed, err := rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.NoError(t, err)
		require.Equal(t, []string{"pwd", "otp", "mfa"}, rp.amrOf(t, refreshed), "a refreshed ID token keeps how the user authenticated")
	})

	t.Run("a password-only user's ID token says pwd", func(t *testing.T) {
		amr, _ := login(t, "bob@alpha.example", nil)
		require.Equal(t, []string{"pwd"}, amr)
	})
}

// firstPartyApp registers a first-party web app in tenant (as the
// operator, who needs no recent proof) and returns it as its relying
// party, for tests to read the amr of a browser's session in the ID
// tokens it gets.
func (s *system) firstPartyApp(tenant string) *relyingParty {
	s.t.Helper()
	web := webAppClient("First-party app")
	web.FirstParty = true
	created, err := identityv1.NewOAuthClientServiceClient(s.conn).CreateOAuthClient(asOperator(tenant),
		&identityv1.CreateOAuthClientRequest{OauthClient: web})
	require.NoError(s.t, err)
	return s.relyingParty(tenant, created.GetOauthClient().GetClientId(), created.GetClientSecret(),
		"http://localhost:3000/callback", oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
}

// idTokenAMR runs an authorization request in browser b, logged in to
// the app's tenant already, and returns the amr of the ID token the code
// is exchanged for, and of the one a refresh gets.
func (rp *relyingParty) idTokenAMR(t *testing.T, b *httpBrowser) []string {
	t.Helper()
	q, verifier, _ := rp.authorize(b)
	require.Empty(t, q.Get("error"), q.Get("error_description"))
	tok, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	amr := rp.amrOf(t, tok)
	refreshed, err := rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	require.NoError(t, err)
	require.Equal(t, amr, rp.amrOf(t, refreshed), "a refreshed ID token keeps how the user authenticated")
	return amr
}

// amrOf is the amr claim of tok's ID token, verified.
func (rp *relyingParty) amrOf(t *testing.T, tok *oauth2.Token) []string {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := rp.verifier.Verify(rp.ctx, raw)
	require.NoError(t, err)
	var claims struct {
		AMR []string `json:"amr"`
	}
	require.NoError(t, idToken.Claims(&claims))
	return claims.AMR
}

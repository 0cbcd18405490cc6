package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// httpBrowser is a cookie-keeping HTTP client that reaches every
// {tenant}.localhost host on identity's HTTP port, as a browser on the
// machine does (browsers resolve *.localhost to loopback; Go does not). It
// follows redirects within tenant hosts and stops at any other host (an
// app's redirect URI), returning that response.
type httpBrowser struct {
	t      *testing.T
	client *http.Client
}

// localhostClient dials identity for any host, keeping the Host header.
func (s *system) localhostClient(jar http.CookieJar) *http.Client {
	addr := s.identity.HTTPAddr().String()
	dialer := &net.Dialer{}
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}},
	}
}

func (s *system) newBrowser() *httpBrowser {
	jar, err := cookiejar.New(nil)
	require.NoError(s.t, err)
	c := s.localhostClient(jar)
	c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if !strings.HasSuffix(req.URL.Hostname(), ".localhost") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &httpBrowser{t: s.t, client: c}
}

// issuer is a tenant's issuer URL as identity serves it in the test.
func (s *system) issuer(tenant string) string {
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	return "http://" + tenant + ".localhost:" + port
}

func (b *httpBrowser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(u)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *httpBrowser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// redirectedTo returns where a response that left identity was sent.
func redirectedTo(t *testing.T, resp *http.Response, body string) *url.URL {
	t.Helper()
	require.Contains(t, []int{http.StatusFound, http.StatusSeeOther}, resp.StatusCode, "not a redirect: %s", body)
	u, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return u
}

func decodeSegment(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	require.NoError(t, err)
	return string(b)
}

// relyingParty is an app configured with go-oidc and x/oauth2 for one
// tenant, as its developers would write it: nothing Tenantry-specific.
type relyingParty struct {
	t        *testing.T
	ctx      context.Context
	provider *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (s *system) relyingParty(tenant, clientID, secret, redirectURI string, scopes ...string) *relyingParty {
	s.t.Helper()
	ctx := oidc.ClientContext(context.Background(), s.localhostClient(nil))
	provider, err := oidc.NewProvider(ctx, s.issuer(tenant))
	require.NoError(s.t, err, "discovery of %s", tenant)
	return &relyingParty{
		t: s.t, ctx: ctx, provider: provider,
		config: oauth2.Config{
			ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(),
			RedirectURL: redirectURI, Scopes: scopes,
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

// authorize runs the httpBrowser from the app's authorization URL to its
// redirect URI and returns that URL's query, the PKCE verifier and the
// nonce.
func (rp *relyingParty) authorize(b *httpBrowser, opts ...oauth2.AuthCodeOption) (url.Values, string, string) {
	rp.t.Helper()
	verifier, nonce, state := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	opts = append(opts, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	resp, body := b.get(rp.config.AuthCodeURL(state, opts...))
	require.NotEqual(rp.t, "/login", resp.Request.URL.Path, "the provider asked for a login: %s", resp.Request.URL)
	to := redirectedTo(rp.t, resp, body)
	require.Equal(rp.t, rp.config.RedirectURL, to.Scheme+"://"+to.Host+to.Path)
	q := to.Query()
	if q.Get("error") == "" {
		require.Equal(rp.t, state, q.Get("state"))
	}
	return q, verifier, nonce
}

func TestOpenIDProviderWithGoOIDC(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha", "beta")
	clients := identityv1.NewOAuthClientServiceClient(s.conn)
	adminA := s.makeAdmin("alpha", "admin@alpha.example")
	adminB := s.makeAdmin("beta", "admin@beta.example")
	s.signUpAndLogin("alpha", "ann@alpha.example")

	register := func(tenant, token string, c *identityv1.OAuthClient) (string, string) {
		resp, err := clients.CreateOAuthClient(in(tenant, token), &identityv1.CreateOAuthClientRequest{OauthClient: c})
		require.NoError(t, err)
		return resp.GetOauthClient().GetClientId(), resp.GetClientSecret()
	}
	web := webAppClient("Alpha Web")
	web.FirstParty = true
	web.IdTokenSignedResponseAlg = identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA
	webID, webSecret := register("alpha", adminA.GetAccessToken(), web)
	const callback = "http://localhost:3000/callback"

	rp := s.relyingParty("alpha", webID, webSecret, callback, oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess)
	b := s.newBrowser()
	t.Run("discovery names the tenant's own issuer and endpoints", func(t *testing.T) {
		var claims struct {
			Issuer   string   `json:"issuer"`
			Algs     []string `json:"id_token_signing_alg_values_supported"`
			Grants   []string `json:"grant_types_supported"`
			PKCE     []string `json:"code_challenge_methods_supported"`
			Userinfo string   `json:"userinfo_endpoint"`
		}
		require.NoError(t, rp.provider.Claims(&claims))
		require.Equal(t, s.issuer("alpha"), claims.Issuer)
		require.Equal(t, []string{"S256"}, claims.PKCE)
		require.ElementsMatch(t, []string{"authorization_code", "refresh_token", "client_credentials"}, claims.Grants)
		require.Equal(t, s.issuer("alpha")+"/oauth/userinfo", claims.Userinfo)
	})

	t.Run("discovery and the JWKS, answered from memory after the first GET, are the same documents with CORS", func(t *testing.T) {
		for _, path := range []string{"/.well-known/openid-configuration", "/oauth/keys"} {
			var bodies []string
			for range 3 {
				req, err := http.NewRequest(http.MethodGet, s.issuer("alpha")+path, nil)
				require.NoError(t, err)
				req.Header.Set("Origin", "https://app.example.com")
				resp, err := s.localhostClient(nil).Do(req)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, path)
				require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), path)
				require.Equal(t, "public, max-age=300", resp.Header.Get("Cache-Control"), path)
				require.True(t, json.Valid(body), path)
				bodies = append(bodies, string(body))
			}
			require.Equal(t, bodies[0], bodies[1], path)
			require.Equal(t, bodies[0], bodies[2], path)
		}
		// beta's documents are beta's, not alpha's kept ones.
		b := s.newBrowser()
		_, body := b.get(s.issuer("beta") + "/.well-known/openid-configuration")
		require.Contains(t, body, `"issuer":"`+s.issuer("beta")+`"`)
	})

	var first *oauth2.Token
	t.Run("authorization code with PKCE through the login page, verified by go-oidc", func(t *testing.T) {
		verifier, nonce, state := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
		resp, body := b.get(rp.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
		require.Equal(t, "/login", resp.Request.URL.Path, "a httpBrowser without a session is sent to the login page: %s", body)
		next := resp.Request.URL.Query().Get("next")
		require.True(t, strings.HasPrefix(next, "/oauth/login?id="), next)

		resp, body = b.post(s.issuer("alpha")+"/login", url.Values{
			"email": {"ann@alpha.example"}, "password": {goodPassword}, "next": {next},
		})
		to := redirectedTo(t, resp, body)
		require.Equal(t, callback, to.Scheme+"://"+to.Host+to.Path)
		require.Equal(t, state, to.Query().Get("state"))
		code := to.Query().Get("code")
		require.NotEmpty(t, code)

		tok, err := rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		require.NotEmpty(t, tok.RefreshToken)
		raw, _ := tok.Extra("id_token").(string)
		idToken, err := rp.verifier.Verify(rp.ctx, raw)
		require.NoError(t, err)
		require.Equal(t, nonce, idToken.Nonce)
		require.NoError(t, idToken.VerifyAccessToken(tok.AccessToken))
		var claims struct {
			TID string `json:"tid"`
			SID string `json:"sid"`
		}
		require.NoError(t, idToken.Claims(&claims))
		require.Equal(t, "alpha", claims.TID)
		require.NotEmpty(t, claims.SID)

		info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
		require.NoError(t, err)
		require.Equal(t, "ann@alpha.example", info.Email)
		require.Equal(t, idToken.Subject, info.Subject)

		_, err = rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
		require.ErrorContains(t, err, "invalid_grant", "a code is single-use")
		_, err = rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
		require.ErrorContains(t, err, "401", "a code presented twice ends the grant it opened")
		req, err := http.NewRequest(http.MethodGet, s.issuer("alpha")+"/oauth/userinfo", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err = s.localhostClient(nil).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`, "RFC 6750's challenge")
	})

	t.Run("a second authorization is silent (SSO), and refresh rotates with reuse detection", func(t *testing.T) {
		q, verifier, _ := rp.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		require.Empty(t, q.Get("error"), q.Get("error_description"))
		tok, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		first = tok

		old := &oauth2.Token{RefreshToken: tok.RefreshToken}
		refreshed, err := rp.config.TokenSource(rp.ctx, old).Token()
		require.NoError(t, err)
		require.NotEqual(t, tok.RefreshToken, refreshed.RefreshToken)
		raw, _ := refreshed.Extra("id_token").(string)
		_, err = rp.verifier.Verify(rp.ctx, raw)
		require.NoError(t, err, "a refresh gives a new ID token")

		_, err = rp.config.TokenSource(rp.ctx, old).Token()
		require.ErrorContains(t, err, "invalid_grant", "the rotated-away token is refused")
		_, err = rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token()
		require.ErrorContains(t, err, "invalid_grant", "its reuse ended the grant")
	})

	t.Run("prompt=login and max_age=0 ask for the password again; a request id is useless in another browser", func(t *testing.T) {
		for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
			resp, body := b.get(rp.config.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), opt))
			require.Equal(t, "/login", resp.Request.URL.Path, "a fresh login is asked for: %s", body)
		}

		resp, _ := b.get(rp.config.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login")))
		next := resp.Request.URL.Query().Get("next")
		require.True(t, strings.HasPrefix(next, "/oauth/login?id="), next)
		// Another browser, logged in as someone else, opens the leaked
		// request: it was started elsewhere, so nothing completes.
		s.signUpAndLogin("alpha", "mallory@alpha.example")
		other := s.newBrowser()
		resp, body := other.post(s.issuer("alpha")+"/login", url.Values{"email": {"mallory@alpha.example"}, "password": {goodPassword}, "next": {next}})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		require.Contains(t, body, "started in another browser")
		require.Empty(t, resp.Header.Get("Location"))
	})

	t.Run("PKCE is required and bound to the code", func(t *testing.T) {
		state := rand.Text()
		resp, body := b.get(rp.config.AuthCodeURL(state))
		to := redirectedTo(t, resp, body)
		require.Equal(t, "invalid_request", to.Query().Get("error"))
		require.Equal(t, state, to.Query().Get("state"))

		q, _, _ := rp.authorize(b)
		_, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
		require.ErrorContains(t, err, "invalid_grant")
		q, _, _ = rp.authorize(b)
		_, err = rp.config.Exchange(rp.ctx, q.Get("code"))
		require.ErrorContains(t, err, "invalid_grant", "no verifier")
	})

	t.Run("a redirect URI not registered exactly is refused before any redirect", func(t *testing.T) {
		for _, uri := range []string{"http://localhost:3000/callback/", "http://localhost:3000/callback?x=1", "https://evil.example/callback"} {
			bad := rp.config
			bad.RedirectURL = uri
			resp, body := b.get(bad.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", uri, body)
			require.Empty(t, resp.Header.Get("Location"))
		}
	})

	t.Run("tenant B's relying party refuses tenant A's tokens, and A's codes are no good at B", func(t *testing.T) {
		betaID, betaSecret := register("beta", adminB.GetAccessToken(), func() *identityv1.OAuthClient {
			c := webAppClient("Beta Web")
			c.IdTokenSignedResponseAlg = identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA
			return c
		}())
		rpB := s.relyingParty("beta", betaID, betaSecret, callback, oidc.ScopeOpenID)
		raw, _ := first.Extra("id_token").(string)
		_, err := rpB.verifier.Verify(rpB.ctx, raw)
		require.Error(t, err, "go-oidc for beta refuses alpha's ID token")

		t.Run("by its keys alone: a verifier with beta's keys and no issuer check refuses it", func(t *testing.T) {
			// Built from beta's discovery, so from beta's /oauth/keys; the
			// issuer and audience are left unchecked, so that only the keys
			// decide.
			keysOnly := &oidc.Config{SkipIssuerCheck: true, SkipClientIDCheck: true}
			_, err := rpB.provider.Verifier(keysOnly).Verify(rpB.ctx, raw)
			require.ErrorContains(t, err, "failed to verify signature", "beta's keys verify alpha's ID token")
			_, err = rp.provider.Verifier(keysOnly).Verify(rp.ctx, raw)
			require.NoError(t, err, "alpha's keys verify it: nothing but the keys told them apart")

			kidsAt := func(tenant, path string) []string {
				resp, err := s.localhostClient(nil).Get(s.issuer(tenant) + path)
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				var doc struct{ Keys []struct{ Kid string } }
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
				var kids []string
				for _, k := range doc.Keys {
					kids = append(kids, k.Kid)
				}
				require.NotEmpty(t, kids, "%s%s", tenant, path)
				return kids
			}
			for _, path := range []string{"/oauth/keys", "/.well-known/jwks.json"} {
				alphaKids, betaKids := kidsAt("alpha", path), kidsAt("beta", path)
				for _, kid := range alphaKids {
					require.NotContains(t, betaKids, kid, "beta's %s lists one of alpha's keys", path)
				}
			}
		})

		q, verifier, _ := rp.authorize(b)
		_, err = rpB.config.Exchange(rpB.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		require.Error(t, err, "alpha's code at beta's token endpoint")
		withAlphaClient := rpB.config
		withAlphaClient.ClientID, withAlphaClient.ClientSecret = webID, webSecret
		_, err = withAlphaClient.Exchange(rpB.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		require.ErrorContains(t, err, "invalid_client", "alpha's client does not exist at beta")
	})

	t.Run("introspection (RFC 7662) answers the token's client only; revocation (RFC 7009) ends the grant", func(t *testing.T) {
		q, verifier, _ := rp.authorize(b)
		tok, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		introspect := func(id, secret, token string) map[string]any {
			req, err := http.NewRequest(http.MethodPost, s.issuer("alpha")+"/oauth/introspect",
				strings.NewReader(url.Values{"token": {token}}.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
			resp, err := s.localhostClient(nil).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var out map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			return out
		}
		got := introspect(webID, webSecret, tok.AccessToken)
		require.Equal(t, true, got["active"], got)
		require.Equal(t, webID, got["client_id"])
		require.Equal(t, "alpha", got["tid"])
		require.Equal(t, s.issuer("alpha"), got["iss"])
		require.NotEmpty(t, got["exp"])
		require.NotEmpty(t, got["iat"])
		require.Contains(t, got["aud"], webID)

		other := webAppClient("Alpha Other")
		otherID, otherSecret := register("alpha", adminA.GetAccessToken(), other)
		require.Equal(t, false, introspect(otherID, otherSecret, tok.AccessToken)["active"], "another client learns nothing")

		req, err := http.NewRequest(http.MethodPost, s.issuer("alpha")+"/oauth/revoke",
			strings.NewReader(url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(webID), url.QueryEscape(webSecret))
		resp, err := s.localhostClient(nil).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, false, introspect(webID, webSecret, tok.AccessToken)["active"], "revoked")
		_, err = rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.ErrorContains(t, err, "invalid_grant")
	})

	t.Run("a third-party client asks for consent once, and gets RS256 tokens by default", func(t *testing.T) {
		id, secret := register("alpha", adminA.GetAccessToken(), webAppClient("Alpha Partner"))
		partner := s.relyingParty("alpha", id, secret, callback, oidc.ScopeOpenID, "email")
		verifier, state := oauth2.GenerateVerifier(), rand.Text()
		resp, page := b.get(partner.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		require.Equal(t, "/oauth/login", resp.Request.URL.Path)
		require.Contains(t, page, "Alpha Partner")
		require.Contains(t, page, "See your email address")
		id0 := resp.Request.URL.Query().Get("id")

		resp, body := b.post(s.issuer("alpha")+"/oauth/login", url.Values{"id": {id0}, "consent": {"allow"}})
		to := redirectedTo(t, resp, body)
		require.Equal(t, state, to.Query().Get("state"))
		tok, err := partner.config.Exchange(partner.ctx, to.Query().Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		raw, _ := tok.Extra("id_token").(string)
		idToken, err := partner.verifier.Verify(partner.ctx, raw)
		require.NoError(t, err)
		header, _, _ := strings.Cut(raw, ".")
		require.Contains(t, decodeSegment(t, header), `"alg":"RS256"`)
		// The access token, for resource servers, is EdDSA whatever the
		// client's ID token algorithm (one RSA signature per exchange, not
		// two), verified by go-oidc's at_hash and by the tenant's JWKS.
		header, _, _ = strings.Cut(tok.AccessToken, ".")
		require.Contains(t, decodeSegment(t, header), `"alg":"EdDSA"`)
		require.NoError(t, idToken.VerifyAccessToken(tok.AccessToken))
		_, err = partner.provider.UserInfo(partner.ctx, oauth2.StaticTokenSource(tok))
		require.NoError(t, err, "userinfo accepts the EdDSA access token")
		var claims struct{ Email string }
		require.NoError(t, idToken.Claims(&claims))
		require.Empty(t, claims.Email, "profile claims are in userinfo, not the ID token, when an access token is issued")

		q, _, _ := partner.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		require.Empty(t, q.Get("error"), "consent is remembered: %s", q.Get("error_description"))
		resp, page = b.get(partner.config.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "consent")))
		require.Equal(t, http.StatusOK, resp.StatusCode, "prompt=consent asks again")
		require.Contains(t, page, "Alpha Partner")
		resp, body = b.post(s.issuer("alpha")+"/oauth/login", url.Values{"id": {resp.Request.URL.Query().Get("id")}, "consent": {"deny"}})
		to = redirectedTo(t, resp, body)
		require.Equal(t, "access_denied", to.Query().Get("error"))
		require.Equal(t, "s2", to.Query().Get("state"))
	})

	t.Run("client_credentials for a service client", func(t *testing.T) {
		svc := &identityv1.OAuthClient{
			DisplayName: "Alpha Billing", Type: identityv1.OAuthClient_TYPE_CONFIDENTIAL,
			GrantTypes:    []identityv1.OAuthClient_GrantType{identityv1.OAuthClient_GRANT_TYPE_CLIENT_CREDENTIALS},
			AllowedScopes: []string{"notes:read"},
		}
		id, secret := register("alpha", adminA.GetAccessToken(), svc)
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: rp.provider.Endpoint().TokenURL,
			Scopes: []string{"notes:read", "notes:write"}}
		tok, err := cc.Token(rp.ctx)
		require.NoError(t, err)
		require.Equal(t, "notes:read", tok.Extra("scope"), "only the scopes the client is allowed")

		cc.ClientSecret = "ocs_wrong"
		_, err = cc.Token(rp.ctx)
		require.ErrorContains(t, err, "invalid_client")
		cc.ClientID, cc.ClientSecret = webID, webSecret
		_, err = cc.Token(rp.ctx)
		require.ErrorContains(t, err, "unauthorized_client", "a client not allowed the grant")
	})

	t.Run("RP-initiated logout ends the httpBrowser session and its grants", func(t *testing.T) {
		q, verifier, _ := rp.authorize(b)
		tok, err := rp.config.Exchange(rp.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		require.NoError(t, err)
		raw, _ := tok.Extra("id_token").(string)
		resp, body := b.get(s.issuer("alpha") + "/oauth/end_session?" + url.Values{"id_token_hint": {raw}}.Encode())
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		_, err = rp.config.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		require.ErrorContains(t, err, "invalid_grant", "the grant ended with the session")

		q, _, _ = rp.authorize(b, oauth2.SetAuthURLParam("prompt", "none"))
		require.Equal(t, "login_required", q.Get("error"), "no silent login after logout")
	})
}

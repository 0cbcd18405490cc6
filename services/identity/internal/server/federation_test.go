package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
)

// federation is one tenant ("alpha") signing its users in with another
// identity provider: in this file, a second Tenantry tenant ("beta"), whose
// OpenID Provider is reached over real HTTP like any other.
type federationSetup struct {
	s        *system
	alpha    string // alpha's base URL
	beta     string // beta's base URL (the issuer)
	adminA   string
	provider *identityv1.IdentityProvider
}

func setUpFederation(t *testing.T, s *system, allowSignup bool) *federationSetup {
	t.Helper()
	f := &federationSetup{s: s, alpha: s.issuer("alpha"), beta: s.issuer("beta")}
	f.adminA = s.makeAdmin("alpha", "admin@alpha.example").GetAccessToken()
	adminB := s.makeAdmin("beta", "admin@beta.example").GetAccessToken()

	// beta registers alpha's identity service as a first-party client, with
	// alpha's callback as its redirect URI.
	c := webAppClient("Alpha's sign-in")
	c.RedirectUris = []string{f.alpha + "/login/idp/beta-sso/callback"}
	c.FirstParty = true
	created, err := identityv1.NewOAuthClientServiceClient(s.conn).CreateOAuthClient(in("beta", adminB),
		&identityv1.CreateOAuthClientRequest{OauthClient: c})
	require.NoError(t, err)

	// alpha's admin adds beta as a provider.
	resp, err := identityv1.NewIdentityProviderServiceClient(s.conn).CreateIdentityProvider(in("alpha", f.adminA),
		&identityv1.CreateIdentityProviderRequest{IdentityProvider: &identityv1.IdentityProvider{
			ProviderId: "beta-sso", DisplayName: "Beta SSO", Kind: identityv1.IdentityProvider_KIND_OIDC,
			Issuer: f.beta, ClientId: created.GetOauthClient().GetClientId(), ClientSecret: created.GetClientSecret(),
			AllowSignup: allowSignup,
		}})
	require.NoError(t, err)
	f.provider = resp.GetIdentityProvider()
	return f
}

// betaUser makes an account in beta, its email verified there or not.
func (f *federationSetup) betaUser(t *testing.T, email string, verified bool) {
	t.Helper()
	s := f.s
	_, err := s.auth.SignUp(in("beta"), &identityv1.SignUpRequest{Email: email, Password: goodPassword})
	require.NoError(t, err)
	if verified {
		_, _, token := s.mailTo(email, "Confirm your email address for Tenant beta")
		_, err = s.auth.VerifyEmail(in("beta"), &identityv1.VerifyEmailRequest{Token: token})
		require.NoError(t, err)
	}
}

// signInWithBeta runs browser b from alpha's "Log in with Beta SSO" through
// beta's login page, as email, back to alpha; it returns the last response
// (the page alpha sent the browser to) and its body.
func (f *federationSetup) signInWithBeta(t *testing.T, b *httpBrowser, email string) (*http.Response, string) {
	t.Helper()
	resp, body := b.get(f.alpha + "/login/idp/beta-sso?next=/account")
	require.Equal(t, f.beta+"/login", resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+resp.Request.URL.Path,
		"beta asks for its password: %s", body)
	next := resp.Request.URL.Query().Get("next")
	resp, body = b.post(f.beta+"/login", url.Values{"email": {email}, "password": {goodPassword}, "next": {next}})
	return resp, body
}

// accessToken returns the access token of b's session on a tenant, as the
// pages' script gets it, or "" when b is not logged in there.
func (b *httpBrowser) accessToken(base string) string {
	b.t.Helper()
	u, err := url.Parse(base)
	require.NoError(b.t, err)
	csrf := ""
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "tenantry_csrf" {
			csrf = c.Value
		}
	}
	if csrf == "" {
		return ""
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/auth:refresh", strings.NewReader("{}"))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	require.NoError(b.t, json.NewDecoder(resp.Body).Decode(&out))
	return out.AccessToken
}

// whoAmI is the email of the account b is logged in to on alpha, or "".
func (f *federationSetup) whoAmI(t *testing.T, b *httpBrowser) string {
	t.Helper()
	tok := b.accessToken(f.alpha)
	if tok == "" {
		return ""
	}
	me, err := f.s.auth.GetCurrentUser(in("alpha", tok), &identityv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	return me.GetUser().GetEmail()
}

// standInBrowser is a browser that reaches tenant hosts on identity's port
// and a provider's stand-in where it listens, following every redirect.
func (s *system) standInBrowser() *httpBrowser {
	b := s.newBrowser()
	b.client.CheckRedirect = nil
	identityAddr := s.identity.HTTPAddr().String()
	dialer := &net.Dialer{}
	b.client.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); strings.HasSuffix(host, ".localhost") {
			addr = identityAddr
		}
		return dialer.DialContext(ctx, network, addr)
	}}
	return b
}

// startConnect has the account page's script start connecting provider to
// the account of accessToken, and returns where it sends the browser.
func startConnect(t *testing.T, b *httpBrowser, base, provider, accessToken string) string {
	t.Helper()
	code, out := postConnect(t, b, base, provider, accessToken)
	require.Equal(t, http.StatusOK, code, "%+v", out)
	return out.AuthorizationURL
}

// connectAnswer is the JSON answer of POST /login/idp/{id}/connect: where
// to send the browser, or an error as the gateway writes them.
type connectAnswer struct {
	AuthorizationURL string `json:"authorizationUrl"`
	Message          string `json:"message"`
	Details          []struct {
		Reason   string            `json:"reason"`
		Metadata map[string]string `json:"metadata"`
	} `json:"details"`
}

func postConnect(t *testing.T, b *httpBrowser, base, provider, accessToken string) (int, connectAnswer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/login/idp/"+provider+"/connect", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out connectAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func federationError(t *testing.T, resp *http.Response) string {
	t.Helper()
	return resp.Request.URL.Query().Get("federation_error")
}

func TestSignInWithAnotherTenantAsProvider(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha", "beta")
	f := setUpFederation(t, s, true)
	ctx := context.Background()
	db, err := pgxpool.New(ctx, s.registry.DBURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	alphaTable := func(name string) string { return pgx.Identifier{"alpha", name}.Sanitize() }

	t.Run("the provider is listed with the redirect URI to register, never its secret", func(t *testing.T) {
		require.True(t, strings.HasSuffix(f.provider.GetRedirectUri(), "/login/idp/beta-sso/callback"), f.provider.GetRedirectUri())
		require.Empty(t, f.provider.GetClientSecret())
		var sealed []byte
		var row string
		require.NoError(t, db.QueryRow(ctx, `SELECT client_secret, row_to_json(p)::text FROM `+alphaTable("identity_providers")+` p`).Scan(&sealed, &row))
		require.NotContains(t, row, "ocs_", "the secret is stored sealed")
		cfg, err := s.auth.GetAuthConfig(in("alpha"), &identityv1.GetAuthConfigRequest{})
		require.NoError(t, err)
		require.Len(t, cfg.GetIdentityProviders(), 1)
		require.Equal(t, "/login/idp/beta-sso", cfg.GetIdentityProviders()[0].GetLoginPath())
		b := s.newBrowser()
		_, body := b.get(f.alpha + "/login")
		require.Contains(t, body, "Log in with Beta SSO")
	})

	t.Run("a new person signs up with a verified email, and logs in again by the link", func(t *testing.T) {
		f.betaUser(t, "carol@beta.example", true)
		b := s.newBrowser()
		resp, body := f.signInWithBeta(t, b, "carol@beta.example")
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		require.Equal(t, "carol@beta.example", f.whoAmI(t, b))

		user, err := s.users.ListUsers(in("alpha", f.adminA), &identityv1.ListUsersRequest{})
		require.NoError(t, err)
		var carol *identityv1.User
		for _, u := range user.GetUsers() {
			if u.GetEmail() == "carol@beta.example" {
				carol = u
			}
		}
		require.NotNil(t, carol)
		require.True(t, carol.GetEmailVerified(), "beta vouched for the email")

		again := s.newBrowser()
		resp, body = f.signInWithBeta(t, again, "carol@beta.example")
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		require.Equal(t, "carol@beta.example", f.whoAmI(t, again))

		tok := again.accessToken(f.alpha)
		linked, err := s.auth.ListLinkedIdentities(in("alpha", tok), &identityv1.ListLinkedIdentitiesRequest{})
		require.NoError(t, err)
		require.False(t, linked.GetPasswordSet())
		require.Len(t, linked.GetLinkedIdentities(), 1)
		require.Equal(t, "Beta SSO", linked.GetLinkedIdentities()[0].GetProviderDisplayName())
		require.NotNil(t, linked.GetLinkedIdentities()[0].GetLastLoginTime())

		_, err = s.auth.UnlinkIdentity(in("alpha", tok), &identityv1.UnlinkIdentityRequest{ProviderId: "beta-sso"})
		st := requireCode(t, err, codes.FailedPrecondition)
		require.Contains(t, st.Message(), "only way to log in")
	})

	t.Run("an existing account is linked only when its owner gives its password", func(t *testing.T) {
		s.signUpAndLogin("alpha", "dave@beta.example")
		f.betaUser(t, "dave@beta.example", true)
		b := s.newBrowser()
		resp, body := f.signInWithBeta(t, b, "dave@beta.example")
		require.Equal(t, "/login/link", resp.Request.URL.Path, body)
		require.Contains(t, body, "dave@beta.example")
		require.Empty(t, f.whoAmI(t, b), "nobody is logged in before the proof")

		resp, body = b.post(f.alpha+"/login/link", url.Values{"password": {"not the password"}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
		require.Empty(t, f.whoAmI(t, b))
		var links int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM `+alphaTable("linked_identities")+` l JOIN `+alphaTable("users")+
			` u ON u.id = l.user_id WHERE u.email = 'dave@beta.example'`).Scan(&links))
		require.Zero(t, links)

		resp, body = b.post(f.alpha+"/login/link", url.Values{"password": {goodPassword}})
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		require.Equal(t, "dave@beta.example", f.whoAmI(t, b))

		// From now on the provider logs in to dave's account directly.
		other := s.newBrowser()
		resp, body = f.signInWithBeta(t, other, "dave@beta.example")
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		require.Equal(t, "dave@beta.example", f.whoAmI(t, other))

		// dave has a password too: the link can go.
		_, err := s.auth.UnlinkIdentity(in("alpha", other.accessToken(f.alpha)), &identityv1.UnlinkIdentityRequest{ProviderId: "beta-sso"})
		require.NoError(t, err)
	})

	t.Run("an email the provider did not verify links nothing and says nothing", func(t *testing.T) {
		// erin has an account here; at beta someone signed up with her
		// address without verifying it. frank has no account here.
		s.signUpAndLogin("alpha", "erin@beta.example")
		f.betaUser(t, "erin@beta.example", false)
		f.betaUser(t, "frank@beta.example", false)
		var reasons []string
		for _, email := range []string{"erin@beta.example", "frank@beta.example"} {
			b := s.newBrowser()
			resp, body := f.signInWithBeta(t, b, email)
			require.Equal(t, "/login", resp.Request.URL.Path, body)
			reasons = append(reasons, federationError(t, resp))
			require.Empty(t, f.whoAmI(t, b))
		}
		require.Equal(t, []string{"FEDERATED_ACCOUNT_NOT_LINKED", "FEDERATED_ACCOUNT_NOT_LINKED"}, reasons,
			"the same answer whether or not an account has the address")
		var frank int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM `+alphaTable("users")+` WHERE email = 'frank@beta.example'`).Scan(&frank))
		require.Zero(t, frank, "no account made from an unverified email")
	})

	t.Run("a callback this browser did not start is refused", func(t *testing.T) {
		// The attacker signs in at beta as themselves and keeps alpha's
		// callback URL (code and state) instead of following it...
		f.betaUser(t, "mallory@beta.example", true)
		attacker := s.newBrowser()
		stop := attacker.client.CheckRedirect
		attacker.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/callback") {
				return http.ErrUseLastResponse
			}
			return stop(req, via)
		}
		resp, body := f.signInWithBeta(t, attacker, "mallory@beta.example")
		callback := redirectedTo(t, resp, body)
		require.Equal(t, "/login/idp/beta-sso/callback", callback.Path)

		// ...and gets a victim's browser to open it: nobody is logged in.
		victim := s.newBrowser()
		resp, _ = victim.get(callback.String())
		require.Equal(t, "FEDERATION_STATE_INVALID", federationError(t, resp))
		require.Empty(t, f.whoAmI(t, victim))

		// A state that does not match the cookie's is refused too.
		q := callback.Query()
		q.Set("state", "forged")
		callback.RawQuery = q.Encode()
		resp, _ = attacker.get(callback.String())
		require.Equal(t, "FEDERATION_STATE_INVALID", federationError(t, resp))
	})

	t.Run("a logged-in user connects the provider from the account page", func(t *testing.T) {
		s.signUpAndLogin("alpha", "gina@alpha.example")
		f.betaUser(t, "gina.b@beta.example", true)
		b := s.newBrowser()
		resp, body := b.post(f.alpha+"/login", url.Values{"email": {"gina@alpha.example"}, "password": {goodPassword}})
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		tok := b.accessToken(f.alpha)

		// Without the user's token there is nothing to connect to.
		req, err := http.NewRequest(http.MethodPost, f.alpha+"/login/idp/beta-sso/connect", nil)
		require.NoError(t, err)
		noToken, err := b.client.Do(req)
		require.NoError(t, err)
		noToken.Body.Close()
		require.Equal(t, http.StatusUnauthorized, noToken.StatusCode)

		authURL := startConnect(t, b, f.alpha, "beta-sso", tok)
		require.True(t, strings.HasPrefix(authURL, f.beta+"/oauth/authorize?"), authURL)

		resp, body = b.get(authURL)
		require.Equal(t, "/login", resp.Request.URL.Path, body)
		resp, body = b.post(f.beta+"/login", url.Values{"email": {"gina.b@beta.example"}, "password": {goodPassword},
			"next": {resp.Request.URL.Query().Get("next")}})
		require.Equal(t, f.alpha+"/account?connected=beta-sso", resp.Request.URL.String(), body)

		linked, err := s.auth.ListLinkedIdentities(in("alpha", tok), &identityv1.ListLinkedIdentitiesRequest{})
		require.NoError(t, err)
		require.Len(t, linked.GetLinkedIdentities(), 1)
		require.Equal(t, "gina.b@beta.example", linked.GetLinkedIdentities()[0].GetEmail())

		// The same beta account now logs in to gina's account.
		other := s.newBrowser()
		resp, body = f.signInWithBeta(t, other, "gina.b@beta.example")
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		require.Equal(t, "gina@alpha.example", f.whoAmI(t, other))
	})

	t.Run("every link, unlink and federated login is audited", func(t *testing.T) {
		rows, err := db.Query(ctx, `SELECT DISTINCT event FROM `+alphaTable("audit_log")+` WHERE event LIKE 'federation.%' OR event LIKE 'identity_provider.%'`)
		require.NoError(t, err)
		events, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"identity_provider.created", "federation.signed_up", "federation.logged_in",
			"federation.login_refused", "federation.identity_linked", "federation.identity_unlinked"}, events)
	})

	t.Run("disabled, the provider is neither offered nor usable", func(t *testing.T) {
		idps := identityv1.NewIdentityProviderServiceClient(s.conn)
		p := f.provider
		p.Disabled = true
		_, err := idps.UpdateIdentityProvider(in("alpha", f.adminA), &identityv1.UpdateIdentityProviderRequest{
			IdentityProvider: p, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}}})
		require.NoError(t, err)
		b := s.newBrowser()
		_, body := b.get(f.alpha + "/login")
		require.NotContains(t, body, "Beta SSO")
		resp, _ := b.get(f.alpha + "/login/idp/beta-sso")
		require.Equal(t, "IDENTITY_PROVIDER_UNAVAILABLE", federationError(t, resp))
	})
}

// Identity providers are an admin's business, in the admin's own tenant
// only, over gRPC and REST alike; a user's linked identities are theirs.
func TestIdentityProvidersAreForTheTenantsAdmins(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "alpha", "beta")
	adminB := s.makeAdmin("beta", "admin@beta.example").GetAccessToken()
	user := s.signUpAndLogin("alpha", "ann@alpha.example").GetAccessToken()
	idps := identityv1.NewIdentityProviderServiceClient(s.conn)
	create := &identityv1.CreateIdentityProviderRequest{IdentityProvider: &identityv1.IdentityProvider{
		ProviderId: "corp", DisplayName: "Corp", Kind: identityv1.IdentityProvider_KIND_OIDC,
		Issuer: "https://login.corp.example", ClientId: "c", ClientSecret: "s",
	}}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		code codes.Code
	}{
		{"anonymous", in("alpha"), codes.Unauthenticated},
		{"a user who is no admin", in("alpha", user), codes.PermissionDenied},
		{"another tenant's admin", in("alpha", adminB), codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idps.CreateIdentityProvider(tc.ctx, create)
			requireCode(t, err, tc.code)
			_, err = idps.ListIdentityProviders(tc.ctx, &identityv1.ListIdentityProvidersRequest{})
			requireCode(t, err, tc.code)
		})
	}
	code, body := s.rest(http.MethodPost, "alpha.localhost", "/v1/identityProviders",
		`{"providerId":"corp","displayName":"Corp","kind":"KIND_OIDC","issuer":"https://login.corp.example","clientId":"c","clientSecret":"s"}`,
		"Authorization", "Bearer "+user)
	require.Equal(t, http.StatusForbidden, code, "%s", body)
	code, body = s.rest(http.MethodGet, "alpha.localhost", "/v1/identityProviders", "", "Authorization", "Bearer "+adminB)
	require.Equal(t, http.StatusUnauthorized, code, "%s", body)

	_, err := s.auth.ListLinkedIdentities(in("alpha"), &identityv1.ListLinkedIdentitiesRequest{})
	requireCode(t, err, codes.Unauthenticated)
	_, err = s.auth.UnlinkIdentity(in("alpha", adminB), &identityv1.UnlinkIdentityRequest{ProviderId: "corp"})
	requireCode(t, err, codes.Unauthenticated)
	code, body = s.rest(http.MethodDelete, "alpha.localhost", "/v1/auth/identities/corp", "")
	require.Equal(t, http.StatusUnauthorized, code, "%s", body)

	// Nothing was made.
	list, err := idps.ListIdentityProviders(asOperator("alpha"), &identityv1.ListIdentityProvidersRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetIdentityProviders())
}

// oidcStandIn is an OpenID Provider an admin could point a provider at:
// it logs anyone in, at once, as whatever subject it is told, and notes
// the client secrets it is sent. go-oidc checks its tokens as any
// provider's.
type oidcStandIn struct {
	t    *testing.T
	base string
	key  *rsa.PrivateKey

	mu      sync.Mutex
	subject string
	nonces  map[string]string // code → nonce
	secrets []string          // the client secrets the token endpoint was sent
}

func startOIDCStandIn(t *testing.T) *oidcStandIn {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	o := &oidcStandIn{t: t, key: key, nonces: map[string]string{}}
	srv := httptest.NewServer(o.handler())
	t.Cleanup(srv.Close)
	o.base = srv.URL
	return o
}

func (o *oidcStandIn) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": o.base, "authorization_endpoint": o.base + "/authorize", "token_endpoint": o.base + "/token",
			"jwks_uri": o.base + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"},
		})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := rand.Text()
		o.mu.Lock()
		o.nonces[code] = q.Get("nonce")
		o.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(o.t, r.ParseForm())
		clientID, secret, ok := r.BasicAuth()
		if !ok {
			clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		o.mu.Lock()
		o.secrets = append(o.secrets, secret)
		nonce, known := o.nonces[r.PostForm.Get("code")]
		delete(o.nonces, r.PostForm.Get("code"))
		subject := o.subject
		o.mu.Unlock()
		if !known {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"iss": o.base, "aud": clientID, "sub": subject, "nonce": nonce, "email": "mallory@evil.example",
			"email_verified": false, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
			Key: jose.JSONWebKey{Key: o.key, KeyID: "standin", Algorithm: "RS256"}}, (&jose.SignerOptions{}).WithType("JWT"))
		require.NoError(o.t, err)
		sig, err := signer.Sign(claims)
		require.NoError(o.t, err)
		idToken, err := sig.CompactSerialize()
		require.NoError(o.t, err)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "standin", "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &o.key.PublicKey, KeyID: "standin", Algorithm: "RS256", Use: "sig"},
		}})
	})
	return mux
}

// A provider connected to an account logs in to it from then on, whatever
// becomes of the session, the password or a reset: connecting one takes a
// recent proof of the owner, and mails them. And a provider's links hold
// only for the issuer and client that gave their subjects: pointing the
// provider elsewhere takes the new client's secret and drops the links.
func TestProviderLinksTakeProofAndFollowTheProvider(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "alpha", "beta")
	f := setUpFederation(t, s, false)
	ctx := context.Background()
	db, err := pgxpool.New(ctx, s.registry.DBURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	links := func() int {
		var n int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alpha.linked_identities WHERE provider_id = 'beta-sso'`).Scan(&n))
		return n
	}

	s.signUpAndLogin("alpha", "hank@alpha.example")
	f.betaUser(t, "hank.b@beta.example", true)
	b := s.newBrowser()
	resp, body := b.post(f.alpha+"/login", url.Values{"email": {"hank@alpha.example"}, "password": {goodPassword}})
	require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
	tok := b.accessToken(f.alpha)
	hank := in("alpha", tok)
	reauthenticate := func(t *testing.T, ctx context.Context) {
		t.Helper()
		_, err := s.auth.Reauthenticate(ctx, &identityv1.ReauthenticateRequest{Password: goodPassword})
		require.NoError(t, err)
	}
	// finishAtBeta follows the browser to beta, logs in there as hank's
	// beta account unless b is logged in at beta already, and returns
	// where beta sent it back to.
	finishAtBeta := func(t *testing.T, authURL string) string {
		t.Helper()
		resp, body := b.get(authURL)
		if resp.Request.URL.Host == strings.TrimPrefix(f.beta, "http://") && resp.Request.URL.Path == "/login" {
			resp, body = b.post(f.beta+"/login", url.Values{"email": {"hank.b@beta.example"}, "password": {goodPassword},
				"next": {resp.Request.URL.Query().Get("next")}})
		}
		require.Equal(t, f.alpha, resp.Request.URL.Scheme+"://"+resp.Request.URL.Host, body)
		return resp.Request.URL.RequestURI()
	}

	t.Run("without a recent proof nothing is connected, before the provider or after it", func(t *testing.T) {
		clock.Advance(ReauthWindowForTests + time.Minute)
		code, out := postConnect(t, b, f.alpha, "beta-sso", tok)
		require.Equal(t, http.StatusForbidden, code, "%+v", out)
		require.Len(t, out.Details, 1)
		require.Equal(t, "REAUTHENTICATION_REQUIRED", out.Details[0].Reason)
		require.Equal(t, "password", out.Details[0].Metadata["proof"], "the page asks for the password, then tries again")

		// The proof ran out while the browser was at the provider: the
		// callback refuses too.
		reauthenticate(t, hank)
		authURL := startConnect(t, b, f.alpha, "beta-sso", tok)
		clock.Advance(ReauthWindowForTests + time.Minute)
		require.Equal(t, "/account?federation_error=REAUTHENTICATION_REQUIRED", finishAtBeta(t, authURL))
		require.Zero(t, links())
		_, body := b.get(f.alpha + "/account?federation_error=REAUTHENTICATION_REQUIRED")
		require.Contains(t, body, "confirm it is you when asked")
	})

	t.Run("with a recent proof the provider is connected, and the owner is told", func(t *testing.T) {
		reauthenticate(t, hank)
		require.Equal(t, "/account?connected=beta-sso", finishAtBeta(t, startConnect(t, b, f.alpha, "beta-sso", tok)))
		_, body, _ := s.mailTo("hank@alpha.example", "A sign-in provider was connected to your account")
		require.Contains(t, body, "Beta SSO was just connected to your account")
		require.Contains(t, body, `"hank.b@beta.example"`, "the mail names the provider's account")
		other := s.newBrowser()
		resp, body := f.signInWithBeta(t, other, "hank.b@beta.example")
		require.Equal(t, f.alpha+"/account", resp.Request.URL.String(), body)
		require.Equal(t, "hank@alpha.example", f.whoAmI(t, other))
	})

	t.Run("disconnecting tells the owner too", func(t *testing.T) {
		_, err := s.auth.UnlinkIdentity(hank, &identityv1.UnlinkIdentityRequest{ProviderId: "beta-sso"})
		require.NoError(t, err)
		_, body, _ := s.mailTo("hank@alpha.example", "A sign-in provider was disconnected from your account")
		require.Contains(t, body, "Beta SSO was just disconnected")
		require.Zero(t, links())
		// Connected again, for the next case; the proof still counts.
		require.Equal(t, "/account?connected=beta-sso", finishAtBeta(t, startConnect(t, b, f.alpha, "beta-sso", tok)))
		require.Equal(t, 1, links())
	})

	t.Run("a new issuer takes its client's secret and drops the provider's links", func(t *testing.T) {
		var hankSubject string
		require.NoError(t, db.QueryRow(ctx, `SELECT subject FROM alpha.linked_identities WHERE provider_id = 'beta-sso'`).Scan(&hankSubject))
		// The admin points beta-sso at an issuer of their own, which says
		// anyone is hank's subject.
		evil := startOIDCStandIn(t)
		evil.mu.Lock()
		evil.subject = hankSubject
		evil.mu.Unlock()
		idps := identityv1.NewIdentityProviderServiceClient(s.conn)
		admin := in("alpha", f.adminA)
		update := func(p *identityv1.IdentityProvider, paths ...string) error {
			p.Name = "identityProviders/beta-sso"
			_, err := idps.UpdateIdentityProvider(admin, &identityv1.UpdateIdentityProviderRequest{
				IdentityProvider: p, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
			return err
		}

		// Changing a provider takes the admin's recent proof, as changing
		// an OAuth client does.
		clock.Advance(ReauthWindowForTests + time.Minute)
		err := update(&identityv1.IdentityProvider{DisplayName: "Beta"}, "display_name")
		requireCode(t, err, codes.PermissionDenied)
		require.Equal(t, "REAUTHENTICATION_REQUIRED", reasonOf(err))
		reauthenticate(t, admin)

		for _, tc := range []struct {
			name  string
			p     *identityv1.IdentityProvider
			paths []string
		}{
			{"issuer", &identityv1.IdentityProvider{Issuer: evil.base}, []string{"issuer"}},
			{"client_id", &identityv1.IdentityProvider{ClientId: "evil-client"}, []string{"client_id"}},
			{"both", &identityv1.IdentityProvider{Issuer: evil.base, ClientId: "evil-client"}, []string{"issuer", "client_id"}},
		} {
			err := update(tc.p, tc.paths...)
			st := requireCode(t, err, codes.InvalidArgument)
			require.Equal(t, "CLIENT_SECRET_REQUIRED", reasonOf(err), tc.name)
			require.Contains(t, st.Message(), "client_secret", tc.name)
		}
		require.Equal(t, 1, links(), "nothing changed")
		// The same issuer and client, named again, are no change.
		require.NoError(t, update(&identityv1.IdentityProvider{Issuer: f.beta, DisplayName: "Beta SSO"}, "issuer", "display_name"))
		require.Equal(t, 1, links())

		require.NoError(t, update(&identityv1.IdentityProvider{Issuer: evil.base, ClientId: "evil-client", ClientSecret: "evil-secret"},
			"issuer", "client_id", "client_secret"))
		require.Zero(t, links(), "the links went with the issuer that gave their subjects")
		var removed string
		require.NoError(t, db.QueryRow(ctx, `SELECT details->>'links_removed' FROM alpha.audit_log WHERE event = 'identity_provider.repointed'`).Scan(&removed))
		require.Equal(t, "1", removed)
		var hankLost int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM alpha.audit_log a JOIN alpha.users u ON u.id = a.user_id
			WHERE a.event = 'federation.identity_unlinked' AND u.email = 'hank@alpha.example' AND a.details ? 'reason'`).Scan(&hankLost))
		require.Equal(t, 1, hankLost, "hank's own trail (and account events) show the link he lost")

		// Logging in through beta-sso as hank's subject logs in nobody.
		attacker := s.standInBrowser()
		resp, body := attacker.get(f.alpha + "/login/idp/beta-sso")
		require.Equal(t, "FEDERATED_ACCOUNT_NOT_LINKED", federationError(t, resp), body)
		require.Empty(t, f.whoAmI(t, attacker))
		evil.mu.Lock()
		defer evil.mu.Unlock()
		require.Equal(t, []string{"evil-secret"}, evil.secrets, "beta's client secret never left for the new issuer")
	})
}

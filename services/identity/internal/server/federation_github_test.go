package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/identity/internal/server"
)

// gitHubStandIn answers the few GitHub endpoints the GitHub preset uses,
// as GitHub documents them: GitHub itself cannot run in a test, so this is
// the one provider tested against a stand-in (the OpenID Connect ones run
// for real: oidc-provider, another tenant).
type gitHubStandIn struct {
	mu     sync.Mutex
	emails []map[string]any
	codes  map[string]string // code → the PKCE challenge it was issued with
}

func (g *gitHubStandIn) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		require.Equal(t, "S256", q.Get("code_challenge_method"))
		g.mu.Lock()
		g.codes["code-1"] = q.Get("code_challenge")
		g.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {"code-1"}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		g.mu.Lock()
		_, ok := g.codes[r.PostForm.Get("code")]
		g.mu.Unlock()
		if !ok || r.PostForm.Get("code_verifier") == "" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"gho_standin","token_type":"bearer","scope":"read:user,user:email"}`))
	})
	mux.HandleFunc("GET /api/user", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer gho_standin", r.Header.Get("Authorization"))
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 4242, "login": "octo", "name": nil})
	})
	mux.HandleFunc("GET /api/user/emails", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		_ = json.NewEncoder(w).Encode(g.emails)
	})
	return mux
}

// The GitHub preset: plain OAuth 2.0 with PKCE, then the user's numeric id
// as the subject and the primary email only when GitHub says it is
// verified.
func TestSignInWithGitHubPreset(t *testing.T) {
	t.Parallel()
	gh := &gitHubStandIn{codes: map[string]string{}, emails: []map[string]any{
		{"email": "octo@users.example", "primary": false, "verified": true},
		{"email": "octo@work.example", "primary": true, "verified": false},
	}}
	standIn := httptest.NewServer(gh.handler(t))
	t.Cleanup(standIn.Close)

	s := startSystemOpts(t, nil, server.Options{FederationEndpoints: federation.Endpoints{
		GoogleIssuer:          federation.DefaultEndpoints.GoogleIssuer,
		MicrosoftIssuerFormat: federation.DefaultEndpoints.MicrosoftIssuerFormat,
		GitHubAuthURL:         standIn.URL + "/login/oauth/authorize",
		GitHubTokenURL:        standIn.URL + "/login/oauth/access_token",
		GitHubAPI:             standIn.URL + "/api",
	}}, "alpha")
	admin := s.makeAdmin("alpha", "admin@alpha.example").GetAccessToken()
	_, err := identityv1.NewIdentityProviderServiceClient(s.conn).CreateIdentityProvider(in("alpha", admin),
		&identityv1.CreateIdentityProviderRequest{IdentityProvider: &identityv1.IdentityProvider{
			ProviderId: "github", DisplayName: "GitHub", Kind: identityv1.IdentityProvider_KIND_GITHUB,
			ClientId: "Iv1.standin", ClientSecret: "standin-secret", AllowSignup: true,
		}})
	require.NoError(t, err)
	alpha := s.issuer("alpha")
	f := &federationSetup{s: s, alpha: alpha}

	// The primary email is not verified: no account from it.
	b := s.standInBrowser()
	resp, _ := b.get(alpha + "/login/idp/github")
	require.Equal(t, "FEDERATED_ACCOUNT_NOT_LINKED", federationError(t, resp))
	require.Empty(t, f.whoAmI(t, b))

	gh.mu.Lock()
	gh.emails[1]["verified"] = true
	gh.mu.Unlock()
	resp, body := b.get(alpha + "/login/idp/github")
	require.Equal(t, alpha+"/account", resp.Request.URL.String(), body)
	require.Equal(t, "octo@work.example", f.whoAmI(t, b))
	linked, err := s.auth.ListLinkedIdentities(in("alpha", b.accessToken(alpha)), &identityv1.ListLinkedIdentitiesRequest{})
	require.NoError(t, err)
	require.Len(t, linked.GetLinkedIdentities(), 1)
	require.Equal(t, "octo@work.example", linked.GetLinkedIdentities()[0].GetEmail())
}

package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/identity/internal/server"
)

// entraStandIn answers what the Microsoft preset uses of Entra ID's
// multi-tenant ("common") v2.0 endpoints, as Microsoft documents them:
// a discovery document whose issuer is a template with {tenantid}, and ID
// tokens whose iss is the user's own directory's. Entra ID cannot run in a
// test; the relying party side is go-oidc, as in production.
type entraStandIn struct {
	t    *testing.T
	base string
	key  *rsa.PrivateKey

	mu     sync.Mutex
	nonces map[string]string // code → nonce
	// forgeIssuer makes the next tokens name another directory than their tid.
	forgeIssuer bool
}

const entraDirectory = "72f988bf-86f1-41af-91ab-2d7cd011db47"

func (e *entraStandIn) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /common/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                e.base + "/{tenantid}/v2.0",
			"authorization_endpoint":                e.base + "/common/oauth2/v2.0/authorize",
			"token_endpoint":                        e.base + "/common/oauth2/v2.0/token",
			"jwks_uri":                              e.base + "/common/discovery/v2.0/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code"},
		})
	})
	mux.HandleFunc("GET /common/oauth2/v2.0/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := rand.Text()
		e.mu.Lock()
		e.nonces[code] = q.Get("nonce")
		e.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /common/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(e.t, r.ParseForm())
		e.mu.Lock()
		nonce, ok := e.nonces[r.PostForm.Get("code")]
		delete(e.nonces, r.PostForm.Get("code"))
		issuerDir := entraDirectory
		if e.forgeIssuer {
			issuerDir = "00000000-0000-0000-0000-000000000001"
		}
		e.mu.Unlock()
		clientID, _, _ := r.BasicAuth()
		if !ok || r.PostForm.Get("code_verifier") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{
			"iss": e.base + "/" + issuerDir + "/v2.0", "aud": clientID, "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
			"tid": entraDirectory, "email": "ada@contoso.example", "name": "Ada Entra", "nonce": nonce,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
			Key: jose.JSONWebKey{Key: e.key, KeyID: "standin", Algorithm: "RS256"}}, (&jose.SignerOptions{}).WithType("JWT"))
		require.NoError(e.t, err)
		sig, err := signer.Sign(claims)
		require.NoError(e.t, err)
		idToken, err := sig.CompactSerialize()
		require.NoError(e.t, err)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "standin", "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
	})
	mux.HandleFunc("GET /common/discovery/v2.0/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &e.key.PublicKey, KeyID: "standin", Algorithm: "RS256", Use: "sig"},
		}})
	})
	return mux
}

// The Microsoft preset for any directory: each ID token's issuer must be
// its own directory's (tid), and Microsoft's email is never taken as
// verified, so an Entra account signs up nobody and is connected from the
// account page, then logs in by its subject.
func TestSignInWithMicrosoftPresetAnyDirectory(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	entra := &entraStandIn{t: t, key: key, nonces: map[string]string{}}
	standIn := httptest.NewServer(entra.handler())
	t.Cleanup(standIn.Close)
	entra.base = standIn.URL

	s := startSystemOpts(t, nil, server.Options{FederationEndpoints: federation.Endpoints{
		GoogleIssuer:          federation.DefaultEndpoints.GoogleIssuer,
		MicrosoftIssuerFormat: standIn.URL + "/%s/v2.0",
		GitHubAuthURL:         federation.DefaultEndpoints.GitHubAuthURL,
		GitHubTokenURL:        federation.DefaultEndpoints.GitHubTokenURL,
		GitHubAPI:             federation.DefaultEndpoints.GitHubAPI,
	}}, "alpha")
	admin := s.makeAdmin("alpha", "admin@alpha.example").GetAccessToken()
	_, err = identityv1.NewIdentityProviderServiceClient(s.conn).CreateIdentityProvider(in("alpha", admin),
		&identityv1.CreateIdentityProviderRequest{IdentityProvider: &identityv1.IdentityProvider{
			ProviderId: "microsoft", DisplayName: "Microsoft", Kind: identityv1.IdentityProvider_KIND_MICROSOFT,
			ClientId: "11111111-2222-3333-4444-555555555555", ClientSecret: "standin-secret", AllowSignup: true,
		}})
	require.NoError(t, err)
	alpha := s.issuer("alpha")
	f := &federationSetup{s: s, alpha: alpha}
	newBrowser := s.standInBrowser

	// No account has the address; Microsoft's email does not vouch for it.
	b := newBrowser()
	resp, _ := b.get(alpha + "/login/idp/microsoft")
	require.Equal(t, "FEDERATED_ACCOUNT_NOT_LINKED", federationError(t, resp))
	require.Empty(t, f.whoAmI(t, b))

	// ada connects her Entra account from the account page.
	s.signUpAndLogin("alpha", "ada@alpha.example")
	resp, body := b.post(alpha+"/login", url.Values{"email": {"ada@alpha.example"}, "password": {goodPassword}})
	require.Equal(t, alpha+"/account", resp.Request.URL.String(), body)
	authURL := startConnect(t, b, alpha, "microsoft", b.accessToken(alpha))
	require.True(t, strings.HasPrefix(authURL, standIn.URL+"/common/oauth2/v2.0/authorize?"), authURL)
	resp, body = b.get(authURL)
	require.Equal(t, alpha+"/account?connected=microsoft", resp.Request.URL.String(), body)

	// From now on it logs in to ada's account, by its subject.
	other := newBrowser()
	resp, body = other.get(alpha + "/login/idp/microsoft")
	require.Equal(t, alpha+"/account", resp.Request.URL.String(), body)
	require.Equal(t, "ada@alpha.example", f.whoAmI(t, other))

	// A token whose issuer is not its own directory's is refused.
	entra.mu.Lock()
	entra.forgeIssuer = true
	entra.mu.Unlock()
	third := newBrowser()
	resp, _ = third.get(alpha + "/login/idp/microsoft")
	require.Equal(t, "FEDERATION_FAILED", federationError(t, resp))
	require.Empty(t, f.whoAmI(t, third))
}

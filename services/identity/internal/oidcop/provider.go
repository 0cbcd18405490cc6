// Package oidcop makes each tenant an OpenID Provider: discovery, the
// authorization code flow with PKCE through the tenant's login pages,
// refresh tokens with the rotation and reuse detection of RefreshSession,
// client_credentials, userinfo, JWKS, revocation (RFC 7009), introspection
// (RFC 7662) and RP-initiated logout.
//
// The protocol is zitadel/oidc's op package (v3, through its Server API:
// LegacyServer with a few endpoints overridden), not hand-written: it is
// certified for the basic and config OpenID profiles and well kept. This
// package holds what the library leaves to its user: storage (an adapter
// over account.Manager, which keeps every rule), the issuer of a request
// (the tenant's host), the login step between /oauth/authorize and the
// code, and the places where Tenantry is stricter than the library's
// defaults:
//
//   - PKCE with S256 is required of every client at /oauth/authorize, and
//     a code_verifier at the token endpoint (the library checks a verifier
//     only when one is sent or the client is public);
//   - an authorization request is bound to the browser that started it (a
//     cookie), so a leaked request id cannot be completed elsewhere;
//   - introspection answers POST only, and only for the client a token was
//     issued to;
//   - CORS is not the library's allow-everything default: the token,
//     userinfo, revocation, introspection, JWKS and discovery endpoints
//     answer browser apps of any origin without credentials (they
//     authenticate with tokens and client secrets, never cookies), and the
//     authorize, login and end_session endpoints are navigations, not
//     fetches.
//
// Each tenant host is an issuer of its own: the scheme of the public URL
// and the host the request came to (acme.example.com, or a custom domain),
// so a relying party configured for tenant B refuses tenant A's tokens by
// their issuer, with nothing Tenantry-specific.
package oidcop

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/token"
	"tenantry.dev/kit/tenancy"
)

// Paths of the provider, on every tenant host.
const (
	discoveryPath   = "/.well-known/openid-configuration"
	prefix          = "/oauth/"
	authorizePath   = "/oauth/authorize"
	tokenPath       = "/oauth/token"
	introspectPath  = "/oauth/introspect"
	userinfoPath    = "/oauth/userinfo"
	revokePath      = "/oauth/revoke"
	endSessionPath  = "/oauth/end_session"
	keysPath        = "/oauth/keys"
	loginPath       = "/oauth/login"
	loggedOutPath   = "/login?logged_out=1"
	accountPath     = "/account"
	bindingCookie   = "tenantry_oauth"
	ssoCookie       = "tenantry_sso"
	bindingLifetime = account.AuthRequestTTL
)

// Keys are the signing keys of every tenant (package token's Issuer):
// each tenant's tokens are signed with, and its /oauth/keys lists, that
// tenant's keys only.
type Keys interface {
	SigningKey(ctx context.Context, tenantUID, alg string) (kid string, key any, err error)
	PublicKeys(ctx context.Context, tenantUID string) ([]token.PublicKey, error)
}

// Config configures a Provider.
type Config struct {
	// Accounts holds every rule and all state.
	Accounts *account.Manager
	// Keys sign and verify tokens.
	Keys Keys
	// TenantOf returns the active tenant of a request's host.
	TenantOf func(r *http.Request) (tenancy.Tenant, error)
	// Host returns the host a request was sent to (a trusted proxy's
	// X-Forwarded-Host included), without port; Authority the same with
	// the port the client named.
	Host      func(r *http.Request) string
	Authority func(r *http.Request) string
	// Caller describes the request's client for audit and sessions.
	Caller func(r *http.Request) account.Client
	// PublicURL is identity's public URL template ({tenant}): its scheme
	// is every issuer's.
	PublicURL string
	// KeyEncryptionKey derives the key that encrypts codes.
	KeyEncryptionKey string
	// AccessTTL is the default lifetime of access and ID tokens.
	AccessTTL time.Duration
	// Secure reports whether cookies on host need the Secure attribute.
	Secure func(host string) bool
	// ClearBrowserSession expires the browser's login cookies (logout).
	ClearBrowserSession func(w http.ResponseWriter, r *http.Request)
	Logger              *slog.Logger
}

// Provider serves the OpenID Provider endpoints of every tenant.
type Provider struct {
	cfg      Config
	scheme   string
	provider *op.Provider
	handler  http.Handler
	// documents keeps discovery documents by issuer and JWKS by tenant and
	// key set, encoded: the library builds and encodes both on every GET,
	// which made them a fraction of a health check's rate.
	documents encodedCache
}

// encodedCache maps a key to an encoded JSON document. It is bounded: past
// maxEncoded entries it starts over (a miss costs one build).
type encodedCache struct {
	mu sync.Mutex
	m  map[string]json.RawMessage
}

const maxEncoded = 10000

func (c *encodedCache) get(key string) (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *encodedCache) put(key string, v json.RawMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxEncoded {
		c.m = map[string]json.RawMessage{}
	}
	c.m[key] = v
}

// New builds the provider.
func New(cfg Config) (*Provider, error) {
	scheme, _, ok := strings.Cut(cfg.PublicURL, "://")
	if !ok || scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("oidcop: the public URL %q has no http(s) scheme", cfg.PublicURL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Provider{cfg: cfg, scheme: scheme}
	// Codes are the request id encrypted (the library's format): the key
	// must be the same on every replica and across restarts, so it is
	// derived from the key-encryption key rather than drawn at random.
	key, err := hkdf.Key(sha256.New, []byte(cfg.KeyEncryptionKey), nil, "tenantry identity: oidc code encryption v1", 32)
	if err != nil {
		return nil, fmt.Errorf("oidcop: derive the code key: %w", err)
	}
	config := &op.Config{
		CryptoKey:                [32]byte(key),
		CryptoKeyId:              "v1",
		DefaultLogoutRedirectURI: loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "at_hash", "c_hash", "azp",
			"amr", "sid", "tid", "name", "preferred_username", "updated_at", "email", "email_verified"},
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
	}
	provider, err := op.NewProvider(config, &storage{p: p}, p.issuerFromRequest,
		op.WithCrypto(op.NewAES256GCMCrypto([32]byte(key), "v1")),
		// The library's verifiers default to RSA and ECDSA; our keys are
		// RSA and Ed25519.
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(token.AlgRS256, token.AlgEdDSA)),
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(token.AlgRS256, token.AlgEdDSA)),
	)
	if err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	p.provider = provider
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint(authorizePath),
		Token:         op.NewEndpoint(tokenPath),
		Introspection: op.NewEndpoint(introspectPath),
		Userinfo:      op.NewEndpoint(userinfoPath),
		Revocation:    op.NewEndpoint(revokePath),
		EndSession:    op.NewEndpoint(endSessionPath),
		JwksURI:       op.NewEndpoint(keysPath),
	}
	srv := &server{LegacyServer: op.NewLegacyServer(provider, endpoints), p: p}
	inner := op.RegisterLegacyServer(srv,
		// The library's callback completes a request by id alone; ours
		// (the login step) checks the browser first, so it is off.
		func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) },
		op.WithServerCORSOptions(&cors.Options{
			AllowedOrigins:   []string{"*"},
			AllowedMethods:   []string{http.MethodGet, http.MethodPost},
			AllowedHeaders:   []string{"Authorization", "Content-Type"},
			AllowCredentials: false,
		}),
	)
	p.handler = p.withTenant(p.servedFromMemory(bearerChallenge(inner)))
	return p, nil
}

// servedFromMemory answers GETs of discovery and the JWKS from the encoded
// documents server.Discovery and server.Keys keep, without going through
// the library's router, request parsing and encoder: they are public,
// immutable for their key, and asked for as often as health checks. A
// miss goes to next, which builds and keeps the document. The CORS answer
// is the library's for these endpoints: any origin, no credentials.
func (p *Provider) servedFromMemory(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var key string
		if r.Method == http.MethodGet {
			switch r.URL.Path {
			case discoveryPath:
				key = discoveryKey(r.Context())
			case keysPath:
				key, _ = p.jwksKey(r.Context())
			}
		}
		doc, ok := p.documents.get(key)
		if key == "" || !ok {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", documentCacheControl)
		h.Add("Vary", "Origin")
		if r.Header.Get("Origin") != "" {
			h.Set("Access-Control-Allow-Origin", "*")
		}
		// The library's encoder ends its documents with a newline: the
		// same bytes either way.
		_, _ = w.Write(append(doc[:len(doc):len(doc)], '\n'))
	})
}

// documentCacheControl lets clients keep discovery and the JWKS briefly:
// relying parties refetch the JWKS on an unknown kid.
const documentCacheControl = "public, max-age=300"

func discoveryKey(ctx context.Context) string { return "discovery\x00" + op.IssuerFromContext(ctx) }

// jwksKey names the tenant's JWKS as it is now: its uid and the kids of
// the keys it lists (from memory), so that a change of keys is a new key.
func (p *Provider) jwksKey(ctx context.Context) (string, error) {
	t := tenantOf(ctx)
	pub, err := p.cfg.Keys.PublicKeys(ctx, t.UID)
	if err != nil {
		return "", err
	}
	var key strings.Builder
	key.WriteString("jwks\x00" + t.UID)
	for _, k := range pub {
		key.WriteString("\x00" + k.KID)
	}
	return key.String(), nil
}

// bearerChallenge makes /oauth/userinfo refuse a token as RFC 6750
// (section 3.1) and OpenID Connect (Core 5.3.3) say: 401 with
// WWW-Authenticate: Bearer error="invalid_token". The library answers 403
// without the header when storage refuses a token (an ended grant), which
// relying parties cannot tell from a server fault.
func bearerChallenge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != userinfoPath {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&challengeWriter{ResponseWriter: w}, r)
	})
}

type challengeWriter struct {
	http.ResponseWriter
	wrote bool
}

func (c *challengeWriter) WriteHeader(status int) {
	if !c.wrote && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		c.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="the access token is invalid, expired or its grant has ended"`)
		status = http.StatusUnauthorized
	}
	c.wrote = true
	c.ResponseWriter.WriteHeader(status)
}

func (c *challengeWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

// Routes are the provider's routes for the gateway, whose Admit has
// already refused hosts that are no tenant's.
func (p *Provider) Routes() map[string]http.Handler {
	login := http.CrossOriginProtection{}
	return map[string]http.Handler{
		"GET " + discoveryPath: p.handler,
		prefix:                 p.handler,
		loginPath:              p.withTenant(login.Handler(http.HandlerFunc(p.serveLogin))),
	}
}

// issuerFromRequest makes each tenant host its own issuer.
func (p *Provider) issuerFromRequest(bool) (op.IssuerFromRequest, error) {
	return func(r *http.Request) string { return p.issuer(r) }, nil
}

func (p *Provider) issuer(r *http.Request) string {
	return p.scheme + "://" + p.cfg.Authority(r)
}

// withTenant puts the request's tenant, caller and (on the endpoints that
// need them) the browser binding and logout hook on the context.
func (p *Provider) withTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := p.cfg.TenantOf(r)
		if err != nil {
			writeJSONError(w, http.StatusNotFound, "invalid_request", "this host is no active tenant's")
			return
		}
		ctx := context.WithValue(r.Context(), tenantKey{}, t)
		ctx = context.WithValue(ctx, callerKey{}, p.cfg.Caller(r))
		ctx = context.WithValue(ctx, memoKey{}, &requestMemo{})
		ctx = op.ContextWithIssuer(ctx, p.issuer(r))
		switch r.URL.Path {
		case authorizePath:
			ctx = context.WithValue(ctx, bindingKey{}, p.bind(w, r))
		case endSessionPath:
			ctx = context.WithValue(ctx, logoutKey{}, func() { p.clearCookies(w, r) })
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, description)
}

// accessTTL is a client's access token lifetime.
func (p *Provider) accessTTL(c *account.OAuthClient) time.Duration {
	if c.AccessTokenLifetime > 0 {
		return c.AccessTokenLifetime
	}
	return p.cfg.AccessTTL
}

// server overrides the library's LegacyServer where Tenantry is stricter.
type server struct {
	*op.LegacyServer
	p *Provider
}

// Authorize requires PKCE with S256, the code flow, and a client allowed
// the authorization_code grant; it keeps only the scopes the client is
// allowed.
func (s *server) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	c, ok := r.Client.(*client)
	if !ok {
		return nil, oidc.ErrServerError()
	}
	switch {
	case !c.c.HasGrant(account.GrantAuthorizationCode):
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the client may not use the authorization code flow")
	case r.Data.ResponseType != oidc.ResponseTypeCode:
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_type=code is supported")
	case r.Data.CodeChallenge == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge and code_challenge_method=S256")
	case r.Data.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case r.Data.ResponseMode != "" && r.Data.ResponseMode != oidc.ResponseModeQuery && r.Data.ResponseMode != oidc.ResponseModeFormPost:
		return nil, oidc.ErrInvalidRequest().WithDescription("response_mode must be query or form_post")
	}
	scopes := make([]string, 0, len(r.Data.Scopes))
	for _, sc := range r.Data.Scopes {
		if sc == oidc.ScopeOpenID || c.IsScopeAllowed(sc) {
			scopes = append(scopes, sc)
		}
	}
	r.Data.Scopes = scopes
	return s.LegacyServer.Authorize(ctx, r)
}

// CodeExchange requires the PKCE verifier of every client.
func (s *server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	if r.Data.CodeVerifier == "" {
		return nil, oidc.ErrInvalidGrant().WithDescription("code_verifier is required")
	}
	return s.LegacyServer.CodeExchange(context.WithValue(ctx, clientKey{}, r.Client), r)
}

// ClientCredentialsExchange puts the client on the context (its signing
// algorithm).
func (s *server) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	return s.LegacyServer.ClientCredentialsExchange(context.WithValue(ctx, clientKey{}, r.Client), r)
}

// RefreshToken tells storage which client presents the token, so that only
// the grant's client can rotate it.
func (s *server) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	return s.LegacyServer.RefreshToken(context.WithValue(ctx, clientKey{}, r.Client), r)
}

// Introspect answers POST only: a token in a URL ends up in logs. An
// active token's answer gets the registered claims of the token (exp,
// iat, nbf, iss, aud, jti), which resource servers check and the library
// leaves out.
func (s *server) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	if r.Method != http.MethodPost {
		return nil, op.NewStatusError(oidc.ErrInvalidRequest().WithDescription("use POST with a form-encoded body"), http.StatusMethodNotAllowed)
	}
	resp, err := s.LegacyServer.Introspect(ctx, r)
	if err != nil {
		return nil, err
	}
	if out, ok := resp.Data.(*oidc.IntrospectionResponse); ok && out.Active && r.Data.IntrospectionRequest != nil {
		// The library verified the token before calling storage: only its
		// claims are read here.
		var claims oidc.AccessTokenClaims
		if _, err := oidc.ParseToken(r.Data.Token, &claims); err == nil {
			out.Expiration, out.IssuedAt, out.NotBefore = claims.Expiration, claims.IssuedAt, claims.NotBefore
			out.Issuer, out.Audience, out.JWTID = claims.Issuer, claims.Audience, claims.JWTID
		}
	}
	return resp, nil
}

// JWTProfile is not offered.
func (s *server) JWTProfile(context.Context, *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// Discovery says what Tenantry does, not what the library could. The
// document depends on the issuer only: it is built once per issuer and kept
// for servedFromMemory, which answers every GET after the first.
func (s *server) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	header := http.Header{"Cache-Control": {documentCacheControl}}
	key := discoveryKey(ctx)
	resp, err := s.LegacyServer.Discovery(ctx, r)
	if err != nil {
		return nil, err
	}
	d, ok := resp.Data.(*oidc.DiscoveryConfiguration)
	if !ok {
		return nil, errors.New("oidcop: unexpected discovery document")
	}
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFormPost)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	d.RequestObjectSigningAlgValuesSupported = nil
	d.RequestParameterSupported = false
	d.DeviceAuthorizationEndpoint = ""
	d.CheckSessionIframe = ""
	d.SubjectTypesSupported = []string{"public"}
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("oidcop: encode discovery: %w", err)
	}
	s.p.documents.put(key, doc)
	return &op.Response{Header: header, Data: json.RawMessage(doc)}, nil
}

// Keys are cached briefly by clients: relying parties refetch on an
// unknown kid. The encoded JWKS is kept per tenant and key set (the kids
// it lists, read from memory) for servedFromMemory, so it is built again
// only when the keys change.
func (s *server) Keys(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	header := http.Header{"Cache-Control": {documentCacheControl}}
	key, err := s.p.jwksKey(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := s.LegacyServer.Keys(ctx, r)
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(resp.Data)
	if err != nil {
		return nil, fmt.Errorf("oidcop: encode JWKS: %w", err)
	}
	s.p.documents.put(key, doc)
	return &op.Response{Header: header, Data: json.RawMessage(doc)}, nil
}

package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
)

// upstream is one provider as identity's OAuth 2.0 client sees it.
type upstream interface {
	// authURL is where to send the browser to sign in.
	authURL(redirectURI, state, nonce, verifier string) string
	// exchange redeems the code the browser came back with and returns
	// what the provider says about the person, checked.
	exchange(ctx context.Context, redirectURI, code, nonce, verifier string) (account.FederatedClaims, error)
}

// Endpoints of the presets. Tests of the GitHub preset point them at a
// stand-in, since GitHub itself cannot run in a test.
type Endpoints struct {
	GoogleIssuer          string
	MicrosoftIssuerFormat string // with %s for the directory, "common" for any
	GitHubAuthURL         string
	GitHubTokenURL        string
	GitHubAPI             string
}

// DefaultEndpoints are the real providers'.
var DefaultEndpoints = Endpoints{
	GoogleIssuer:          "https://accounts.google.com",
	MicrosoftIssuerFormat: "https://login.microsoftonline.com/%s/v2.0",
	GitHubAuthURL:         "https://github.com/login/oauth/authorize",
	GitHubTokenURL:        "https://github.com/login/oauth/access_token",
	GitHubAPI:             "https://api.github.com",
}

// upstreams builds upstream clients and keeps the OpenID Connect ones
// (their discovery document and key set) per tenant and provider version.
type upstreams struct {
	client    *http.Client
	endpoints Endpoints
	// discoveryTTL is how long a discovery document is trusted before it
	// is fetched again (a provider may move its endpoints).
	discoveryTTL time.Duration
	now          func() time.Time

	mu     sync.Mutex
	cached map[string]cachedProvider
}

type cachedProvider struct {
	version  int64
	issuer   string
	provider *oidc.Provider
	fetched  time.Time
}

// maxCachedProviders bounds the cache; past it, the cache starts over
// (discovery is one request per provider: cheap to repeat).
const maxCachedProviders = 10000

// newHTTPClient is the client for calls to providers: bounded in time and
// in redirects, and resolving localhost names to the loopback address as
// RFC 6761 (section 6.3) asks and browsers do, which Go's resolver does not
// for *.localhost (so that `make run`'s tenants can federate with each
// other, as in the tests).
func newHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && isLocalhostName(host) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: transport}
}

func isLocalhostName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// get returns the upstream client of p, whose secret is secret.
func (u *upstreams) get(ctx context.Context, t tenancy.Tenant, p *account.IdentityProvider, secret string) (upstream, error) {
	conf := oauth2.Config{ClientID: p.ClientID, ClientSecret: secret}
	if p.Kind == account.ProviderGitHub {
		conf.Endpoint = oauth2.Endpoint{AuthURL: u.endpoints.GitHubAuthURL, TokenURL: u.endpoints.GitHubTokenURL}
		conf.Scopes = append([]string{"read:user", "user:email"}, p.Scopes...)
		return &githubUpstream{conf: conf, client: u.client, api: strings.TrimSuffix(u.endpoints.GitHubAPI, "/")}, nil
	}
	issuer, anyDirectory := p.Issuer, false
	switch p.Kind {
	case account.ProviderGoogle:
		issuer = u.endpoints.GoogleIssuer
	case account.ProviderMicrosoft:
		if issuer == "" {
			issuer, anyDirectory = fmt.Sprintf(u.endpoints.MicrosoftIssuerFormat, "common"), true
		}
	}
	provider, err := u.discover(t, p, issuer, anyDirectory)
	if err != nil {
		return nil, err
	}
	conf.Endpoint = provider.Endpoint()
	conf.Scopes = append([]string{oidc.ScopeOpenID, "email", "profile"}, p.Scopes...)
	verifier := provider.VerifierContext(u.clientContext(), &oidc.Config{ClientID: p.ClientID, SkipIssuerCheck: anyDirectory, Now: u.now})
	o := &oidcUpstream{conf: conf, client: u.client, provider: provider, verifier: verifier, providerID: p.ID}
	if anyDirectory {
		// With Microsoft's "common" endpoint the issuer names the user's
		// directory: it must be the template's, filled with the token's
		// own tid.
		o.issuerFormat = u.endpoints.MicrosoftIssuerFormat
	}
	return o, nil
}

// clientContext carries the HTTP client to go-oidc. It is not a request's
// context: go-oidc keeps it for fetching the provider's keys later, when
// the request that first needed them is long gone; the client's own
// timeout bounds each fetch.
func (u *upstreams) clientContext() context.Context {
	return oidc.ClientContext(context.Background(), u.client)
}

func (u *upstreams) discover(t tenancy.Tenant, p *account.IdentityProvider, issuer string, anyDirectory bool) (*oidc.Provider, error) {
	key := t.UID + "/" + p.ID
	u.mu.Lock()
	c, ok := u.cached[key]
	u.mu.Unlock()
	if ok && c.version == p.Version && c.issuer == issuer && u.now().Sub(c.fetched) < u.discoveryTTL {
		return c.provider, nil
	}
	ctx := u.clientContext()
	if anyDirectory {
		// The "common" discovery document names a templated issuer, not
		// its own URL; each token's issuer is checked against the
		// template instead (see oidcUpstream.exchange).
		ctx = oidc.InsecureIssuerURLContext(ctx, fmt.Sprintf(u.endpoints.MicrosoftIssuerFormat, "{tenantid}"))
	}
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	u.mu.Lock()
	if len(u.cached) >= maxCachedProviders {
		u.cached = map[string]cachedProvider{}
	}
	u.cached[key] = cachedProvider{version: p.Version, issuer: issuer, provider: provider, fetched: u.now()}
	u.mu.Unlock()
	return provider, nil
}

// oidcUpstream is an OpenID Connect provider: authorization code flow with
// PKCE, and an ID token checked by go-oidc (signature with the provider's
// published keys, issuer, audience, expiry) and by us (nonce).
type oidcUpstream struct {
	conf         oauth2.Config
	client       *http.Client
	provider     *oidc.Provider
	verifier     *oidc.IDTokenVerifier
	providerID   string
	issuerFormat string // set for Microsoft's any-directory endpoint
}

func (o *oidcUpstream) authURL(redirectURI, state, nonce, verifier string) string {
	conf := o.conf
	conf.RedirectURL = redirectURI
	return conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
}

// idClaims are the ID token claims identity reads. email_verified is a
// boolean in the specification, but some providers send the string
// "true", which counts too.
type idClaims struct {
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
	TenantID      string          `json:"tid"`
}

func (c idClaims) emailVerified() bool {
	var b bool
	if json.Unmarshal(c.EmailVerified, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(c.EmailVerified, &s) == nil && s == "true"
}

func (o *oidcUpstream) exchange(ctx context.Context, redirectURI, code, nonce, verifier string) (account.FederatedClaims, error) {
	conf := o.conf
	conf.RedirectURL = redirectURI
	tok, err := conf.Exchange(oidc.ClientContext(ctx, o.client), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return account.FederatedClaims{}, fmt.Errorf("token request: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return account.FederatedClaims{}, errors.New("the token response has no ID token")
	}
	idToken, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return account.FederatedClaims{}, fmt.Errorf("ID token: %w", err)
	}
	if idToken.Nonce != nonce {
		return account.FederatedClaims{}, errors.New("ID token: nonce does not match this sign-in's")
	}
	var claims idClaims
	if err := idToken.Claims(&claims); err != nil {
		return account.FederatedClaims{}, fmt.Errorf("ID token claims: %w", err)
	}
	if o.issuerFormat != "" && (claims.TenantID == "" || idToken.Issuer != fmt.Sprintf(o.issuerFormat, claims.TenantID)) {
		return account.FederatedClaims{}, fmt.Errorf("ID token: issuer %q is not the directory %q's", idToken.Issuer, claims.TenantID)
	}
	if claims.Email == "" && o.provider.UserInfoEndpoint() != "" {
		// Many providers (Tenantry's own, oidc-provider) put profile
		// claims in the ID token only when no access token comes with it:
		// then userinfo has them, for the same subject (OpenID Connect
		// Core, section 5.3.2).
		info, err := o.provider.UserInfo(oidc.ClientContext(ctx, o.client), oauth2.StaticTokenSource(tok))
		if err != nil {
			return account.FederatedClaims{}, fmt.Errorf("userinfo: %w", err)
		}
		if info.Subject != idToken.Subject {
			return account.FederatedClaims{}, errors.New("userinfo is about another subject than the ID token")
		}
		if err := info.Claims(&claims); err != nil {
			return account.FederatedClaims{}, fmt.Errorf("userinfo claims: %w", err)
		}
	}
	verified := claims.emailVerified()
	if o.issuerFormat != "" {
		// Microsoft sends no email_verified, and the email claim of a
		// directory account is whatever its admins typed: never vouched.
		verified = false
	}
	return account.FederatedClaims{ProviderID: o.providerID, Subject: idToken.Subject, Email: claims.Email,
		EmailVerified: verified, Name: claims.Name}, nil
}

// githubUpstream is GitHub: plain OAuth 2.0 (no ID token), then its REST
// API for the user's id and their verified primary email.
type githubUpstream struct {
	conf   oauth2.Config
	client *http.Client
	api    string
}

func (g *githubUpstream) authURL(redirectURI, state, _, verifier string) string {
	conf := g.conf
	conf.RedirectURL = redirectURI
	return conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
}

func (g *githubUpstream) exchange(ctx context.Context, redirectURI, code, _, verifier string) (account.FederatedClaims, error) {
	conf := g.conf
	conf.RedirectURL = redirectURI
	ctx = context.WithValue(ctx, oauth2.HTTPClient, g.client)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return account.FederatedClaims{}, fmt.Errorf("token request: %w", err)
	}
	client := conf.Client(ctx, tok)
	var user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := g.getJSON(ctx, client, "/user", &user); err != nil {
		return account.FederatedClaims{}, err
	}
	if user.ID <= 0 {
		return account.FederatedClaims{}, errors.New("GitHub's /user has no id")
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := g.getJSON(ctx, client, "/user/emails", &emails); err != nil {
		return account.FederatedClaims{}, err
	}
	claims := account.FederatedClaims{Subject: strconv.FormatInt(user.ID, 10), Name: cmpOr(user.Name, user.Login)}
	for _, e := range emails {
		if e.Primary {
			claims.Email, claims.EmailVerified = e.Email, e.Verified
		}
	}
	return claims, nil
}

func (g *githubUpstream) getJSON(ctx context.Context, client *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.api+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GitHub %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GitHub %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GitHub %s: %s", path, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GitHub %s: %w", path, err)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

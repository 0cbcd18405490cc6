package oidcop

import (
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"tenantry.dev/identity/internal/account"
)

// client is an OAuth client registered in a tenant, as the library sees it.
type client struct {
	c         *account.OAuthClient
	accessTTL time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType decides how the library matches redirect URIs: a public
// client whose URIs are loopback or custom schemes is a native app (RFC
// 8252: any loopback port), any other public client a browser app.
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.Type == account.ClientConfidential {
		return op.ApplicationTypeWeb
	}
	for _, u := range c.c.RedirectURIs {
		web := strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
		if _, loopback := op.HTTPLoopbackOrLocalhost(u); web && !loopback {
			return op.ApplicationTypeUserAgent
		}
	}
	return op.ApplicationTypeNative
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Type == account.ClientConfidential {
		// Basic also accepts client_secret_post: the library reads the
		// credentials from either place for it.
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

// LoginURL is where /oauth/authorize sends the browser: the step that
// finds (or asks for) the logged-in user. Relative, on the tenant's host.
func (c *client) LoginURL(id string) string { return loginPath + "?id=" + id }

func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

func (c *client) IDTokenLifetime() time.Duration { return c.accessTTL }

// DevMode lets the library accept an http redirect URI that a client has
// registered. Registration (account.checkRedirectURI) is what decides
// which http URIs may be registered at all (loopback and *.localhost), and
// the match stays exact.
func (c *client) DevMode() bool { return true }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) IsScopeAllowed(scope string) bool { return slices.Contains(c.c.Scopes, scope) }

// IDTokenUserinfoClaimsAssertion is false: with an access token, the ID
// token carries no profile claims; userinfo has them.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }

func (c *client) ClockSkew() time.Duration { return 0 }

// authRequest is an account.AuthRequest as the library sees it. grant is
// set once the code exchange opened the grant, for the claims of the
// tokens issued in the same response.
type authRequest struct {
	r     *account.AuthRequest
	grant *account.Grant
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string         { return a.r.ID }
func (a *authRequest) GetACR() string        { return "" }
func (a *authRequest) GetAMR() []string      { return a.r.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.r.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.r.AuthTime
}
func (a *authRequest) GetClientID() string { return a.r.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.r.Params.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.r.Params.CodeChallenge, Method: oidc.CodeChallengeMethod(a.r.Params.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string       { return a.r.Params.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.r.Params.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.r.Params.ResponseType)
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.r.Params.ResponseMode)
}
func (a *authRequest) GetScopes() []string { return a.r.Params.Scopes }
func (a *authRequest) GetState() string    { return a.r.Params.State }
func (a *authRequest) GetSubject() string  { return a.r.UserID }
func (a *authRequest) Done() bool          { return a.r.Done() }

// refreshRequest is a grant whose refresh token was just rotated: the
// rotation happens when the token is read (TokenRequestByRefreshToken),
// where reuse is detected, and the new token is handed out by
// CreateAccessAndRefreshTokens. It must not be an op.AuthRequest (the
// library tells the two apart by type).
type refreshRequest struct {
	clientID string
	grant    account.Grant
	scopes   []string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string                    { return r.grant.AMR }
func (r *refreshRequest) GetAudience() []string               { return []string{r.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time              { return r.grant.AuthTime }
func (r *refreshRequest) GetClientID() string                 { return r.clientID }
func (r *refreshRequest) GetScopes() []string                 { return r.scopes }
func (r *refreshRequest) GetSubject() string                  { return r.grant.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string)         { r.scopes = s }
func (r *refreshRequest) grantInfo() *account.Grant           { return &r.grant }
func (a *authRequest) grantInfo() *account.Grant              { return a.grant }
func (c *clientCredentialsRequest) grantInfo() *account.Grant { return nil }

// clientCredentialsRequest is a service client asking for a token of its
// own: the subject is the client.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

var _ op.TokenRequest = (*clientCredentialsRequest)(nil)

func (c *clientCredentialsRequest) GetSubject() string    { return c.clientID }
func (c *clientCredentialsRequest) GetAudience() []string { return []string{c.clientID} }
func (c *clientCredentialsRequest) GetScopes() []string   { return c.scopes }

// signingKey is a current key, as the library signs with it.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.kid }

// publicKey is a key of the JWKS.
type publicKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any
}

func (k *publicKey) ID() string                         { return k.kid }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

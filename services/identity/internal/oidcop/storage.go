package oidcop

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/token"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// storage is the library's view of identity: a stateless adapter over
// account.Manager, in the tenant the request's host names (set on the
// context by the provider's middleware). Every refusal is an *oidc.Error
// on purpose: the library answers any other error with a 500.
type storage struct {
	p *Provider
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// Context values the provider's middleware and overrides set.
type (
	tenantKey  struct{}
	clientKey  struct{}
	memoKey    struct{}
	bindingKey struct{}
	callerKey  struct{}
	logoutKey  struct{}
)

// requestMemo is what one request to the provider remembers between the
// library's calls of storage: the client it read, and whether the next
// key asked for signs an access token. A request is one goroutine.
type requestMemo struct {
	client          *account.OAuthClient
	accessTokenNext bool
}

func memoOf(ctx context.Context) *requestMemo {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	return m
}

func tenantOf(ctx context.Context) tenancy.Tenant {
	t, _ := ctx.Value(tenantKey{}).(tenancy.Tenant)
	return t
}

func callerOf(ctx context.Context) account.Client {
	c, _ := ctx.Value(callerKey{}).(account.Client)
	return c
}

// serverError logs err and gives the library the error it answers with
// 500: the caller learns nothing of the cause.
func (s *storage) serverError(ctx context.Context, err error, what string) *oidc.Error {
	s.p.cfg.Logger.ErrorContext(ctx, "OpenID Provider: "+what, "err", err)
	return oidc.ErrServerError().WithParent(err)
}

// refusal maps an error of account.Manager: faults a person caused become
// the OAuth error given, anything else a server error.
func (s *storage) refusal(ctx context.Context, err error, what string, as func() *oidc.Error) error {
	if f, ok := fault.As(err); ok && f.Kind != fault.Internal && f.Kind != fault.Unavailable {
		return as().WithDescription("%s", f.Message)
	}
	if errors.Is(err, account.ErrAuthCodeInvalid) {
		return as().WithDescription("%s", err.Error())
	}
	return s.serverError(ctx, err, what)
}

// grantTokenID names an access token of a grant: the grant id, a dot, and
// random bits (the jti). Userinfo, introspection and revocation reach the
// grant from it without a table of access tokens.
func grantTokenID(grantID string) string { return grantID + "." + rand.Text() }

// serviceTokenPrefix starts the id of a client_credentials token.
const serviceTokenPrefix = "svc."

func grantOfTokenID(tokenID string) (string, bool) {
	id, _, ok := strings.Cut(tokenID, ".")
	if !ok {
		return "", false
	}
	if _, err := uuid.Parse(id); err != nil {
		return "", false
	}
	return id, true
}

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	binding, _ := ctx.Value(bindingKey{}).([]byte)
	if binding == nil {
		return nil, s.serverError(ctx, errors.New("no binding cookie on the authorization request"), "create authorization request")
	}
	params := account.AuthParams{
		RedirectURI: req.RedirectURI, Scopes: req.Scopes, State: req.State, Nonce: req.Nonce,
		ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: req.Prompt, LoginHint: req.LoginHint,
	}
	if req.MaxAge != nil {
		v := uint(*req.MaxAge)
		params.MaxAge = &v
	}
	r := &account.AuthRequest{ClientID: req.ClientID, Params: params, BindingHash: binding}
	if err := s.p.cfg.Accounts.CreateAuthRequest(ctx, tenantOf(ctx), r); err != nil {
		return nil, s.serverError(ctx, err, "create authorization request")
	}
	return &authRequest{r: r}, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.p.cfg.Accounts.AuthRequest(ctx, tenantOf(ctx), id, nil)
	if err != nil {
		return nil, s.refusal(ctx, err, "read authorization request", oidc.ErrInvalidRequest)
	}
	return &authRequest{r: r}, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.p.cfg.Accounts.AuthRequestByCode(ctx, tenantOf(ctx), code)
	if err != nil {
		return nil, s.refusal(ctx, err, "exchange authorization code", oidc.ErrInvalidGrant)
	}
	return &authRequest{r: r}, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	if err := s.p.cfg.Accounts.SaveAuthCode(ctx, tenantOf(ctx), id, code); err != nil {
		return s.refusal(ctx, err, "save authorization code", oidc.ErrInvalidRequest)
	}
	return nil
}

// DeleteAuthRequest keeps the request: its code is marked used by the
// exchange, so that a replay is recognised (and ends the grant) until the
// sweep removes it.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	exp := time.Now().Add(s.p.cfg.AccessTTL)
	switch r := req.(type) {
	case *authRequest:
		g, err := s.p.cfg.Accounts.ExchangeAuthCode(ctx, tenantOf(ctx), r.r, false, callerOf(ctx))
		if err != nil {
			return "", time.Time{}, s.refusal(ctx, err, "open grant", oidc.ErrInvalidGrant)
		}
		r.grant = &g
		return grantTokenID(g.ID), exp, nil
	case *clientCredentialsRequest:
		return serviceTokenPrefix + rand.Text(), exp, nil
	}
	return "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, _ string) (string, string, time.Time, error) {
	exp := time.Now().Add(s.p.cfg.AccessTTL)
	switch r := req.(type) {
	case *authRequest:
		g, err := s.p.cfg.Accounts.ExchangeAuthCode(ctx, tenantOf(ctx), r.r, true, callerOf(ctx))
		if err != nil {
			return "", "", time.Time{}, s.refusal(ctx, err, "open grant", oidc.ErrInvalidGrant)
		}
		r.grant = &g
		return grantTokenID(g.ID), g.RefreshToken, exp, nil
	case *refreshRequest:
		// Rotated already, when the token was read.
		return grantTokenID(r.grant.ID), r.grant.RefreshToken, exp, nil
	}
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// TokenRequestByRefreshToken rotates the token: for the client that
// authenticated at the token endpoint only, with the reuse detection of
// RefreshSession (a token rotated away ends the grant).
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	c, ok := ctx.Value(clientKey{}).(*client)
	if !ok {
		return nil, oidc.ErrInvalidClient()
	}
	g, err := s.p.cfg.Accounts.RefreshGrant(ctx, tenantOf(ctx), c.GetID(), token, callerOf(ctx))
	if err != nil {
		return nil, s.refusal(ctx, err, "refresh grant", oidc.ErrInvalidGrant)
	}
	return &refreshRequest{clientID: c.GetID(), grant: g, scopes: g.Scopes}, nil
}

// TerminateSession is not used: TerminateSessionFromRequest is.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// TerminateSessionFromRequest ends the browser session an ID token names
// (its sid) and every grant made from it, and clears the browser's
// cookies. Without a valid id_token_hint nothing is ended: a link anyone
// can send must not log people out; the user is sent to the account page,
// where they can log out themselves.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if req.IDTokenHintClaims == nil {
		return accountPath, nil
	}
	sid, _ := req.IDTokenHintClaims.Claims["sid"].(string)
	if sid != "" {
		if err := s.p.cfg.Accounts.EndBrowserSession(ctx, tenantOf(ctx), sid, req.ClientID, callerOf(ctx)); err != nil {
			return "", s.serverError(ctx, err, "end browser session")
		}
	}
	if clear, ok := ctx.Value(logoutKey{}).(func()); ok {
		clear()
	}
	if req.RedirectURI == "" {
		return loggedOutPath, nil
	}
	return req.RedirectURI, nil
}

func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	grant, ok := grantOfTokenID(tokenOrID)
	if !ok {
		grant, ok = s.p.cfg.Accounts.GrantOfRefreshToken(tenantOf(ctx), tokenOrID)
	}
	if !ok {
		return nil // RFC 7009: an unknown token is no error
	}
	if err := s.p.cfg.Accounts.EndGrant(ctx, tenantOf(ctx), grant, clientID); err != nil {
		return s.serverError(ctx, err, "revoke token")
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, _ string, token string) (string, string, error) {
	grant, ok := s.p.cfg.Accounts.GrantOfRefreshToken(tenantOf(ctx), token)
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return "", grant + ".refresh", nil
}

// SigningKey is the tenant's current key of the algorithm the client
// registered for its ID tokens (RS256 unless it chose EdDSA), except for
// access tokens, which are always EdDSA: the algorithm a relying party
// registers is its ID tokens' (OpenID Connect Registration), access tokens
// are for resource servers, which read the tenant's JWKS (RFC 9068 asks
// them to support RS256, not servers to use it), and an RSA-2048 signature
// costs 1.4 ms here where Ed25519 costs ~50 µs: signing both tokens with
// RSA was most of the token endpoint's CPU. The library asks for one key
// per token and does not say which token it signs; it reads an access
// token's private claims (GetPrivateClaimsFromRequest) just before asking
// for its key, which marks the request (TestOpenIDProviderWithGoOIDC
// checks both tokens' algorithms, so a library that changes that order
// fails it). The token endpoint's overrides put the client on the
// context. A tenant's first RS256 token makes its RSA key.
func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	alg := token.AlgRS256
	if c, ok := ctx.Value(clientKey{}).(*client); ok && c.c.IDTokenAlg == account.SigningEdDSA {
		alg = token.AlgEdDSA
	}
	if m := memoOf(ctx); m != nil && m.accessTokenNext {
		m.accessTokenNext = false
		alg = token.AlgEdDSA
	}
	kid, key, err := s.p.cfg.Keys.SigningKey(ctx, tenantOf(ctx).UID, alg)
	if err != nil {
		return nil, s.serverError(ctx, err, "read the signing key")
	}
	return &signingKey{kid: kid, alg: jose.SignatureAlgorithm(alg), key: key}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA}, nil
}

// KeySet is the tenant's keys: its /oauth/keys, and what the library
// checks the tenant's own tokens with.
func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	pub, err := s.p.cfg.Keys.PublicKeys(ctx, tenantOf(ctx).UID)
	if err != nil {
		return nil, s.serverError(ctx, err, "read the public keys")
	}
	keys := make([]op.Key, len(pub))
	for i, k := range pub {
		keys[i] = &publicKey{kid: k.KID, alg: jose.SignatureAlgorithm(k.Alg), key: k.Key}
	}
	return keys, nil
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.cfg.Accounts.OAuthClient(ctx, tenantOf(ctx), id)
	if err != nil {
		return nil, s.refusal(ctx, err, "read client", oidc.ErrInvalidClient)
	}
	if m := memoOf(ctx); m != nil {
		m.client = c
	}
	if c.Disabled {
		return nil, oidc.ErrInvalidClient().WithDescription("the client is disabled")
	}
	return &client{c: c, accessTTL: s.p.accessTTL(c)}, nil
}

// AuthorizeClientIDSecret checks the secret against the client the
// library has just read for this request (GetClientByClientID), rather
// than reading it a second time.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if m := memoOf(ctx); m != nil && m.client != nil && m.client.ID == id {
		if err := account.CheckClientSecret(m.client, secret); err != nil {
			return s.refusal(ctx, err, "verify client secret", oidc.ErrInvalidClient)
		}
		return nil
	}
	if _, err := s.p.cfg.Accounts.VerifyClientSecret(ctx, tenantOf(ctx), id, secret); err != nil {
		return s.refusal(ctx, err, "verify client secret", oidc.ErrInvalidClient)
	}
	return nil
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.p.cfg.Accounts.VerifyClientSecret(ctx, tenantOf(ctx), id, secret)
	if err != nil {
		return nil, s.refusal(ctx, err, "verify client secret", oidc.ErrInvalidClient)
	}
	if !c.HasGrant(account.GrantClientCredentials) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the client may not use the client_credentials grant")
	}
	if m := memoOf(ctx); m != nil {
		m.client = c
	}
	return &client{c: c, accessTTL: s.p.accessTTL(c)}, nil
}

// ClientCredentialsTokenRequest grants the scopes of the tenant's own the
// client is allowed; OpenID scopes mean nothing without a user.
// The client is the one ClientCredentials has just read and
// authenticated for this request, when there is one.
func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	var c *account.OAuthClient
	if m := memoOf(ctx); m != nil && m.client != nil && m.client.ID == id {
		c = m.client
	} else {
		var err error
		if c, err = s.p.cfg.Accounts.OAuthClient(ctx, tenantOf(ctx), id); err != nil {
			return nil, s.refusal(ctx, err, "read client", oidc.ErrInvalidClient)
		}
	}
	granted := []string{}
	for _, sc := range scopes {
		if slices.Contains(c.Scopes, sc) && !slices.Contains(userScopes, sc) {
			granted = append(granted, sc)
		}
	}
	return &clientCredentialsRequest{clientID: id, scopes: granted}, nil
}

// userScopes are the OpenID Connect scopes, which only a user's grant has.
var userScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// SetUserinfoFromScopes is deprecated by the library; the FromRequest
// and FromToken forms do the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// setUserinfo fills the claims the scopes allow, and tid.
func (s *storage) setUserinfo(ctx context.Context, info *oidc.UserInfo, u *account.User, scopes []string) {
	t := tenantOf(ctx)
	info.Subject = u.ID
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.DisplayName
		info.PreferredUsername = u.Username
		info.UpdatedAt = oidc.FromTime(u.UpdateTime)
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(u.EmailVerified)
	}
	info.AppendClaims("tid", t.Slug)
}

// SetUserinfoFromRequest fills the ID token's claims: the user's as
// scopes allow, tid, and sid, the browser session (end_session ends it).
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, err := s.p.cfg.Accounts.User(ctx, tenantOf(ctx), req.GetSubject())
	if err != nil {
		return s.refusal(ctx, err, "read user", oidc.ErrInvalidGrant)
	}
	s.setUserinfo(ctx, info, u, scopes)
	if a, ok := req.(*authRequest); ok && a.r.SSOSessionID != "" {
		info.AppendClaims("sid", a.r.SSOSessionID)
	}
	return nil
}

// SetUserinfoFromToken answers /userinfo for an access token whose grant
// is still open.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	grant, ok := grantOfTokenID(tokenID)
	if !ok {
		return oidc.ErrAccessDenied().WithDescription("the token is not a user's")
	}
	g, u, err := s.p.cfg.Accounts.GrantInfo(ctx, tenantOf(ctx), grant)
	if err != nil || u.ID != subject || g.ClientID == "" {
		return oidc.ErrAccessDenied().WithDescription("the token's grant has ended")
	}
	s.setUserinfo(ctx, info, u, g.Scopes)
	return nil
}

// SetIntrospectionFromToken answers RFC 7662 for the client the token was
// issued to (its aud); for anyone else, and for ended grants, the token is
// inactive. The library takes any error for "inactive" (and nil for
// active), so inactive is errInactive, not nil.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t := tenantOf(ctx)
	if strings.HasPrefix(tokenID, serviceTokenPrefix) {
		if subject != clientID {
			return errInactive
		}
		c, err := s.p.cfg.Accounts.OAuthClient(ctx, t, clientID)
		if err != nil || c.Disabled {
			return errInactive
		}
		resp.Active, resp.ClientID, resp.Subject = true, clientID, clientID
		resp.TokenType = oidc.BearerToken
		resp.Claims = map[string]any{"tid": t.Slug}
		return nil
	}
	grant, ok := grantOfTokenID(tokenID)
	if !ok {
		return errInactive
	}
	g, u, err := s.p.cfg.Accounts.GrantInfo(ctx, t, grant)
	if err != nil || u.ID != subject || g.ClientID != clientID {
		return errInactive
	}
	resp.Active = true
	resp.Scope = g.Scopes
	resp.ClientID = g.ClientID
	resp.Subject = u.ID
	resp.Username = u.Email
	resp.TokenType = oidc.BearerToken
	resp.Claims = map[string]any{"tid": t.Slug, "sid": g.SSOSessionID}
	return nil
}

// errInactive tells the library a token is not active.
var errInactive = oidc.ErrInvalidRequest().WithDescription("inactive token")

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest gives access tokens what product services
// need beyond the registered claims: the tenant and the user's roles.
func (s *storage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	if m := memoOf(ctx); m != nil {
		m.accessTokenNext = true // see SigningKey
	}
	t := tenantOf(ctx)
	claims := map[string]any{"tid": t.Slug, "tuid": t.UID, "scope": strings.Join(req.GetScopes(), " ")}
	type withGrant interface{ grantInfo() *account.Grant }
	if wg, ok := req.(withGrant); ok {
		if g := wg.grantInfo(); g != nil {
			claims["roles"] = append([]string{}, g.Roles...)
			claims["sid"] = g.ID
		}
	}
	return claims, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (s *storage) Health(context.Context) error { return nil }

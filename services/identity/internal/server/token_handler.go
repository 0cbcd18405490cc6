package server

import (
	"context"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/token"
	"tenantry.dev/platform/fault"
)

// tokenVerifier is what the handlers need from the token issuer.
type tokenVerifier interface {
	Verify(tok string) (token.Claims, error)
	VerifyForTenant(tok, tenant string) (token.Claims, error)
	JWKS(ctx context.Context, tenantUID string) ([]token.JWK, error)
}

// GetJwks implements TokenServiceServer: the keys of the tenant of the
// call, each tenant signing with its own.
func (s *Server) GetJwks(ctx context.Context, _ *identityv1.GetJwksRequest) (*identityv1.GetJwksResponse, error) {
	jwks, err := s.tokens.JWKS(ctx, tenantFrom(ctx).UID)
	if err != nil {
		return nil, fault.New(fault.Unavailable, "SIGNING_KEYS_UNAVAILABLE", "the tenant's signing keys cannot be read now; retry").WithCause(err)
	}
	resp := &identityv1.GetJwksResponse{}
	for _, k := range jwks {
		resp.Keys = append(resp.Keys, &identityv1.Jwk{Kty: k.Kty, Crv: k.Crv, X: k.X, Kid: k.Kid, Use: k.Use, Alg: k.Alg})
	}
	return resp, nil
}

// IntrospectToken implements TokenServiceServer. Like RFC 7662, an invalid
// token is not an error: the answer is simply "not active".
func (s *Server) IntrospectToken(ctx context.Context, req *identityv1.IntrospectTokenRequest) (*identityv1.IntrospectTokenResponse, error) {
	if req.GetToken() == "" {
		return nil, fault.Invalid("token", "TOKEN_REQUIRED", "give the access token to check")
	}
	claims, err := s.tokens.Verify(req.GetToken())
	if err != nil {
		return &identityv1.IntrospectTokenResponse{}, nil
	}
	t, ok, err := s.tenantOfToken(ctx, claims)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &identityv1.IntrospectTokenResponse{}, nil
	}
	u, err := s.accounts.CheckSession(ctx, t, claims.Subject, claims.Session)
	if f, isFault := fault.As(err); err != nil && (!isFault || f.Kind == fault.Internal || f.Kind == fault.Unavailable) {
		// An outage is not an answer: "inactive" would log users out.
		return nil, err
	}
	if err != nil {
		return &identityv1.IntrospectTokenResponse{}, nil
	}
	return &identityv1.IntrospectTokenResponse{
		Active:    true,
		Sub:       claims.Subject,
		Tid:       t.Slug,
		TenantUid: t.UID,
		Sid:       claims.Session,
		Roles:     append([]string{}, u.Roles...),
		Iss:       claims.Issuer,
		Exp:       claims.ExpiresAt.Unix(),
		Iat:       claims.IssuedAt.Unix(),
	}, nil
}

package server

import (
	"context"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/token"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
)

// Roles of identity's callers.
const (
	RoleOperator = "operator" // the operator credential
	RoleService  = "service"  // other services: introspection
	RoleUser     = "user"     // a user's access token
	RoleAdmin    = "admin"    // a user's access token with the admin role
)

// accessTokens authenticates users' access tokens for authn's chain,
// after the static operator and service tokens.
type accessTokens struct {
	issuer *token.Issuer
}

func (a accessTokens) Authenticate(_ context.Context, tok string) (authn.Principal, error) {
	claims, err := a.issuer.Verify(tok)
	if err != nil {
		return authn.Principal{}, err
	}
	role := RoleUser
	for _, r := range claims.Roles {
		if r == account.RoleAdmin {
			role = RoleAdmin
		}
	}
	return authn.Principal{Role: role, Subject: claims.Subject, Tenant: claims.Tenant, Session: claims.Session}, nil
}

// currentUser returns the user and session of the access token of the call,
// checking that the session is still open: a logged-out session's access
// tokens stop working in identity at once.
func (s *Server) currentUser(ctx context.Context) (*account.User, string, error) {
	p, ok := authn.PrincipalFrom(ctx)
	if !ok || p.Subject == "" || p.Session == "" {
		return nil, "", fault.New(fault.Unauthenticated, "USER_TOKEN_REQUIRED",
			"this method needs a user's access token: send 'authorization: Bearer <access token>' from Login")
	}
	u, err := s.accounts.CheckSession(ctx, tenantFrom(ctx), p.Subject, p.Session)
	if err != nil {
		return nil, "", err
	}
	return u, p.Session, nil
}

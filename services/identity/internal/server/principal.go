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
// after the static operator and service tokens. A token is good only in
// the tenant of the call (by the tenant's immutable uid, so not in a
// tenant that took a purged tenant's slug), while its session is open and
// its user exists and is enabled; the role is decided from the user's
// roles now, not from those the token was signed with. This is the one
// check every method taking a user's token goes through: a logout,
// demotion, disable or deletion cuts the token off at its next call. The
// answers come from the session cache, kept exact across replicas.
type accessTokens struct {
	issuer   *token.Issuer
	accounts *account.Manager
}

func (a accessTokens) Authenticate(ctx context.Context, tok string) (authn.Principal, error) {
	t, ok := scopedTenant(ctx)
	if !ok {
		// Checked first: only the keys of the call's tenant are ever read
		// for a token anyone can send.
		return authn.Principal{}, fault.New(fault.Unauthenticated, "USER_TOKEN_NOT_ACCEPTED",
			"a user's access token is accepted only in calls of its own tenant; name the tenant ('x-tenant') or use a service credential")
	}
	claims, err := a.issuer.VerifyForTenant(tok, t.UID)
	if f, isFault := fault.As(err); isFault && f.Reason == token.ReasonWrongTenant {
		return authn.Principal{}, fault.New(fault.Unauthenticated, token.ReasonWrongTenant,
			"this access token belongs to another tenant; log in to %q", t.Slug)
	}
	if err != nil {
		return authn.Principal{}, err
	}
	u, err := a.accounts.CheckSession(ctx, t, claims.Subject, claims.Session)
	if err != nil {
		return authn.Principal{}, err
	}
	role := RoleUser
	if u.HasRole(account.RoleAdmin) {
		role = RoleAdmin
	}
	return authn.Principal{Role: role, Subject: u.ID, Tenant: t.UID, Session: claims.Session, Record: u}, nil
}

// currentUser returns the user and session of the access token of the
// call, as authentication found them: the session open, the user enabled.
func (s *Server) currentUser(ctx context.Context) (*account.User, string, error) {
	p, ok := authn.PrincipalFrom(ctx)
	u, isUser := p.Record.(*account.User)
	if !ok || !isUser || p.Session == "" {
		return nil, "", fault.New(fault.Unauthenticated, "USER_TOKEN_REQUIRED",
			"this method needs a user's access token: send 'authorization: Bearer <access token>' from Login")
	}
	return u, p.Session, nil
}

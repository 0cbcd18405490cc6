package authn

import "context"

// Principal is an authenticated caller.
type Principal struct {
	// Role is what the Policy checks, e.g. "operator" or "service".
	Role string
	// Subject identifies the caller more precisely when the authenticator
	// knows who it is (a user or client id). Static tokens name only a
	// role, so for them it is empty.
	Subject string
	// Tenant is the immutable id (uid) of the tenant a credential is bound
	// to (a user's access token is only good in its own tenant); empty for
	// credentials that are not. An authenticator that sets it has checked
	// it against the tenant of the request.
	Tenant string
	// Session identifies the login a credential comes from, if any.
	Session string
	// Record is what the authenticator looked up about the caller while
	// checking the credential (for a user's access token, the user as
	// stored now), so that handlers need not look it up again. authn never
	// reads it.
	Record any
}

// principalKey is the context key of the Principal; unexported so that only
// this package can set it.
type principalKey struct{}

// WithPrincipal returns a context carrying p. The Guard calls it after
// authenticating; tests and in-process callers may call it directly.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the authenticated caller of the current call. It
// reports false for public methods and outside an authenticated call.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// RoleFrom returns the role of the authenticated caller of the current call.
func RoleFrom(ctx context.Context) (string, bool) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return "", false
	}
	return p.Role, true
}

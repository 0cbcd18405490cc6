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

// principalKey is the context key of the call's admission; unexported so
// that only this package can set it.
type principalKey struct{}

// admission is what a context carries of its call's caller: the Principal
// and, when a Guard let the call in, what Recheck needs to decide again.
// One value under one key, so that the Guard adds nothing to a call's
// allocations for Recheck's sake.
type admission struct {
	principal Principal
	// guard is nil for a Principal set by WithPrincipal: nothing to check
	// again.
	guard  *Guard
	method string
	// token is the caller's bearer token, already in the call's metadata
	// for as long as the call lives; kept here because a call that came
	// over HTTP (AuthorizeHeader) has no metadata.
	token string
}

// String and GoString keep the token out of anything that prints an
// admission, with %v, %+v or %#v alike.
func (a admission) String() string { return "authn admission to " + a.method }

// GoString implements fmt.GoStringer; see String.
func (a admission) GoString() string { return a.String() }

// WithPrincipal returns a context carrying p, as if a Guard had let the
// call in, for tests and in-process callers. In a call a Guard let in, p
// replaces the Principal and Recheck still decides again as the Guard
// would (an interceptor that enriches the Principal does not turn the
// re-check off); elsewhere Recheck has nothing to check again: no Guard
// vouched for p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	a := &admission{principal: p}
	if prev, ok := ctx.Value(principalKey{}).(*admission); ok {
		a.guard, a.method, a.token = prev.guard, prev.method, prev.token
	}
	return context.WithValue(ctx, principalKey{}, a)
}

// PrincipalFrom returns the authenticated caller of the current call. It
// reports false for public methods and outside an authenticated call.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	a, ok := ctx.Value(principalKey{}).(*admission)
	if !ok {
		return Principal{}, false
	}
	return a.principal, true
}

// RoleFrom returns the role of the authenticated caller of the current call.
func RoleFrom(ctx context.Context) (string, bool) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return "", false
	}
	return p.Role, true
}

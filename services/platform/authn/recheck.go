package authn

import "context"

// Recheck decides again whether the caller of the call in ctx may call
// its method, as the Guard decided when the call began: it authenticates
// the same bearer token again and checks the Principal's role against the
// method's policy. It returns nil while the call would still be let in,
// and otherwise the error the call would get if it were made now, with
// the Guard's reasons (the Authenticator's own fault, such as an expired
// token or an ended session, UNAUTHENTICATED INVALID_CREDENTIALS for a
// token no longer known, PERMISSION_DENIED ROLE_NOT_ALLOWED for a role
// that no longer may call the method). Its errors are Authorize's:
// *fault.Error values, which grpcerr turns into statuses.
//
// It is for calls that outlive their credentials: a server stream checked
// only when it opened would go on serving a caller who has since logged
// out, been demoted or disabled, or whose token has expired. Such a
// stream calls Recheck before it sends more and ends with its error.
// Recheck costs what authenticating a new call costs, so an Authenticator
// that answers new calls from memory answers it from memory too. A static
// token is configuration and passes as long as the Guard's Authenticator
// knows it.
//
// A context no Guard let in has nothing to check again and passes: a call
// of a public method, or a Principal set by WithPrincipal outside any call
// a Guard let in (inside one, WithPrincipal keeps the Guard's re-check).
// The context must be the call's own (the stream's Context), so that an
// Authenticator finds there what it found when the call began, such as the
// call's tenant.
func Recheck(ctx context.Context) error {
	a, ok := ctx.Value(principalKey{}).(*admission)
	if !ok || a.guard == nil {
		return nil
	}
	_, err := a.guard.admit(ctx, a.method, a.token)
	return err
}

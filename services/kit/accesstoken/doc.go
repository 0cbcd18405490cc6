// Package accesstoken lets a service built on Tenantry check identity's
// access tokens itself, with identity's published keys (its JWKS, from
// TokenService.GetJwks), without a call to identity per request.
//
// What it guarantees: a token is accepted only if it is an EdDSA-signed
// JWT of type at+jwt from a key identity publishes now, of the configured
// issuer, not expired (with a little clock leeway), and bound to the tenant
// the request is for by that tenant's immutable uid (claim tuid): a token of
// another tenant, or of a purged tenant whose slug was taken again, is
// refused. The signature check is golang-jwt's; this package only decides
// which keys and claims are acceptable.
//
// A token that passed those checks is remembered (by the SHA-256 of its
// text, up to a bounded number of tokens) until its exp, never later, so
// that the signature of a token used again is not checked again: each call
// still checks the tenant binding, and a token is checked in full again
// once its exp has passed or identity's keys have been fetched again (a key
// identity stopped publishing stops being trusted at once).
//
// What it cannot know: that the session was logged out, the user disabled
// or demoted since the token was signed (within its 15 minutes). Calls
// that must know ask identity's IntrospectToken instead.
package accesstoken

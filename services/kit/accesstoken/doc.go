// Package accesstoken lets a service built on Tenantry check identity's
// access tokens itself, with identity's published keys (each tenant's
// JWKS, from TokenService.GetJwks naming the tenant), without a call to
// identity per request.
//
// What it guarantees: a token is accepted only if it is an EdDSA-signed
// JWT of type at+jwt from a key identity publishes now for the tenant the
// request is for, of the configured issuer, not expired (with a little
// clock leeway), and bound to that tenant by its immutable uid (claim
// tuid): a token of another tenant, or of a purged tenant whose slug was
// taken again, is refused. The signature check is golang-jwt's; this
// package only decides which keys and claims are acceptable.
//
// Each tenant signs with keys of its own, so a Verifier keeps one key set
// per tenant (of at most a thousand tenants; one let go is fetched again at
// its next token): fetched at the tenant's first token, and again, at most
// once a second per tenant, when a token names a kid the tenant's set
// lacks (identity rotated the tenant's key). A token whose tuid names
// another tenant than the request's is refused with ACCESS_TOKEN_WRONG_TENANT
// before any key is looked at, so it fetches nothing; every other token is
// checked with the request's tenant's keys only, which no other tenant's
// key is among.
//
// A token that passed those checks is remembered (by the SHA-256 of its
// text, up to a bounded number of tokens) until its exp, never later, so
// that the signature of a token used again is not checked again: each call
// still checks the tenant binding, and a token is checked in full again
// once its exp has passed or its tenant's keys have been fetched again (a
// key identity stopped publishing stops being trusted at once).
//
// What it cannot know: that the session was logged out, the user disabled
// or demoted since the token was signed (within its 15 minutes). Calls
// that must know ask identity's IntrospectToken instead.
package accesstoken

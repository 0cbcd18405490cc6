// Package token issues and verifies identity's access tokens: short-lived
// JWTs signed with Ed25519, whose public keys are published as a JWKS so
// that other services verify tokens without calling identity.
//
// # Tokens
//
// An access token is a JWT (RFC 7519) with header alg "EdDSA", typ "at+jwt"
// (RFC 9068, so an access token is never mistaken for another kind of JWT
// signed by the same key) and kid naming the signing key. Its claims are
// iss, sub (user id), tid (tenant slug), tuid (the tenant's immutable uid:
// what the token is bound to, since a purged tenant's slug can be taken
// again), sid (session id), roles, iat, nbf, exp and a random jti. Tokens live for [Config.AccessTTL], 15 minutes by
// default: they cannot be revoked, so their lifetime bounds how long a
// logged-out session or a removed role keeps working.
//
// [Issuer.Verify] is deliberately strict: only EdDSA is accepted (so "none"
// and the HS256-with-the-public-key forgery fail before any key is looked
// up), the kid must name a key that is still published, the issuer must
// match, every claim must be present, and iat, nbf and exp are checked with
// [ClockLeeway] for clock skew between replicas. Every refusal is a
// fault.Unauthenticated with reason ACCESS_TOKEN_INVALID, except a token
// that is valid in every respect but its age, which gets
// ACCESS_TOKEN_EXPIRED so that clients know to refresh rather than log in
// again. The tenant check is the caller's: [Issuer.VerifyForTenant] does it.
//
// # Keys
//
// Signing keys live in tenantry_identity.signing_keys, shared by every
// replica. Exactly one key is current (retire_time IS NULL, enforced by a
// unique index) and signs; retired keys only verify, and stay published in
// the JWKS until their delete_after, when every token they signed has
// expired. Private keys are sealed with AES-256-GCM under a key derived with
// HKDF-SHA256 from the configured key-encryption key, with the kid as
// additional data so a sealed key cannot be moved to another row. A retired
// key's private half is erased: it will never sign again. A key-encryption
// key that cannot open the current key stops [NewIssuer] with
// [ErrKeysUndecryptable] instead of generating a fresh key, which would
// silently invalidate every token and lock out the replicas configured
// correctly.
//
// Every change of keys (the first key, a rotation) runs in one transaction
// under an advisory lock and re-reads the current key under it, so replicas
// starting or rotating at the same moment still end with one current key.
//
// # Rotation and replicas
//
// [Issuer.Run] reloads the keys every [Config.ReloadEvery] (another replica
// may have rotated), rotates when the current key is older than
// [Config.RotateEvery], and deletes keys past their delete_after. Between a
// rotation on one replica and the next reload on another, the other replica
// may still sign with the retired key, so a retired key stays published for
// AccessTTL + ReloadEvery + ClockLeeway after retirement, long enough for
// the last token such a replica can sign. A replica that meets a token
// whose kid it does not know reloads at once, at most once a second, so a
// new key verifies everywhere without waiting for the next reload.
//
// Sign and Verify read an immutable key set through an atomic pointer and
// never wait for the database, except that one rate-limited reload for an
// unknown kid.
//
// # Verifying elsewhere
//
// Other services fetch [Issuer.JWKSJSON] (served over HTTP), pick the key
// whose kid matches the token's header, and verify with alg EdDSA only,
// checking iss, exp, nbf and tid themselves. They should refetch the JWKS
// when they meet an unknown kid, at a bounded rate.
package token

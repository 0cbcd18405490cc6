// Package token issues and verifies identity's access tokens: short-lived
// JWTs signed with each tenant's own Ed25519 key, whose public keys are
// published as the tenant's JWKS so that other services verify tokens
// without calling identity. It also keeps the keys of the OpenID Provider
// (RS256 and EdDSA), per tenant likewise.
//
// # Tokens
//
// An access token is a JWT (RFC 7519) with header alg "EdDSA", typ "at+jwt"
// (RFC 9068, so an access token is never mistaken for another kind of JWT
// signed by the same key) and kid naming the signing key. Its claims are
// iss, sub (user id), tid (tenant slug), tuid (the tenant's immutable uid:
// what the token is bound to, since a purged tenant's slug can be taken
// again, and whose keys sign it), sid (session id), roles, iat, nbf, exp
// and a random jti. Tokens live for [Config.AccessTTL], 15 minutes by
// default: they cannot be revoked, so their lifetime bounds how long a
// logged-out session or a removed role keeps working.
//
// [Issuer.Verify] is deliberately strict: only EdDSA is accepted (so "none"
// and the HS256-with-the-public-key forgery fail before any key is looked
// up), the kid must name a key that the tenant the token's tuid names
// still publishes, the issuer must match, every claim must be present, and
// iat, nbf and exp are checked with [ClockLeeway] for clock skew between
// replicas. The tuid is read before the signature is checked only to pick
// the tenant's keys; the signature then proves it. Every refusal is a
// fault.Unauthenticated with reason ACCESS_TOKEN_INVALID, except a token
// that is valid in every respect but its age, which gets
// ACCESS_TOKEN_EXPIRED so that clients know to refresh rather than log in
// again, and, from [Issuer.VerifyForTenant], a token that names another
// tenant than the request's, ACCESS_TOKEN_WRONG_TENANT, said before any key
// is looked up. The tenant check is the caller's: VerifyForTenant does it,
// and reads no keys but the request's tenant's, so a made-up token cannot
// make a replica read the keys of tenants it does not serve.
//
// # Keys
//
// Each tenant signs with keys of its own, so that a standard JWT or OpenID
// Connect library holding one tenant's keys refuses every other tenant's
// tokens by their keys alone, with no Tenantry-specific check. A tenant has
// at most one current key of each algorithm: Ed25519 (identity's access
// tokens, and OpenID clients that choose EdDSA) and RSA-2048 (the OpenID
// Provider's RS256). Keys are made on first need: a tenant's first access
// token (or its JWKS) makes its Ed25519 key, and only the OpenID Provider's
// first RS256 token for the tenant makes its RSA key (about 100 ms of
// CPU), so tenants that never use OpenID Connect never pay for one.
//
// The keys of every tenant live in tenantry_identity.signing_keys, shared
// by every replica, each row naming its tenant by uid (tenant_uid), never
// by slug. A unique index allows one current key (retire_time IS NULL) per
// tenant and algorithm whatever the code does; retired keys only verify,
// and stay published in the tenant's JWKS until their delete_after, when
// every token they signed has expired. Private keys are sealed with
// AES-256-GCM under a key derived with HKDF-SHA256 from the configured
// key-encryption key, with the kid and the tenant's uid as additional
// data, so a sealed key cannot be moved to another row, nor to another
// tenant. A retired key's private half is erased: it will never sign
// again. A key-encryption key that cannot open the newest stored key stops
// [NewIssuer] with [ErrKeysUndecryptable] instead of letting the replica
// make keys, which would silently invalidate tokens and lock out the
// replicas configured correctly; a tenant's key that cannot be opened
// fails that tenant's signatures with the same error.
//
// Every change of a tenant's keys (its first key of an algorithm, a
// rotation, the deletion of a purged tenant's keys) runs in one
// transaction under the tenant's advisory lock (one bigint derived from
// its uid, a key space apart from tenantdb's two-int migration locks) and
// re-reads the current key under it, so replicas using a tenant for the
// first time, or rotating it, at the same moment still end with one
// current key per algorithm.
//
// Before keys were per tenant, one key set signed for every tenant. The
// first start of this version upgrades the table in place, under a lock
// and once: it adds tenant_uid and retires the shared keys (erasing their
// private halves) as a rotation would, so that the access tokens they
// signed, of any tenant, keep verifying until they expire; they are
// published in every tenant's JWKS meanwhile, and a check refuses any
// current key without a tenant, so a replica still running the code of
// before cannot make a shared key again.
//
// # Rotation and replicas
//
// A replica loads a tenant's keys when it first needs them and keeps them,
// per tenant, in an immutable key set behind an atomic pointer. [Issuer.Run]
// reloads, every [Config.ReloadEvery], the tenants this replica holds
// (another replica may have rotated): one query reads the state of their
// keys, and only keys it does not hold yet are read in full and decoded.
// Run also rotates the current keys of every tenant, held or not, once
// older than [Config.RotateEvery] (a bounded number per tick), deletes
// keys past their delete_after, and deletes the keys of tenants the
// registry has purged ([Issuer.ForgetTenant], called from the registry
// watch's OnPurge hook). Between a rotation on one replica and the next
// reload on another, the other replica may still sign with the retired
// key, so a retired key stays published for AccessTTL + ReloadEvery +
// ClockLeeway after retirement, long enough for the last token such a
// replica can sign. A replica that meets a token whose kid its tenant's
// keys lack reloads that tenant at once, at most once a second per tenant,
// so a new key verifies everywhere without waiting for the next reload.
//
// Sign and Verify read a tenant's key set through an atomic pointer and
// never wait for the database, except to load a tenant this replica has
// not used yet, to make its first key, and that one rate-limited reload for
// an unknown kid.
//
// # Verifying elsewhere
//
// Other services fetch the JWKS of the tenant they serve ([Issuer.JWKSJSON]:
// GetJwks naming the tenant, or /.well-known/jwks.json on the tenant's
// host), pick the key whose kid matches the token's header, and verify with
// alg EdDSA only, checking iss, exp, nbf and that tuid is the tenant's uid
// themselves. They should keep one key set per tenant and refetch a
// tenant's JWKS when they meet an unknown kid, at a bounded rate.
package token

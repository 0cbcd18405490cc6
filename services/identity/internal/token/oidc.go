package token

import (
	"context"
	"fmt"
	"time"
)

// PublicKey is a key that verifies tokens now, for a JWKS built elsewhere
// (the OpenID Provider's): Key is an ed25519.PublicKey (Alg EdDSA) or an
// *rsa.PublicKey (Alg RS256).
type PublicKey struct {
	KID string
	Alg string
	Key any
}

// SigningKey returns a tenant's current key of alg (AlgEdDSA or AlgRS256),
// to sign the OpenID Provider's ID and access tokens of that tenant with:
// an ed25519.PrivateKey or an *rsa.PrivateKey. The tenant's first use of
// alg makes the key, so that tenants that never use RS256 never pay for an
// RSA key.
func (i *Issuer) SigningKey(ctx context.Context, tenantUID, alg string) (kid string, key any, err error) {
	if alg != AlgEdDSA && alg != AlgRS256 {
		return "", nil, fmt.Errorf("token: signing key: unknown algorithm %q", alg)
	}
	uid, ok := canonicalTenantUID(tenantUID)
	if !ok {
		return "", nil, fmt.Errorf("token: signing key: tenant uid %q is not a uuid", tenantUID)
	}
	k, err := i.ensureKey(ctx, uid, alg)
	if err != nil {
		return "", nil, err
	}
	return k.kid, k.privateKey(), nil
}

// PublicKeys returns every key that verifies a tenant's tokens now, of
// every algorithm: the tenant's current keys first, its retired keys, then
// the keys shared by every tenant before keys were per tenant while tokens
// they signed may be alive. Like JWKS it makes the tenant's EdDSA key if it
// has none. A tenant without an RSA key is read again, at most once a
// second, in case another replica has just made one: a relying party
// fetches the keys right after it got a token, maybe from another replica.
func (i *Issuer) PublicKeys(ctx context.Context, tenantUID string) ([]PublicKey, error) {
	uid, ok := canonicalTenantUID(tenantUID)
	if !ok {
		return nil, fmt.Errorf("token: public keys: tenant uid %q is not a uuid", tenantUID)
	}
	if _, err := i.ensureKey(ctx, uid, AlgEdDSA); err != nil {
		return nil, err
	}
	if set := i.loaded(uid); set == nil || set.currentByAlg[AlgRS256] == nil {
		if err := i.reloadForMissingKey(ctx, uid, AlgRS256); err != nil {
			return nil, err
		}
	}
	now := i.cfg.Now()
	var keys []PublicKey
	for _, set := range []*keySet{i.loaded(uid), i.shared.Load()} {
		if set == nil {
			continue
		}
		for _, k := range set.published {
			if k.publishedAt(now) {
				keys = append(keys, PublicKey{KID: k.kid, Alg: k.alg, Key: k.publicKey()})
			}
		}
	}
	return keys, nil
}

// AccessTTL is the lifetime of access tokens.
func (i *Issuer) AccessTTL() time.Duration { return i.cfg.AccessTTL }

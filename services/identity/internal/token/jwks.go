package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// JWK is the public half of a signing key as a JSON Web Key (RFC 7517,
// with the OKP key type of RFC 8037).
type JWK struct {
	// Kty is the key type: "OKP".
	Kty string `json:"kty"`
	// Crv is the curve: "Ed25519".
	Crv string `json:"crv"`
	// X is the public key, unpadded base64url.
	X string `json:"x"`
	// Kid is the key id that tokens name in their header.
	Kid string `json:"kid"`
	// Use is what the key is for: "sig".
	Use string `json:"use"`
	// Alg is the only algorithm the key may be used with: "EdDSA".
	Alg string `json:"alg"`
}

// jwkSet is the JSON document of RFC 7517 §5.
type jwkSet struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns a tenant's public keys that verify its access tokens now:
// its current key first, then its retired keys until their delete_after,
// so tokens signed before a rotation still verify wherever the JWKS is
// used, then the keys shared by every tenant before keys were per tenant,
// while tokens they signed may still be alive. A verifier holding one
// tenant's JWKS therefore refuses every other tenant's tokens by their
// keys. Asking for it makes the tenant's key if it has none yet (the
// tenant's tokens are about to be verified; it costs an Ed25519 key), so
// that every replica answers with the same key from then on.
func (i *Issuer) JWKS(ctx context.Context, tenantUID string) ([]JWK, error) {
	uid, ok := canonicalTenantUID(tenantUID)
	if !ok {
		return nil, fmt.Errorf("token: JWKS: tenant uid %q is not a uuid", tenantUID)
	}
	if _, err := i.ensureKey(ctx, uid, AlgEdDSA); err != nil {
		return nil, err
	}
	now := i.cfg.Now()
	var jwks []JWK
	for _, set := range []*keySet{i.loaded(uid), i.shared.Load()} {
		if set == nil {
			continue
		}
		for _, k := range set.published {
			// Identity's own access tokens are EdDSA: this JWKS is theirs. The
			// OpenID Provider publishes every key (PublicKeys).
			if k.alg == AlgEdDSA && k.publishedAt(now) {
				jwks = append(jwks, newJWK(k.kid, k.public))
			}
		}
	}
	return jwks, nil
}

// JWKSJSON returns a tenant's JWKS as the JSON document served at its
// JWKS endpoint: {"keys":[...]}.
func (i *Issuer) JWKSJSON(ctx context.Context, tenantUID string) ([]byte, error) {
	jwks, err := i.JWKS(ctx, tenantUID)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(jwkSet{Keys: jwks})
	if err != nil {
		// Only strings are marshalled: this cannot happen.
		panic("token: marshal JWKS: " + err.Error())
	}
	return b, nil
}

// newJWK describes an Ed25519 public key.
func newJWK(kid string, public ed25519.PublicKey) JWK {
	return JWK{
		Kty: "OKP",
		Crv: "Ed25519",
		X:   base64.RawURLEncoding.EncodeToString(public),
		Kid: kid,
		Use: "sig",
		Alg: "EdDSA",
	}
}

package token

import (
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

// SigningKey returns the current key of alg (AlgEdDSA or AlgRS256), to sign
// the OpenID Provider's ID and access tokens with: an ed25519.PrivateKey or
// an *rsa.PrivateKey. False before the first key of alg exists.
func (i *Issuer) SigningKey(alg string) (kid string, key any, ok bool) {
	k := i.keys.Load().currentByAlg[alg]
	if k == nil {
		return "", nil, false
	}
	return k.kid, k.privateKey(), true
}

// PublicKeys returns every key that verifies tokens now, of every
// algorithm: the current keys first.
func (i *Issuer) PublicKeys() []PublicKey {
	set, now := i.keys.Load(), i.cfg.Now()
	keys := make([]PublicKey, 0, len(set.published))
	for _, k := range set.published {
		if k.publishedAt(now) {
			keys = append(keys, PublicKey{KID: k.kid, Alg: k.alg, Key: k.publicKey()})
		}
	}
	return keys
}

// AccessTTL is the lifetime of access tokens.
func (i *Issuer) AccessTTL() time.Duration { return i.cfg.AccessTTL }

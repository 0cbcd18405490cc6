package token

import (
	"crypto/ed25519"
	"time"
)

// PublicKey is a key that verifies tokens now, for a JWKS built elsewhere
// (the OpenID Provider's).
type PublicKey struct {
	KID string
	Key ed25519.PublicKey
}

// SigningKey returns the current key, to sign the OpenID Provider's ID and
// access tokens with; false before the first key exists.
func (i *Issuer) SigningKey() (kid string, key ed25519.PrivateKey, ok bool) {
	k := i.keys.Load().current
	if k == nil {
		return "", nil, false
	}
	return k.kid, k.private, true
}

// PublicKeys returns the keys of JWKS, in its order.
func (i *Issuer) PublicKeys() []PublicKey {
	set, now := i.keys.Load(), i.cfg.Now()
	keys := make([]PublicKey, 0, len(set.published))
	for _, k := range set.published {
		if k.publishedAt(now) {
			keys = append(keys, PublicKey{KID: k.kid, Key: k.public})
		}
	}
	return keys
}

// AccessTTL is the lifetime of access tokens.
func (i *Issuer) AccessTTL() time.Duration { return i.cfg.AccessTTL }

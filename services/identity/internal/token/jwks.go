package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
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

// JWKS returns the public keys that verify tokens now: the current key
// first, then retired keys until their delete_after, so tokens signed
// before a rotation still verify wherever the JWKS is used.
func (i *Issuer) JWKS() []JWK {
	set, now := i.keys.Load(), i.cfg.Now()
	jwks := make([]JWK, 0, len(set.published))
	for _, k := range set.published {
		// Identity's own access tokens are EdDSA: this JWKS is theirs. The
		// OpenID Provider publishes every key (PublicKeys).
		if k.alg == AlgEdDSA && k.publishedAt(now) {
			jwks = append(jwks, newJWK(k.kid, k.public))
		}
	}
	return jwks
}

// JWKSJSON returns JWKS as the JSON document served at the JWKS endpoint:
// {"keys":[...]}.
func (i *Issuer) JWKSJSON() []byte {
	b, err := json.Marshal(jwkSet{Keys: i.JWKS()})
	if err != nil {
		// Only strings are marshalled: this cannot happen.
		panic("token: marshal JWKS: " + err.Error())
	}
	return b
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

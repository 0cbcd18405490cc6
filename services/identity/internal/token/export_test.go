package token

import (
	"github.com/golang-jwt/jwt/v5"
)

// SignRaw signs any header and claims with the current key, so tests can
// forge tokens that Sign never produces: missing claims, other typ, crit.
// alg is always EdDSA; header fields override the defaults kid and typ.
func (i *Issuer) SignRaw(header map[string]any, claims jwt.MapClaims) (string, error) {
	key := i.keys.Load().current
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.kid
	t.Header["typ"] = tokenType
	for k, v := range header {
		if v == nil {
			delete(t.Header, k)
			continue
		}
		t.Header[k] = v
	}
	return t.SignedString(key.private)
}

// CurrentSeed returns the private seed of the current key, to check that it
// is not stored in the clear.
func (i *Issuer) CurrentSeed() []byte {
	return i.keys.Load().current.private.Seed()
}

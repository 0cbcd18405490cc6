package token

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignRaw signs any header and claims with a tenant's current key, so tests
// can forge tokens that Sign never produces: missing claims, other typ,
// crit, another tenant's tuid. alg is always EdDSA; header fields override
// the defaults kid and typ.
func (i *Issuer) SignRaw(ctx context.Context, tenantUID string, header map[string]any, claims jwt.MapClaims) (string, error) {
	key, err := i.ensureKey(ctx, tenantUID, AlgEdDSA)
	if err != nil {
		return "", err
	}
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

// CurrentSeed returns the private seed of a tenant's current key, to check
// that it is not stored in the clear.
func (i *Issuer) CurrentSeed(ctx context.Context, tenantUID string) ([]byte, error) {
	key, err := i.ensureKey(ctx, tenantUID, AlgEdDSA)
	if err != nil {
		return nil, err
	}
	return key.private.Seed(), nil
}

// LoadedTenants counts the tenants whose keys this replica holds.
func (i *Issuer) LoadedTenants() int {
	n := 0
	i.tenants.Range(func(_, v any) bool {
		if v.(*tenantKeys).keys.Load() != nil {
			n++
		}
		return true
	})
	return n
}

// SharedKey is a key as the code of before keys were per tenant made and
// stored it, for the tests of the upgrade.
type SharedKey struct {
	KID     string
	Alg     string
	Public  []byte // as the public_key column holds it
	Sealed  []byte // sealed as that code sealed it: kid alone as additional data
	Private any    // ed25519.PrivateKey or *rsa.PrivateKey, to sign test tokens
}

// NewSharedKey makes a key of alg sealed under keyEncryptionKey in the
// format of before keys were per tenant.
func NewSharedKey(keyEncryptionKey, alg string) (SharedKey, error) {
	sealer, err := newKeySealer(keyEncryptionKey)
	if err != nil {
		return SharedKey{}, err
	}
	k, err := newSigningKey(alg, time.Now())
	if err != nil {
		return SharedKey{}, err
	}
	var (
		plain   []byte
		format  byte
		private any
	)
	if alg == AlgRS256 {
		if plain, err = x509.MarshalPKCS8PrivateKey(k.rsaPrivate); err != nil {
			return SharedKey{}, err
		}
		format, private = sealedSharedRSA, k.rsaPrivate
	} else {
		plain, format, private = k.private.Seed(), sealedSharedEd25519, k.private
	}
	return SharedKey{
		KID: k.kid, Alg: alg, Public: k.storedPublic(), Private: private,
		Sealed: sealer.aead.Seal([]byte{format}, nil, plain, []byte(k.kid)),
	}, nil
}

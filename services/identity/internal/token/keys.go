package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Algorithms of signing keys. A tenant has at most one current key of
// each, made the first time it is needed: EdDSA signs identity's own access
// tokens (and OpenID tokens of clients that choose it), RS256 the OpenID
// Provider's tokens by default, since OpenID Connect requires every relying
// party to support it.
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

// algs are the algorithms keys are kept for.
var algs = []string{AlgEdDSA, AlgRS256}

// rsaBits is the size of RSA keys: 2048 bits, what every RS256 verifier
// accepts; keys rotate (monthly by default), so a larger size would only
// slow down every signature.
const rsaBits = 2048

// signingKey is one key as this replica knows it. It is immutable once
// built, so key sets can share it. Ed25519 keys use public and private;
// RSA keys rsaPublic and rsaPrivate.
type signingKey struct {
	kid    string
	alg    string
	public ed25519.PublicKey
	// private is nil for retired keys: they only verify.
	private      ed25519.PrivateKey
	rsaPublic    *rsa.PublicKey
	rsaPrivate   *rsa.PrivateKey
	activateTime time.Time
	// retireTime and deleteAfter are zero while the key is current.
	retireTime  time.Time
	deleteAfter time.Time
}

// publishedAt reports whether the key verifies tokens and appears in the
// JWKS at now: a retired key is as good as deleted once past delete_after,
// even before Run removes its row.
func (k *signingKey) publishedAt(now time.Time) bool {
	return k.deleteAfter.IsZero() || now.Before(k.deleteAfter)
}

// publicKey returns the key's public half, whatever its algorithm.
func (k *signingKey) publicKey() any {
	if k.alg == AlgRS256 {
		return k.rsaPublic
	}
	return k.public
}

// privateKey returns the key's private half, or nil once retired.
func (k *signingKey) privateKey() any {
	if k.alg == AlgRS256 {
		if k.rsaPrivate == nil {
			return nil
		}
		return k.rsaPrivate
	}
	if k.private == nil {
		return nil
	}
	return k.private
}

// keySet is a snapshot of one tenant's keys (or of the keys shared by
// every tenant before keys were per tenant), swapped whole on reload so the
// hot paths read it without locks.
type keySet struct {
	// current signs identity's access tokens (EdDSA); nil until the tenant
	// has one. currentByAlg holds the current key of every algorithm the
	// tenant has one of, current included.
	current      *signingKey
	currentByAlg map[string]*signingKey
	// byKID holds every key that may still verify, current included.
	byKID map[string]*signingKey
	// published lists byKID in JWKS order: current first, then retired keys
	// newest first.
	published []*signingKey
}

// emptyKeySet holds no key: the shared keys until NewIssuer has read them.
var emptyKeySet = &keySet{byKID: map[string]*signingKey{}, currentByAlg: map[string]*signingKey{}}

// keyIDLength is the length of a kid: an unpadded base64url SHA-256.
var keyIDLength = base64.RawURLEncoding.EncodedLen(sha256.Size)

// keyID returns the RFC 7638 JWK thumbprint of an Ed25519 public key (RFC
// 8037 §A.3): unique per key, and checkable by anyone holding the JWK.
func keyID(public ed25519.PublicKey) string {
	// The members the thumbprint covers, in lexicographic order and without
	// whitespace, as RFC 7638 prescribes.
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(public) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// plausibleKeyID reports whether kid could name one of our keys. Only such
// kids trigger a reload, so garbage in a header costs nothing.
func plausibleKeyID(kid string) bool {
	if len(kid) != keyIDLength {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(kid)
	return err == nil
}

// rsaKeyID returns the RFC 7638 JWK thumbprint of an RSA public key.
func rsaKeyID(public *rsa.PublicKey) string {
	canonical := `{"e":"` + base64.RawURLEncoding.EncodeToString(big.NewInt(int64(public.E)).Bytes()) +
		`","kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(public.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newSigningKey generates a fresh current key of alg.
func newSigningKey(alg string, now time.Time) (*signingKey, error) {
	if alg == AlgRS256 {
		private, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		return &signingKey{kid: rsaKeyID(&private.PublicKey), alg: alg, rsaPublic: &private.PublicKey,
			rsaPrivate: private, activateTime: now}, nil
	}
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	return &signingKey{kid: keyID(public), alg: AlgEdDSA, public: public, private: private, activateTime: now}, nil
}

// storedPublic is the public key as the public_key column holds it: the
// raw 32 bytes of an Ed25519 key, the PKIX DER of an RSA key.
func (k *signingKey) storedPublic() []byte {
	if k.alg == AlgRS256 {
		der, err := x509.MarshalPKIXPublicKey(k.rsaPublic)
		if err != nil {
			panic("token: marshal RSA public key: " + err.Error()) // cannot happen for a valid key
		}
		return der
	}
	return k.public
}

// hkdfInfo binds the derived key to its one use, so the same configured
// secret reused elsewhere (it should not be) yields unrelated keys.
const hkdfInfo = "tenantry identity: signing_keys.private_key v1"

// The first byte of every sealed private key says what it holds and what
// its additional data is. Keys of a tenant are sealed with the kid and the
// tenant's uid, so a sealed key opens only in its own row of its own
// tenant: copied into another tenant's row (by someone who can write the
// table but not read the key-encryption key), it is refused rather than
// made to sign that tenant's tokens. The first two formats, with the kid
// alone, are those of the keys shared by every tenant before keys were per
// tenant; the upgrade retires those keys and erases their private halves,
// so they are opened only by the start-up check of the key-encryption key
// on a table not upgraded yet.
const (
	sealedSharedEd25519 byte = 1 // the seed; additional data: kid
	sealedSharedRSA     byte = 2 // PKCS #8 DER; additional data: kid
	sealedEd25519       byte = 3 // the seed; additional data: kid, tenant uid
	sealedRSA           byte = 4 // PKCS #8 DER; additional data: kid, tenant uid
)

// keySealer encrypts private keys at rest with AES-256-GCM.
type keySealer struct{ aead cipher.AEAD }

// newKeySealer derives the AES-256 key from the configured key-encryption
// key with HKDF-SHA256. The configured key is text (an environment
// variable), so it is stretched into a uniform key rather than used as is.
func newKeySealer(keyEncryptionKey string) (*keySealer, error) {
	key, err := hkdf.Key(sha256.New, []byte(keyEncryptionKey), nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive key-encryption key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key-encryption cipher: %w", err)
	}
	// Random nonces are safe for far more keys than we will ever seal.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("key-encryption cipher: %w", err)
	}
	return &keySealer{aead: aead}, nil
}

// tenantAdditionalData binds a sealed key to its kid and its tenant. A kid
// has a fixed length and no NUL, so the pair is unambiguous.
func tenantAdditionalData(kid, tenantUID string) []byte {
	return []byte(kid + "\x00" + tenantUID)
}

// seal encrypts k's private half (an Ed25519 seed or an RSA key's PKCS #8
// DER) for tenantUID's row.
func (s *keySealer) seal(k *signingKey, tenantUID string) []byte {
	ad := tenantAdditionalData(k.kid, tenantUID)
	if k.alg == AlgRS256 {
		der, err := x509.MarshalPKCS8PrivateKey(k.rsaPrivate)
		if err != nil {
			panic("token: marshal RSA private key: " + err.Error()) // cannot happen for a valid key
		}
		return s.aead.Seal([]byte{sealedRSA}, nil, der, ad)
	}
	return s.aead.Seal([]byte{sealedEd25519}, nil, k.private.Seed(), ad)
}

// open decrypts the sealed private half of k, stored in the row of
// tenantUID ("" for a shared key), and sets it on k after checking that it
// is the private half of k's public key.
func (s *keySealer) open(k *signingKey, tenantUID string, sealed []byte) error {
	if len(sealed) == 0 {
		return errors.New("no sealed key")
	}
	format, ciphertext := sealed[0], sealed[1:]
	var ad []byte
	switch {
	case (format == sealedEd25519 || format == sealedRSA) && tenantUID != "":
		ad = tenantAdditionalData(k.kid, tenantUID)
	case (format == sealedSharedEd25519 || format == sealedSharedRSA) && tenantUID == "":
		ad = []byte(k.kid)
	default:
		return fmt.Errorf("sealed key format %d does not belong in this row", format)
	}
	if wantRSA := format == sealedRSA || format == sealedSharedRSA; wantRSA != (k.alg == AlgRS256) {
		return fmt.Errorf("sealed key format %d is not for %s", format, k.alg)
	}
	plain, err := s.aead.Open(nil, nil, ciphertext, ad)
	if err != nil {
		return err
	}
	if k.alg == AlgRS256 {
		parsed, err := x509.ParsePKCS8PrivateKey(plain)
		if err != nil {
			return fmt.Errorf("sealed key: %w", err)
		}
		private, ok := parsed.(*rsa.PrivateKey)
		if !ok || !k.rsaPublic.Equal(private.Public()) {
			return errors.New("private key does not match the stored public key")
		}
		k.rsaPrivate = private
		return nil
	}
	if len(plain) != ed25519.SeedSize {
		return fmt.Errorf("sealed key has %d bytes, want %d", len(plain), ed25519.SeedSize)
	}
	private := ed25519.NewKeyFromSeed(plain)
	if !k.public.Equal(private.Public()) {
		return errors.New("private key does not match the stored public key")
	}
	k.private = private
	return nil
}

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

// Algorithms of signing keys. Every key set has one current key of each:
// EdDSA signs identity's own access tokens (and OpenID tokens of clients
// that choose it), RS256 the OpenID Provider's tokens by default, since
// OpenID Connect requires every relying party to support it.
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

// algs are the algorithms keys are kept for, in the order they are made.
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

// keySet is a snapshot of the keys, swapped whole on reload so the hot
// paths read it without locks.
type keySet struct {
	// current signs identity's access tokens (EdDSA); nil only before the
	// first key exists. currentByAlg holds the current key of every
	// algorithm, current included.
	current      *signingKey
	currentByAlg map[string]*signingKey
	// byKID holds every key that may still verify, current included.
	byKID map[string]*signingKey
	// published lists byKID in JWKS order: current first, then retired keys
	// newest first.
	published []*signingKey
	// stale counts rows past delete_after that Run should delete.
	stale int
}

// emptyKeySet is the key set before the first load.
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

// sealedVersion prefixes every sealed Ed25519 private key (its seed),
// sealedRSAVersion every sealed RSA key (PKCS #8 DER), leaving room for a
// future format or key-encryption-key rotation.
const (
	sealedVersion    byte = 1
	sealedRSAVersion byte = 2
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

// seal encrypts the seed of private, with the kid as additional data so a
// sealed key only opens in its own row.
func (s *keySealer) seal(kid string, private ed25519.PrivateKey) []byte {
	return s.aead.Seal([]byte{sealedVersion}, nil, private.Seed(), []byte(kid))
}

// sealKey seals k's private half, whatever its algorithm.
func (s *keySealer) sealKey(k *signingKey) []byte {
	if k.alg == AlgRS256 {
		der, err := x509.MarshalPKCS8PrivateKey(k.rsaPrivate)
		if err != nil {
			panic("token: marshal RSA private key: " + err.Error()) // cannot happen for a valid key
		}
		return s.aead.Seal([]byte{sealedRSAVersion}, nil, der, []byte(k.kid))
	}
	return s.seal(k.kid, k.private)
}

// openRSA decrypts a sealed RSA key and checks it is public's private half.
func (s *keySealer) openRSA(kid string, sealed []byte, public *rsa.PublicKey) (*rsa.PrivateKey, error) {
	if len(sealed) == 0 || sealed[0] != sealedRSAVersion {
		return nil, errors.New("unknown sealed key format")
	}
	der, err := s.aead.Open(nil, nil, sealed[1:], []byte(kid))
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("sealed key: %w", err)
	}
	private, ok := parsed.(*rsa.PrivateKey)
	if !ok || !public.Equal(private.Public()) {
		return nil, errors.New("private key does not match the stored public key")
	}
	return private, nil
}

// open decrypts a sealed private key and checks that it is the private half
// of public.
func (s *keySealer) open(kid string, sealed []byte, public ed25519.PublicKey) (ed25519.PrivateKey, error) {
	if len(sealed) == 0 || sealed[0] != sealedVersion {
		return nil, errors.New("unknown sealed key format")
	}
	seed, err := s.aead.Open(nil, nil, sealed[1:], []byte(kid))
	if err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("sealed key has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	private := ed25519.NewKeyFromSeed(seed)
	if !public.Equal(private.Public()) {
		return nil, errors.New("private key does not match the stored public key")
	}
	return private, nil
}

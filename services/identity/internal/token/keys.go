package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// signingKey is one Ed25519 key as this replica knows it. It is immutable
// once built, so key sets can share it.
type signingKey struct {
	kid    string
	public ed25519.PublicKey
	// private is nil for retired keys: they only verify.
	private      ed25519.PrivateKey
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

// keySet is a snapshot of the keys, swapped whole on reload so the hot
// paths read it without locks.
type keySet struct {
	// current signs; nil only before the first key exists.
	current *signingKey
	// byKID holds every key that may still verify, current included.
	byKID map[string]*signingKey
	// published lists byKID in JWKS order: current first, then retired keys
	// newest first.
	published []*signingKey
	// stale counts rows past delete_after that Run should delete.
	stale int
}

// emptyKeySet is the key set before the first load.
var emptyKeySet = &keySet{byKID: map[string]*signingKey{}}

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

// newSigningKey generates a fresh current key.
func newSigningKey(now time.Time) (*signingKey, error) {
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	return &signingKey{kid: keyID(public), public: public, private: private, activateTime: now}, nil
}

// hkdfInfo binds the derived key to its one use, so the same configured
// secret reused elsewhere (it should not be) yields unrelated keys.
const hkdfInfo = "tenantry identity: signing_keys.private_key v1"

// sealedVersion prefixes every sealed private key, leaving room for a
// future format or key-encryption-key rotation.
const sealedVersion byte = 1

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

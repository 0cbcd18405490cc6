// Package sealbox encrypts small secrets identity must be able to read
// again (an upstream identity provider's client secret, the state of a
// login in progress kept in a cookie) with AES-256-GCM, under a key
// derived with HKDF-SHA256 from the service's key-encryption key and the
// box's purpose, so that one configured secret yields unrelated keys for
// unrelated uses.
//
// Every sealed value is bound to additional data chosen by the caller (a
// tenant uid and a row's key, say): a value copied to another tenant's row,
// or a cookie replayed on another tenant's host, does not open.
//
// Hand-written on the standard library's AEAD on purpose: what it adds to
// crypto/cipher is only the key derivation and a version byte, and the
// libraries that do this (tink, nacl/secretbox) would bring their own key
// formats for no gain.
package sealbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
)

// version prefixes every sealed value, leaving room for a new format or a
// rotation of the key-encryption key.
const version byte = 1

// ErrOpen is returned for a value that was not sealed by an equal box for
// the same additional data, or was changed since.
var ErrOpen = errors.New("sealbox: value does not open")

// Box seals and opens values for one purpose. It is safe for concurrent use.
type Box struct{ aead cipher.AEAD }

// New derives the box for purpose from the key-encryption key. The key is
// text (an environment variable), so it is stretched with HKDF rather than
// used as is; purpose must differ between uses ("identity provider client
// secret v1").
func New(keyEncryptionKey, purpose string) (*Box, error) {
	if keyEncryptionKey == "" || purpose == "" {
		return nil, errors.New("sealbox: empty key-encryption key or purpose")
	}
	key, err := hkdf.Key(sha256.New, []byte(keyEncryptionKey), nil, "tenantry identity sealbox: "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("sealbox: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealbox: %w", err)
	}
	// Random 96-bit nonces are safe for far more values than a box will
	// ever seal under one key.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("sealbox: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plain, bound to ad.
func (b *Box) Seal(plain, ad []byte) []byte {
	return b.aead.Seal([]byte{version}, nil, plain, ad)
}

// Open decrypts what Seal returned for the same ad.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) == 0 || sealed[0] != version {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, nil, sealed[1:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// Package softkey is a software WebAuthn authenticator and client, for the
// tests and the benchmark that need real passkey ceremonies without a
// browser: it answers the options identity's PasskeyService returns with
// what a browser would post back (PublicKeyCredential.toJSON()).
//
// go-webauthn is the relying party's side only; the client's side (making
// authenticator data and client data, signing them) has no well-kept Go
// library, so this is the little of it a P-256 ("none" attestation)
// authenticator needs, per WebAuthn Level 3 §6.1 (authenticator data),
// §6.5 (attestation object) and §5.8.1 (client data). It holds its keys in
// memory: never use it for anything but tests.
package softkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
	flagAT = 0x40 // attested credential data included
)

var b64 = base64.RawURLEncoding

// Credential is one passkey the authenticator holds.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	key        *ecdsa.PrivateKey
	mu         sync.Mutex
	signCount  uint32
}

// Authenticator is a software authenticator for one origin (scheme, host
// and port, as a browser would report it).
type Authenticator struct {
	Origin string
	mu     sync.Mutex
	creds  []*Credential
}

// New returns an authenticator whose client runs at origin.
func New(origin string) *Authenticator { return &Authenticator{Origin: origin} }

// Credentials returns the passkeys made so far.
func (a *Authenticator) Credentials() []*Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Credential(nil), a.creds...)
}

type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
}

// Create answers PublicKeyCredentialCreationOptions (as JSON) with a new
// credential: the JSON FinishPasskeyRegistration takes.
func (a *Authenticator) Create(options []byte) ([]byte, *Credential, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, nil, fmt.Errorf("softkey: read creation options: %w", err)
	}
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("softkey: user id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	c := &Credential{ID: make([]byte, 16), RPID: o.RP.ID, UserHandle: handle, key: key}
	_, _ = rand.Read(c.ID)
	ecdh, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	point := ecdh.Bytes() // 0x04 || X || Y
	// COSE_Key of an EC2 P-256 key for ES256 (RFC 9053 §7.1.1).
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:65]})
	if err != nil {
		return nil, nil, err
	}
	auth := authData(o.RP.ID, flagUP|flagUV|flagAT, 0)
	auth = append(auth, make([]byte, 16)...) // AAGUID: none
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(c.ID)))
	auth = append(auth, c.ID...)
	auth = append(auth, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, nil, err
	}
	clientData, err := a.clientData("webauthn.create", o.Challenge)
	if err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "attestationObject": b64.EncodeToString(att),
			"transports": []string{"internal"},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	a.creds = append(a.creds, c)
	a.mu.Unlock()
	return out, c, nil
}

type requestOptions struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	Allow     []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

// ErrNoCredential is the answer to options no credential here can answer
// (another relying party's, or credentials not held), as a browser shows
// no passkey to choose.
var ErrNoCredential = errors.New("softkey: no credential for these options")

// Get answers PublicKeyCredentialRequestOptions (as JSON) with an assertion
// of a credential of its relying party (the first allowed one, or the
// first held when none is listed): the JSON FinishPasskeyLogin and
// FinishPasskeyMfa take.
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("softkey: read request options: %w", err)
	}
	for _, c := range a.Credentials() {
		if c.RPID != o.RPID {
			continue
		}
		if len(o.Allow) == 0 {
			return a.Assert(c, o.RPID, o.Challenge)
		}
		for _, allowed := range o.Allow {
			if allowed.ID == b64.EncodeToString(c.ID) {
				return a.Assert(c, o.RPID, o.Challenge)
			}
		}
	}
	return nil, ErrNoCredential
}

// Assert signs an assertion by c for rpID and challenge (base64url) as
// given, whatever c's own relying party: tests use it to make assertions a
// browser would refuse to make.
func (a *Authenticator) Assert(c *Credential, rpID, challenge string) ([]byte, error) {
	c.mu.Lock()
	c.signCount++
	count := c.signCount
	c.mu.Unlock()
	auth := authData(rpID, flagUP|flagUV, count)
	clientData, err := a.clientData("webauthn.get", challenge)
	if err != nil {
		return nil, err
	}
	clientHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte(nil), auth...), clientHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(clientData), "authenticatorData": b64.EncodeToString(auth),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(c.UserHandle),
		},
	})
}

// authData is the authenticator data's fixed part: rpIdHash, flags, count.
func authData(rpID string, flags byte, count uint32) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, count)
}

func (a *Authenticator) clientData(typ, challenge string) ([]byte, error) {
	return json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
}

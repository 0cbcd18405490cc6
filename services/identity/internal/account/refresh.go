package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"

	"github.com/google/uuid"
)

// A refresh token names its session and its place in the session's chain
// of rotations (the generation), and carries a MAC over both:
//
//	version(1) ‖ session id(16) ‖ generation(8) ‖ nonce(16) ‖ MAC(16)
//
// base64url without padding. The session row keeps its current generation
// and the SHA-256 of its current token. So a rotation rewrites that one row
// instead of adding a token row per refresh (a busy session's history grew
// without bound), and yet any token the session ever had is still known
// for what it is when presented again: its MAC proves identity minted it,
// its generation, below the session's, proves it was rotated away, which
// is reuse and revokes the session. Neither half alone mints a token:
// the MAC key comes from the key-encryption key, which the database never
// sees, and the current token's random nonce is stored only hashed.
//
// The MAC also covers the tenant's id, so a token is worthless in another
// tenant before any database lookup, as is anything not minted here.
const (
	refreshVersion  = 1
	refreshNonceLen = 16
	refreshMACLen   = 16
	refreshBodyLen  = 1 + 16 + 8 + refreshNonceLen
	// refreshLen is a multiple of 3, so its base64 has no unused bits: one
	// token has one spelling, the one whose hash the session keeps.
	refreshLen = refreshBodyLen + refreshMACLen
	// MinRefreshKeyBytes is the shortest refresh MAC key accepted.
	MinRefreshKeyBytes = 32
	// refreshMACLabel separates these MACs from any other use of the key.
	refreshMACLabel = "tenantry identity refresh token v1\x00"
)

// refreshToken is a parsed refresh token whose MAC checked out.
type refreshToken struct {
	SessionID  string
	Generation int64
}

var errMalformedRefresh = errors.New("not a refresh token of this tenant")

// mintRefresh returns a new refresh token of the session at generation gen
// in tenant tenantID, and the hash the session row keeps of it.
func mintRefresh(key []byte, tenantID, sessionID string, gen int64) (string, []byte, error) {
	if tenantID == "" {
		return "", nil, errors.New("mint refresh token: the tenant has no id")
	}
	id, err := uuid.Parse(sessionID)
	if err != nil {
		return "", nil, err
	}
	var b [refreshLen]byte
	b[0] = refreshVersion
	copy(b[1:17], id[:])
	binary.BigEndian.PutUint64(b[17:25], uint64(gen))
	_, _ = rand.Read(b[25:refreshBodyLen]) // crypto/rand.Read never fails on supported platforms.
	copy(b[refreshBodyLen:], refreshMAC(key, tenantID, b[:refreshBodyLen]))
	s := base64.RawURLEncoding.EncodeToString(b[:])
	return s, hashSecret(s), nil
}

// parseRefresh checks a presented token's form and MAC for tenant tenantID.
// It says nothing about whether the token is current: the session row does.
func parseRefresh(key []byte, tenantID, s string) (refreshToken, error) {
	if tenantID == "" || base64.RawURLEncoding.DecodedLen(len(s)) != refreshLen {
		return refreshToken{}, errMalformedRefresh
	}
	var b [refreshLen]byte
	if n, err := base64.RawURLEncoding.Decode(b[:], []byte(s)); err != nil || n != refreshLen || b[0] != refreshVersion {
		return refreshToken{}, errMalformedRefresh
	}
	if !hmac.Equal(b[refreshBodyLen:], refreshMAC(key, tenantID, b[:refreshBodyLen])) {
		return refreshToken{}, errMalformedRefresh
	}
	gen := binary.BigEndian.Uint64(b[17:25])
	if gen > 1<<62 {
		return refreshToken{}, errMalformedRefresh
	}
	id, _ := uuid.FromBytes(b[1:17]) // 16 bytes: never fails
	return refreshToken{SessionID: id.String(), Generation: int64(gen)}, nil
}

func refreshMAC(key []byte, tenantID string, body []byte) []byte {
	return tenantMAC(key, refreshMACLabel, tenantID, body)[:refreshMACLen]
}

// tenantMAC is the HMAC-SHA256 of body bound to a tenant and to one use
// (label): the MAC of refresh tokens and of the SSO cookie.
func tenantMAC(key []byte, label, tenantID string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte(tenantID))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

package account

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestRefreshTokenRoundTrip(t *testing.T) {
	require.Zero(t, refreshLen%3, "one spelling per token: no unused base64 bits")
	key := bytes.Repeat([]byte{7}, MinRefreshKeyBytes)
	session := uuid.NewString()
	for _, gen := range []int64{0, 1, 41, 1 << 40} {
		tok, hash, err := mintRefresh(key, "tenant-a", session, gen)
		require.NoError(t, err)
		require.Equal(t, hashSecret(tok), hash, "the stored hash is of the exact text")
		require.LessOrEqual(t, len(tok), 128, "Refresh refuses longer tokens")
		got, err := parseRefresh(key, "tenant-a", tok)
		require.NoError(t, err)
		require.Equal(t, refreshToken{SessionID: session, Generation: gen}, got)
	}
	_, _, err := mintRefresh(key, "", session, 0)
	require.Error(t, err, "a token bound to no tenant is never minted")
	a, _, err := mintRefresh(key, "tenant-a", session, 3)
	require.NoError(t, err)
	b, _, err := mintRefresh(key, "tenant-a", session, 3)
	require.NoError(t, err)
	require.NotEqual(t, a, b, "two tokens of one generation differ by their nonce")
}

func TestRefreshTokenRefusesWhatWasNotMintedForTheTenant(t *testing.T) {
	key := bytes.Repeat([]byte{7}, MinRefreshKeyBytes)
	tok, _, err := mintRefresh(key, "tenant-a", uuid.NewString(), 5)
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	require.NoError(t, err)
	reencode := func(change func(b []byte) []byte) string {
		b := change(bytes.Clone(raw))
		return base64.RawURLEncoding.EncodeToString(b)
	}

	tests := []struct {
		name   string
		key    []byte
		tenant string
		token  string
	}{
		{"another tenant", key, "tenant-b", tok},
		{"no tenant", key, "", tok},
		{"another key", bytes.Repeat([]byte{8}, MinRefreshKeyBytes), "tenant-a", tok},
		{"a generation changed", key, "tenant-a", reencode(func(b []byte) []byte { b[24]++; return b })},
		{"a session changed", key, "tenant-a", reencode(func(b []byte) []byte { b[1] ^= 1; return b })},
		{"the nonce changed", key, "tenant-a", reencode(func(b []byte) []byte { b[30] ^= 0x80; return b })},
		{"the MAC changed", key, "tenant-a", reencode(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })},
		{"another version", key, "tenant-a", reencode(func(b []byte) []byte { b[0] = 2; return b })},
		{"cut short", key, "tenant-a", tok[:len(tok)-1]},
		{"too long", key, "tenant-a", tok + "A"},
		{"not base64", key, "tenant-a", "!" + tok[1:]},
		{"empty", key, "tenant-a", ""},
		{"an old-style random token", key, "tenant-a", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRefresh(tc.key, tc.tenant, tc.token)
			require.ErrorIs(t, err, errMalformedRefresh)
		})
	}

}

func TestNewManagerNeedsARefreshKey(t *testing.T) {
	for _, n := range []int{0, MinRefreshKeyBytes - 1} {
		_, err := NewManager(nil, nil, nil, nil, nil, Config{RefreshKey: make([]byte, n)})
		require.ErrorContains(t, err, "refresh token key")
	}
	_, err := NewManager(nil, nil, nil, nil, nil, Config{RefreshKey: make([]byte, MinRefreshKeyBytes)})
	require.NoError(t, err)
}

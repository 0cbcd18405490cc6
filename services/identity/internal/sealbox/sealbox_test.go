package sealbox_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/sealbox"
)

func TestSealbox(t *testing.T) {
	box, err := sealbox.New("a key-encryption key of some length", "test secrets v1")
	require.NoError(t, err)
	sealed := box.Seal([]byte("client secret"), []byte("tenant-a/google"))

	plain, err := box.Open(sealed, []byte("tenant-a/google"))
	require.NoError(t, err)
	require.Equal(t, "client secret", string(plain))
	require.NotContains(t, string(sealed), "client secret")

	otherPurpose, err := sealbox.New("a key-encryption key of some length", "cookies v1")
	require.NoError(t, err)
	otherKey, err := sealbox.New("another key-encryption key", "test secrets v1")
	require.NoError(t, err)
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1

	for _, tc := range []struct {
		name   string
		box    *sealbox.Box
		sealed []byte
		ad     string
	}{
		{"another tenant's row", box, sealed, "tenant-b/google"},
		{"another purpose", otherPurpose, sealed, "tenant-a/google"},
		{"another key-encryption key", otherKey, sealed, "tenant-a/google"},
		{"a changed byte", box, tampered, "tenant-a/google"},
		{"empty", box, nil, "tenant-a/google"},
		{"unknown version", box, append([]byte{9}, sealed[1:]...), "tenant-a/google"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.box.Open(tc.sealed, []byte(tc.ad))
			require.ErrorIs(t, err, sealbox.ErrOpen)
		})
	}

	_, err = sealbox.New("", "x")
	require.Error(t, err)
}

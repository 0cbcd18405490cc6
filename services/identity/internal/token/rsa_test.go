package token_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/token"
)

// TestRSAKeysForTheOpenIDProvider checks the RS256 keys kept beside the
// Ed25519 ones: made on a tenant's first use of RS256 only, one current key
// per tenant shared by replicas, sealed at rest, published to the OpenID
// Provider (not in identity's own JWKS), rotated with the Ed25519 key, and
// useless for identity's access tokens.
func TestRSAKeysForTheOpenIDProvider(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := context.Background()
	clk := newClock()
	iss := newIssuer(t, pool, clk)
	sign(t, iss)
	all, _ := countKeysOf(t, pool, token.AlgRS256)
	require.Zero(t, all, "a tenant's first token makes no RSA key: most tenants never need one")

	kid, key, err := iss.SigningKey(ctx, acmeUID, token.AlgRS256)
	require.NoError(t, err)
	private, isRSA := key.(*rsa.PrivateKey)
	require.True(t, isRSA, "%T", key)
	require.Equal(t, 2048, private.N.BitLen())

	var stored, public []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT private_key, public_key FROM tenantry_identity.signing_keys WHERE kid = $1 AND alg = 'RS256'`, kid).
		Scan(&stored, &public))
	der, err := x509.MarshalPKCS8PrivateKey(private)
	require.NoError(t, err)
	require.False(t, bytes.Contains(stored, der), "the private key is not stored in the clear")
	require.False(t, bytes.Contains(stored, private.D.Bytes()), "nor its private exponent")
	parsed, err := x509.ParsePKIXPublicKey(public)
	require.NoError(t, err)
	require.True(t, private.PublicKey.Equal(parsed), "the stored public key is the signing key's")

	edKID := signingKID(t, iss, acmeUID, token.AlgEdDSA)
	require.Equal(t, map[string]string{kid: token.AlgRS256, edKID: token.AlgEdDSA}, publishedAlgs(t, iss, acmeUID))
	for _, jwk := range jwks(t, iss, acmeUID) {
		require.NotEqual(t, kid, jwk.Kid, "identity's own JWKS (EdDSA access tokens) has no RSA key")
	}

	// An access token signed with the RSA key is refused: access tokens
	// are EdDSA, whatever key a header names.
	forged := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": testIssuerName, "sub": "u"})
	forged.Header["kid"] = kid
	forged.Header["typ"] = "at+jwt"
	raw, err := forged.SignedString(private)
	require.NoError(t, err)
	_, err = iss.Verify(raw)
	requireRefused(t, err, "ACCESS_TOKEN_INVALID")

	// A second replica opens the same key; a rotation replaces both keys
	// and keeps the retired RSA key published.
	other := newIssuer(t, pool, clk)
	otherKID, otherKey, err := other.SigningKey(ctx, acmeUID, token.AlgRS256)
	require.NoError(t, err)
	require.Equal(t, kid, otherKID)
	require.True(t, private.Equal(otherKey))
	require.NoError(t, iss.Rotate(ctx, acmeUID))
	newKID := signingKID(t, iss, acmeUID, token.AlgRS256)
	require.NotEqual(t, kid, newKID)
	published := publishedAlgs(t, iss, acmeUID)
	require.Equal(t, token.AlgRS256, published[kid], "the retired RSA key still verifies")
	require.Equal(t, token.AlgRS256, published[newKID])
	require.NoError(t, pool.QueryRow(ctx, `SELECT private_key FROM tenantry_identity.signing_keys WHERE kid = $1`, kid).Scan(&stored))
	require.Nil(t, stored, "a retired key's private half is erased")
}

package token_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/token"
)

// verifyWithJWKS verifies a token as another service does, knowing only the
// JWKS document and the issuer's name.
func verifyWithJWKS(document []byte, tok string) (jwt.MapClaims, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(document, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %s: bad x", k.Kid)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if key, ok := keys[kid]; ok {
			return key, nil
		}
		return nil, errors.New("unknown kid")
	},
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithIssuer(testIssuerName),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(token.ClockLeeway),
	)
	return claims, err
}

func TestJWKSAloneVerifiesTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	iss := newIssuer(t, pool, newClock(), func(c *token.Config) {
		c.Now = nil // the real clock: golang-jwt checks exp against it
	})

	// Not parallel: the rotation below would add a key.
	t.Run("the JWKS describes Ed25519 signing keys", func(t *testing.T) {
		var doc map[string][]map[string]string
		require.NoError(t, json.Unmarshal(jwksJSON(t, iss, acmeUID), &doc))
		require.Len(t, doc["keys"], 1)
		key := doc["keys"][0]
		require.Equal(t, "OKP", key["kty"])
		require.Equal(t, "Ed25519", key["crv"])
		require.Equal(t, "EdDSA", key["alg"])
		require.Equal(t, "sig", key["use"])
		require.NotEmpty(t, key["kid"])
		require.NotEmpty(t, key["x"])
	})

	tok, signed, err := iss.Sign(ctx, "user-9", "acme", acmeUID, "session-3", []string{"member"})
	require.NoError(t, err)

	claims, err := verifyWithJWKS(jwksJSON(t, iss, acmeUID), tok)
	require.NoError(t, err)
	require.Equal(t, "user-9", claims["sub"])
	require.Equal(t, "acme", claims["tid"])
	require.Equal(t, acmeUID, claims["tuid"])
	require.Equal(t, "session-3", claims["sid"])
	require.Equal(t, []any{"member"}, claims["roles"])
	require.Equal(t, signed.ID, claims["jti"])

	_, err = verifyWithJWKS(jwksJSON(t, iss, acmeUID), alterSignature(t, tok))
	require.Error(t, err, "a token altered in transit fails the JWKS verification too")

	// Across a rotation the JWKS carries both keys, so a token signed before
	// it still verifies from the new document.
	require.NoError(t, iss.Rotate(ctx, acmeUID))
	_, err = verifyWithJWKS(jwksJSON(t, iss, acmeUID), tok)
	require.NoError(t, err)
	_, err = verifyWithJWKS(jwksJSON(t, iss, acmeUID), sign(t, iss))
	require.NoError(t, err)

	// Another tenant's JWKS is of no use for acme's tokens, nor acme's for
	// its tokens: the keys alone tell the tenants apart.
	_, err = verifyWithJWKS(jwksJSON(t, iss, globexUID), tok)
	require.ErrorContains(t, err, "unknown kid", "globex's JWKS verifies acme's token")
	_, err = verifyWithJWKS(jwksJSON(t, iss, acmeUID), signFor(t, iss, globexUID))
	require.ErrorContains(t, err, "unknown kid", "acme's JWKS verifies globex's token")
}

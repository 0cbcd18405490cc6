package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/kit/accesstoken"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// A product service checks identity's tokens itself with the kit's
// verifier: fetched keys, the tenant bound by uid, nothing else accepted.
func TestKitVerifiesIdentityTokensLocally(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	alphaT, betaT := s.registry.Create("alpha"), s.registry.Create("beta")
	alpha := tenancy.Tenant{UID: alphaT.GetUid(), Slug: "alpha"}
	beta := tenancy.Tenant{UID: betaT.GetUid(), Slug: "beta"}
	login := s.signUpAndLogin("alpha", "kit@example.com")
	betaLogin := s.signUpAndLogin("beta", "kit@example.com")
	ctx := context.Background()

	// No Refresh first: the first token fetches its tenant's keys.
	v := accesstoken.NewVerifier(s.tokens, "tenantry-identity")
	claims, err := v.Verify(ctx, login.GetAccessToken(), alpha)
	require.NoError(t, err)
	require.Equal(t, login.GetUser().GetId(), claims.Subject)
	require.Equal(t, "alpha", claims.Tenant)
	require.Equal(t, alpha.UID, claims.TenantUID)
	require.NotEmpty(t, claims.Session)

	reason := func(err error) string {
		f, ok := fault.As(err)
		require.True(t, ok, "%v", err)
		return f.Reason
	}
	_, err = v.Verify(ctx, login.GetAccessToken(), beta)
	require.Equal(t, accesstoken.ReasonWrongTenant, reason(err), "another tenant's verifier accepts the token")
	_, err = v.Verify(ctx, betaLogin.GetAccessToken(), beta)
	require.NoError(t, err, "beta's token verifies with beta's keys")

	// Each tenant signs with its own keys (the kit's own tests show that
	// a token signed with beta's key is refused for alpha whatever it
	// claims).
	betaParsed, _, err := jwt.NewParser().ParseUnverified(betaLogin.GetAccessToken(), jwt.MapClaims{})
	require.NoError(t, err)
	alphaParsed, _, err := jwt.NewParser().ParseUnverified(login.GetAccessToken(), jwt.MapClaims{})
	require.NoError(t, err)
	require.NotEqual(t, alphaParsed.Header["kid"], betaParsed.Header["kid"], "alpha and beta share a key")

	tok := login.GetAccessToken()
	tampered := tok[:strings.LastIndex(tok, ".")+1] + strings.Repeat("A", len(tok)-strings.LastIndex(tok, ".")-1)
	_, err = v.Verify(ctx, tampered, alpha)
	require.Equal(t, accesstoken.ReasonInvalid, reason(err))

	// A token signed with another key under identity's kid.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, parsed.Claims)
	forged.Header["kid"], forged.Header["typ"] = parsed.Header["kid"], "at+jwt"
	forgedText, err := forged.SignedString(priv)
	require.NoError(t, err)
	_, err = v.Verify(ctx, forgedText, alpha)
	require.Equal(t, accesstoken.ReasonInvalid, reason(err))

	// Another issuer's verifier refuses identity's tokens.
	other := accesstoken.NewVerifier(s.tokens, "someone-else")
	_, err = other.Verify(ctx, tok, alpha)
	require.Equal(t, accesstoken.ReasonInvalid, reason(err))
}

package accesstoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// Each tenant signs with keys of its own: a Verifier checks a tenant's
// tokens with that tenant's keys only.
func TestVerifierKeepsEachTenantsKeys(t *testing.T) {
	t.Parallel()
	issued := time.Now().Truncate(time.Second)
	alphaPub, alphaPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	betaPub, betaPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	claims := func(tenant tenancy.Tenant) tokenClaims {
		return tokenClaims{
			RegisteredClaims: jwt.RegisteredClaims{Issuer: "tenantry-identity", Subject: "user-1",
				IssuedAt: jwt.NewNumericDate(issued), ExpiresAt: jwt.NewNumericDate(issued.Add(15 * time.Minute))},
			Tenant: tenant.Slug, TenantUID: tenant.UID, Session: "s1",
		}
	}
	reason := func(t *testing.T, err error) string {
		t.Helper()
		if err == nil {
			return ""
		}
		f, ok := fault.As(err)
		require.True(t, ok, "%v", err)
		return f.Reason
	}

	tests := []struct {
		name   string
		token  string
		tenant tenancy.Tenant
		want   string
		// fetches of each tenant's keys the Verify makes
		alphaFetches, betaFetches int
	}{
		{"alpha's token is accepted for alpha with alpha's keys", sign(t, alphaPriv, "ka", claims(alpha)), alpha, "", 1, 0},
		{"beta's token is accepted for beta with beta's keys", sign(t, betaPriv, "kb", claims(beta)), beta, "", 0, 1},
		{"beta's genuine token is refused for alpha before any key is fetched",
			sign(t, betaPriv, "kb", claims(beta)), alpha, ReasonWrongTenant, 0, 0},
		{"a token signed with beta's genuine key that names alpha is refused for alpha: beta's key is not alpha's",
			sign(t, betaPriv, "kb", claims(alpha)), alpha, ReasonInvalid, 1, 0},
		{"a token signed with beta's genuine key under alpha's kid is refused for alpha",
			sign(t, betaPriv, "ka", claims(alpha)), alpha, ReasonInvalid, 1, 0},
		{"a token of no tenant is invalid, not another tenant's",
			sign(t, alphaPriv, "ka", claims(tenancy.Tenant{Slug: "alpha"})), alpha, ReasonInvalid, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := newJWKSClient("alpha", map[string]ed25519.PublicKey{"ka": alphaPub})
			client.publish("beta", map[string]ed25519.PublicKey{"kb": betaPub})
			v := NewVerifier(client, "tenantry-identity")
			_, err := v.Verify(context.Background(), tt.token, tt.tenant)
			require.Equal(t, tt.want, reason(t, err), "%v", err)
			require.Equal(t, tt.alphaFetches, client.fetchesOf("alpha"), "fetches of alpha's keys")
			require.Equal(t, tt.betaFetches, client.fetchesOf("beta"), "fetches of beta's keys")
		})
	}

	t.Run("an unknown kid fetches its tenant's keys again at most once a second, whatever other tenants do", func(t *testing.T) {
		t.Parallel()
		client := newJWKSClient("alpha", map[string]ed25519.PublicKey{"ka": alphaPub})
		client.publish("beta", map[string]ed25519.PublicKey{"kb": betaPub})
		v := NewVerifier(client, "tenantry-identity")
		ctx := context.Background()
		_, err := v.Verify(ctx, sign(t, alphaPriv, "ka", claims(alpha)), alpha)
		require.NoError(t, err)
		_, err = v.Verify(ctx, sign(t, alphaPriv, "made-up", claims(alpha)), alpha)
		require.Equal(t, ReasonInvalid, reason(t, err))
		require.Equal(t, 1, client.fetchesOf("alpha"), "within a second of alpha's fetch: no new fetch")
		_, err = v.Verify(ctx, sign(t, betaPriv, "kb", claims(beta)), beta)
		require.NoError(t, err, "beta's first token fetches beta's keys")
		require.Equal(t, 1, client.fetchesOf("beta"))
	})

	t.Run("a verifier holds the keys of a bounded number of tenants and forgets purged ones", func(t *testing.T) {
		t.Parallel()
		client := newJWKSClient("alpha", map[string]ed25519.PublicKey{"ka": alphaPub})
		client.publish("beta", map[string]ed25519.PublicKey{"kb": betaPub})
		gammaPub, gammaPriv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		gamma := tenancy.Tenant{UID: "t-gamma", Slug: "gamma"}
		client.publish("gamma", map[string]ed25519.PublicKey{"kg": gammaPub})
		v := NewVerifier(client, "tenantry-identity")
		v.tenants = newTenantKeySets(1)
		ctx := context.Background()
		for _, c := range []struct {
			tenant tenancy.Tenant
			priv   ed25519.PrivateKey
			kid    string
		}{{alpha, alphaPriv, "ka"}, {beta, betaPriv, "kb"}, {alpha, alphaPriv, "ka"}, {gamma, gammaPriv, "kg"}} {
			_, err := v.Verify(ctx, sign(t, c.priv, c.kid, claims(c.tenant)), c.tenant)
			require.NoError(t, err, c.tenant.Slug)
			require.Equal(t, 1, v.tenants.len())
		}
		require.Equal(t, 2, client.fetchesOf("alpha"), "alpha's keys were let go for beta's, and fetched again")
		v.Forget(gamma.UID)
		require.Zero(t, v.tenants.len())
	})
}

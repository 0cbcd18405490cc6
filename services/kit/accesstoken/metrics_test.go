package accesstoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// The collector reports the verified-token cache as the Verifier used it:
// a token's first check is a miss, its second a hit.
func TestCollectorCountsTheVerifiedTokenCache(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	v := NewVerifier(newJWKSClient("alpha", map[string]ed25519.PublicKey{"k1": pub}), "tenantry-identity")
	issued := time.Now()
	token := sign(t, priv, "k1", tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "tenantry-identity", Subject: "user-1",
			IssuedAt: jwt.NewNumericDate(issued), ExpiresAt: jwt.NewNumericDate(issued.Add(15 * time.Minute))},
		Tenant: "alpha", TenantUID: "t-alpha", Session: "s1", Roles: []string{"member"},
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector(v))
	for range 3 {
		_, err := v.Verify(context.Background(), token, alpha)
		require.NoError(t, err)
	}
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	require.Equal(t, map[string]float64{
		"tenantry_access_token_cache_lookups_total/hit":  2,
		"tenantry_access_token_cache_lookups_total/miss": 1,
		"tenantry_access_token_cache_entries":            1,
	}, got)
}

package password_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/password"
)

// BenchmarkHash measures one hash with DefaultParams: the bare rate
// against which the identity bench compares login throughput.
func BenchmarkHash(b *testing.B) {
	h := newHasher(b, password.DefaultParams, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, err := h.Hash(ctx, "correct horse battery staple")
		require.NoError(b, err)
	}
}

// BenchmarkVerify measures one successful verification, which is what a
// login costs beyond its database round trips.
func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, password.DefaultParams, 0)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		ok, _, err := h.Verify(ctx, encoded, "correct horse battery staple")
		require.NoError(b, err)
		require.True(b, ok)
	}
}

// BenchmarkVerifyParallel measures verifications from many goroutines
// through one hasher with the default limit (GOMAXPROCS): the most logins
// per second one process can check.
func BenchmarkVerifyParallel(b *testing.B) {
	h := newHasher(b, password.DefaultParams, 0)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, _, err := h.Verify(ctx, encoded, "correct horse battery staple")
			if err != nil || !ok {
				b.Errorf("Verify = %v, %v", ok, err)
				return
			}
		}
	})
}

// BenchmarkPolicyCheck measures checking an acceptable password, which
// runs every rule.
func BenchmarkPolicyCheck(b *testing.B) {
	var policy password.Policy
	inputs := []string{"alice.liddell", "Alice Liddell", "alice.liddell@wonderland.example"}
	require.NoError(b, policy.Check("password", "warm-up for the list", inputs...))
	b.ReportAllocs()
	for b.Loop() {
		if err := policy.Check("password", "correct horse battery staple ✓", inputs...); err != nil {
			b.Fatal(err)
		}
	}
}

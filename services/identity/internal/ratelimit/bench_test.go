package ratelimit_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"tenantry.dev/identity/internal/ratelimit"
)

// BenchmarkAllow measures decisions against the real database clock: one
// hot key, where every decision waits for the previous one's lock; many keys
// in parallel; and the four checks of a login in one round trip.
func BenchmarkAllow(b *testing.B) {
	// High enough that every request is allowed and so writes: the costlier path.
	roomy := ratelimit.Limit{Name: "bench.roomy", Rate: 1_000_000, Per: time.Second, Burst: 1_000_000}
	l, _, _ := newLimiter(b, nil)
	ctx := context.Background()

	b.Run("one key", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Allow(ctx, roomy, "acme", "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one key parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Allow(ctx, roomy, "acme", "alice"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("distinct keys parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				user := strconv.FormatInt(n.Add(1)%10_000, 10)
				if _, err := l.Allow(ctx, roomy, "acme", user); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("login checks parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				user := "user" + strconv.FormatInt(i%10_000, 10) + "@example.com"
				addr := "198.51.100." + strconv.FormatInt(i%250, 10)
				checks := ratelimit.LoginChecks("acme", user, addr, 0)
				for i := range checks {
					// The presets' scopes and names, without their refusals.
					checks[i].Limit.Rate, checks[i].Limit.Per, checks[i].Limit.Burst = roomy.Rate, roomy.Per, roomy.Burst
				}
				if _, err := l.AllowAll(ctx, checks...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

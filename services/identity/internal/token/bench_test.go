package token_test

import (
	"context"
	"log/slog"
	"testing"

	"tenantry.dev/identity/internal/token"
)

// reportRate adds operations per second of one goroutine, i.e. per core, to
// a benchmark's output.
func reportRate(b *testing.B, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// newBenchIssuer starts an issuer on the real clock, logging nothing: key
// events would only clutter the benchmark's output.
func newBenchIssuer(b *testing.B) *token.Issuer {
	return newIssuer(b, newPool(b), newClock(), func(c *token.Config) {
		c.Now = nil
		c.Logger = slog.New(slog.DiscardHandler)
	})
}

func BenchmarkVerify(b *testing.B) {
	iss := newBenchIssuer(b)
	tok, _, err := iss.Sign(context.Background(), "0190a6b2-4a7e-7c3d-9a51-3f0e2b6d8c11", "acme", acmeUID, "0190a6b2-5b1c-7e2a-8f44-6d2c9e0a7b35",
		[]string{"member", "billing-admin"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "verifications/s")
}

func BenchmarkVerifyParallel(b *testing.B) {
	iss := newBenchIssuer(b)
	tok := sign(b, iss)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := iss.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, "verifications/s-all-cores")
}

func BenchmarkSign(b *testing.B) {
	iss := newBenchIssuer(b)
	roles := []string{"member", "billing-admin"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Sign(context.Background(), "0190a6b2-4a7e-7c3d-9a51-3f0e2b6d8c11", "acme", acmeUID, "0190a6b2-5b1c-7e2a-8f44-6d2c9e0a7b35", roles); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "signatures/s")
}

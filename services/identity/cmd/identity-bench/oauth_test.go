package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestS256IsRFC7636sExample(t *testing.T) {
	t.Parallel()
	// RFC 7636, appendix B.
	require.Equal(t, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
}

func TestNewPKCEDrawsAVerifierRFC7636Allows(t *testing.T) {
	t.Parallel()
	p, q := newPKCE(), newPKCE()
	require.NotEqual(t, p.verifier, q.verifier)
	require.GreaterOrEqual(t, len(p.verifier), 43)
	require.LessOrEqual(t, len(p.verifier), 128)
	require.Regexp(t, `^[A-Za-z0-9._~-]+$`, p.verifier)
	require.Equal(t, s256(p.verifier), p.challenge)
}

func TestCodesFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		rate  float64
		d     time.Duration
		least int
		want  int
	}{
		{"covers the time at the rate, with the margin", 100, 7 * time.Second, 64, 1050},
		{"never fewer than least", 1, time.Second, 64, 64},
		{"never more than maxCodes", 1e6, time.Minute, 64, maxCodes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, codesFor(tc.rate, tc.d, tc.least))
		})
	}
}

func TestCodePoolHandsOutEachCodeOnce(t *testing.T) {
	t.Parallel()
	p := &codePool{codes: []preparedCode{{code: "a"}, {code: "b"}}}
	require.Equal(t, 2, p.left())
	first, ok := p.take()
	require.True(t, ok)
	require.Equal(t, "a", first.code)
	second, ok := p.take()
	require.True(t, ok)
	require.Equal(t, "b", second.code)
	_, ok = p.take()
	require.False(t, ok, "an empty pool says so")
	require.Equal(t, 0, p.left())
}

package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

func TestParseLogLine(t *testing.T) {
	t.Parallel()
	t.Run("reads plain and quoted values", func(t *testing.T) {
		t.Parallel()
		attrs, ok := parseLogLine(`time=2026-01-02T03:04:05.678Z level=INFO msg="tenant schemas migrated" service=identity tenants=1000 up_to_date=1 failed=0 took=12.5s`)
		require.True(t, ok)
		require.Equal(t, map[string]string{
			"time": "2026-01-02T03:04:05.678Z", "level": "INFO", "msg": "tenant schemas migrated", "service": "identity",
			"tenants": "1000", "up_to_date": "1", "failed": "0", "took": "12.5s",
		}, attrs)
	})
	t.Run("unquotes escapes inside values", func(t *testing.T) {
		t.Parallel()
		attrs, ok := parseLogLine(`level=WARN msg="say \"hi\"\nthere" err="a=b"`)
		require.True(t, ok)
		require.Equal(t, "say \"hi\"\nthere", attrs["msg"])
		require.Equal(t, "a=b", attrs["err"])
	})
	t.Run("keeps what parsed before a line that is not a record", func(t *testing.T) {
		t.Parallel()
		attrs, ok := parseLogLine(`level=ERROR panic: runtime error`)
		require.False(t, ok)
		require.Equal(t, map[string]string{"level": "ERROR"}, attrs)
	})
}

func TestOnlyWarningsAndWorseAreForwarded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		want bool
	}{
		{`level=INFO msg="mail not sent, logged instead (development sender)" link=https://x/?token=secret`, false},
		{`level=DEBUG msg=probe`, false},
		{`level=WARN msg="audit event lost"`, true},
		{`level=ERROR msg=boom`, true},
		{`level=WARN+2 msg=odd`, true},
		{`goroutine 1 [running]:`, true},
		{`msg="no level"`, true},
	} {
		t.Run(tc.line, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, logLevelAtLeastWarn(parseLogLine(tc.line)))
		})
	}
}

func TestSourceAddrs(t *testing.T) {
	t.Parallel()
	t.Run("start at 127.0.0.2", func(t *testing.T) {
		t.Parallel()
		addrs, err := sourceAddrs(3)
		require.NoError(t, err)
		require.Equal(t, []netip.Addr{
			netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4"),
		}, addrs)
	})
	t.Run("skip .255 and .0 and stay distinct inside 127.0.0.0/8", func(t *testing.T) {
		t.Parallel()
		addrs, err := sourceAddrs(maxSourceAddrs)
		require.NoError(t, err)
		loopback := netip.MustParsePrefix("127.0.0.0/8")
		seen := map[netip.Addr]bool{}
		for _, a := range addrs {
			require.True(t, loopback.Contains(a), "%s", a)
			b := a.As4()
			require.NotContains(t, []byte{0, 255}, b[3], "%s", a)
			require.False(t, seen[a], "%s twice", a)
			seen[a] = true
		}
		require.Equal(t, netip.MustParseAddr("127.0.1.1"), addrs[253])
	})
	t.Run("refuse counts out of range", func(t *testing.T) {
		t.Parallel()
		_, err := sourceAddrs(0)
		require.Error(t, err)
		_, err = sourceAddrs(maxSourceAddrs + 1)
		require.Error(t, err)
	})
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	t.Run("spread accounts visit every tenant before any twice", func(t *testing.T) {
		t.Parallel()
		accounts := spreadAccounts([]string{"a", "b", "c"}, 7)
		var tenants []string
		emails := map[string]bool{}
		for _, a := range accounts {
			tenants = append(tenants, a.tenant)
			emails[a.email] = true
		}
		require.Equal(t, []string{"a", "b", "c", "a", "b", "c", "a"}, tenants)
		require.Len(t, emails, 7, "every account has its own email")
	})
	t.Run("a pool hands out each account once, then counts reuse", func(t *testing.T) {
		t.Parallel()
		pool := newAccountPool(oneTenantAccounts("t", 2))
		a0, i0 := pool.take()
		a1, i1 := pool.take()
		require.NotEqual(t, a0, a1)
		require.Equal(t, []int{0, 1}, []int{i0, i1})
		require.Zero(t, pool.reused())
		a2, _ := pool.take()
		require.Equal(t, a0, a2)
		require.Equal(t, 1, pool.reused())
		pool.restart()
		a3, i3 := pool.take()
		require.Equal(t, a0, a3)
		require.Zero(t, i3)
	})
	t.Run("a pool is sized for the warm-up and the measure at the given rate", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, 532, accountsFor(100, time.Second, 3*time.Second, 12)) // 100 × 1.3 × 4 + 12
		require.Equal(t, 1, accountsFor(0, time.Second, time.Second, 0))
	})
}

func TestJWKSVerifier(t *testing.T) {
	t.Parallel()
	public, private, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	jwks := []*identityv1.Jwk{{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(public), Kid: "k1", Use: "sig", Alg: "EdDSA"}}
	v, err := newJWKSVerifier(jwks, "iss-1")
	require.NoError(t, err)

	now := time.Now()
	valid := func() (jwt.Claims, map[string]any) {
		return callerClaims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: "iss-1", Subject: "user-1", IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
				ExpiresAt: jwt.NewNumericDate(now.Add(15 * time.Minute)), ID: "jti",
			},
			Tenant: "t00000", Session: "s-1",
		}, map[string]any{"kid": "k1", "typ": "at+jwt"}
	}
	sign := func(claims jwt.Claims, header map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(private)
		require.NoError(t, err)
		return s
	}

	t.Run("accepts a token signed with a JWKS key", func(t *testing.T) {
		t.Parallel()
		c, err := v.verify(sign(valid()))
		require.NoError(t, err)
		require.Equal(t, "t00000", c.Tenant)
		s, err := v.splitSigned(sign(valid()))
		require.NoError(t, err)
		require.NoError(t, s.verify())
	})
	for _, tc := range []struct {
		name  string
		token func() string
	}{
		{"refuses another issuer", func() string {
			c, h := valid()
			cc := c.(callerClaims)
			cc.Issuer = "someone-else"
			return sign(cc, h)
		}},
		{"refuses an expired token", func() string {
			c, h := valid()
			cc := c.(callerClaims)
			cc.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
			return sign(cc, h)
		}},
		{"refuses a token without a session", func() string {
			c, h := valid()
			cc := c.(callerClaims)
			cc.Session = ""
			return sign(cc, h)
		}},
		{"refuses an unknown kid", func() string {
			c, h := valid()
			h["kid"] = "k2"
			return sign(c, h)
		}},
		{"refuses a token that is not an access token", func() string {
			c, h := valid()
			h["typ"] = "JWT"
			return sign(c, h)
		}},
		{"refuses HS256 made with the public key as secret", func() string {
			c, h := valid()
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
			for k, v := range h {
				tok.Header[k] = v
			}
			s, err := tok.SignedString([]byte(public))
			require.NoError(t, err)
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.verify(tc.token())
			require.Error(t, err)
		})
	}

	t.Run("refuses a JWKS key that is not Ed25519", func(t *testing.T) {
		t.Parallel()
		_, err := newJWKSVerifier([]*identityv1.Jwk{{Kty: "RSA", Kid: "r", Use: "sig", Alg: "RS256"}}, "iss-1")
		require.Error(t, err)
		_, err = newJWKSVerifier(nil, "iss-1")
		require.Error(t, err)
	})
}

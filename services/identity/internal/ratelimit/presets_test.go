package ratelimit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/ratelimit"
)

func TestPresets(t *testing.T) {
	t.Parallel()
	presets := []struct {
		name   string
		checks func(tenant, account, clientIP string) []ratelimit.Check
		limits []ratelimit.Limit
	}{
		{"login", func(tenant, account, clientIP string) []ratelimit.Check {
			return ratelimit.LoginChecks(tenant, account, clientIP, 0)
		}, []ratelimit.Limit{
			ratelimit.LoginPerAccountAddress, ratelimit.LoginPerAccount, ratelimit.LoginPerAddress, ratelimit.LoginPerTenant}},
		{"password reset", ratelimit.PasswordResetChecks, []ratelimit.Limit{
			ratelimit.PasswordResetPerAccountAddress, ratelimit.PasswordResetPerAccount, ratelimit.PasswordResetPerAddress, ratelimit.PasswordResetPerTenant}},
		{"verification", ratelimit.VerificationChecks, []ratelimit.Limit{
			ratelimit.VerificationPerAccountAddress, ratelimit.VerificationPerAccount, ratelimit.VerificationPerAddress, ratelimit.VerificationPerTenant}},
		{"sign-up", func(tenant, account, clientIP string) []ratelimit.Check {
			return ratelimit.SignUpChecks(tenant, account, clientIP, 0, 0)
		}, []ratelimit.Limit{
			ratelimit.SignUpPerAccountAddress, ratelimit.SignUpPerAccount, ratelimit.SignUpPerAddress, ratelimit.SignUpPerTenantAt(50)}},
	}
	for _, p := range presets {
		t.Run(p.name+" checks account and address, account, address and tenant", func(t *testing.T) {
			t.Parallel()
			got := p.checks("acme", "alice@example.com", "203.0.113.7")
			require.Equal(t, []ratelimit.Check{
				{Limit: p.limits[0], Parts: []string{"acme", "alice@example.com", "203.0.113.7"}},
				{Limit: p.limits[1], Parts: []string{"acme", "alice@example.com"}},
				{Limit: p.limits[2], Parts: []string{"acme", "203.0.113.7"}},
				{Limit: p.limits[3], Parts: []string{"acme"}},
			}, got)
		})
		t.Run(p.name+" gives one address at most half the account's budget", func(t *testing.T) {
			t.Parallel()
			perAccountAddress, perAccount := p.limits[0], p.limits[1]
			// Compare rates as events per hour, exactly.
			perHour := func(l ratelimit.Limit) float64 { return float64(l.Rate) * float64(3600e9) / float64(l.Per) }
			require.GreaterOrEqual(t, perHour(perAccount), 2*perHour(perAccountAddress))
			require.Greater(t, perAccount.Burst, perAccountAddress.Burst)
		})
	}

	scopes := []struct {
		name          string
		account, addr string
		wantAccount   string
		wantAddrScope string
	}{
		{name: "account case and spaces fold", account: "  Alice@Example.COM ", addr: "203.0.113.7", wantAccount: "alice@example.com", wantAddrScope: "203.0.113.7"},
		{name: "an IPv4-mapped address is the IPv4 address", account: "a", addr: "::ffff:203.0.113.7", wantAccount: "a", wantAddrScope: "203.0.113.7"},
		{name: "a port is dropped", account: "a", addr: "203.0.113.7:51234", wantAccount: "a", wantAddrScope: "203.0.113.7"},
		{name: "an IPv6 address counts as its /64", account: "a", addr: "2001:db8:1:2:aaaa:bbbb:cccc:dddd", wantAccount: "a", wantAddrScope: "2001:db8:1:2::/64"},
		{name: "an IPv6 address with a port and zone too", account: "a", addr: "[fe80::1%eth0]:443", wantAccount: "a", wantAddrScope: "fe80::/64"},
		{name: "an unparsable address is kept to be hashed", account: "a", addr: "unknown", wantAccount: "a", wantAddrScope: "unknown"},
	}
	for _, s := range scopes {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			got := ratelimit.LoginChecks("acme", s.account, s.addr, 0)
			require.Equal(t, []string{"acme", s.wantAccount, s.wantAddrScope}, got[0].Parts)
		})
	}
}

func TestTheTenantsLoginCeilingIsItsOwn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		perSecond int
		want      ratelimit.Limit
	}{
		{"no rate of its own is the default of 50 a second", 0, ratelimit.LoginPerTenant},
		{"the default is 50 a second with five seconds' worth at once", 50,
			ratelimit.Limit{Name: "login.tenant", Rate: 50, Per: time.Second, Burst: 250}},
		{"a small tenant's 1 a second lets 5 through at once", 1,
			ratelimit.Limit{Name: "login.tenant", Rate: 1, Per: time.Second, Burst: 5}},
		{"a large tenant's 2,000 a second lets 10,000 through at once", 2000,
			ratelimit.Limit{Name: "login.tenant", Rate: 2000, Per: time.Second, Burst: 10_000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checks := ratelimit.LoginChecks("acme", "alice@example.com", "203.0.113.7", c.perSecond)
			require.Len(t, checks, 4)
			require.Equal(t, c.want, checks[3].Limit)
			require.Equal(t, []string{"acme"}, checks[3].Parts)
			require.Equal(t, ratelimit.LoginPerAccountAddress, checks[0].Limit, "the other scopes stay as they are")
			require.Equal(t, ratelimit.LoginPerAccount, checks[1].Limit)
			require.Equal(t, ratelimit.LoginPerAddress, checks[2].Limit)
		})
	}
}

func TestSignUpLimitsFollowTheirSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                  string
		perHour, perSecond    int
		wantAddress, wantCeil ratelimit.Limit
	}{
		{"unset, 200 an hour from one address and the default ceiling", 0, 0,
			ratelimit.Limit{Name: "signup.address", Rate: 200, Per: time.Hour, Burst: 200},
			ratelimit.Limit{Name: "signup.tenant", Rate: 50, Per: time.Second, Burst: 250}},
		{"an address limit of 5 an hour, all at once; the tenant's ceiling at its login rate", 5, 2000,
			ratelimit.Limit{Name: "signup.address", Rate: 5, Per: time.Hour, Burst: 5},
			ratelimit.Limit{Name: "signup.tenant", Rate: 2000, Per: time.Second, Burst: 10_000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checks := ratelimit.SignUpChecks("acme", "alice@example.com", "203.0.113.7", c.perHour, c.perSecond)
			require.Len(t, checks, 4)
			require.Equal(t, c.wantAddress, checks[2].Limit)
			require.Equal(t, c.wantCeil, checks[3].Limit)
			require.NotEqual(t, ratelimit.LoginPerTenant.Name, checks[3].Limit.Name, "sign-ups do not spend the logins' ceiling")
		})
	}
}

package webhook_test

import (
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/webhook"
)

func TestGuardRefusesAddressesInsideTheNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host    string
		refused bool
	}{
		{"127.0.0.1", true},
		{"localhost", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"100.64.0.1", true},
		{"0.0.0.0", true},
		{"[::1]", true},
		{"[fd00::1]", true},
		{"[::ffff:127.0.0.1]", true},
		{"93.184.215.14", false},
		{"[2606:2800:21f:cb07:6820:80da:af6b:8b2c]", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse("https://" + tc.host + "/hook")
			require.NoError(t, err)
			err = webhook.Guard{}.CheckURL(t.Context(), u)
			dialErr := webhook.Guard{}.Control("tcp", tc.host+":443", nil)
			if tc.refused {
				require.Error(t, err, "the URL check refuses it")
				if tc.host != "localhost" {
					require.Error(t, dialErr, "the dialer refuses it")
				}
			} else {
				require.NoError(t, err)
				require.NoError(t, dialErr)
			}
			require.NoError(t, webhook.Guard{AllowPrivate: true}.CheckURL(t.Context(), u), "allowed by the flag")
		})
	}
}

// TestGuardRefusesIPv4AddressesWrappedInIPv6: an IPv6 address that a
// translator or relay delivers to an embedded IPv4 address is refused
// when that IPv4 address is (on an IPv6-only network with NAT64,
// 64:ff9b::a00:5 is 10.0.0.5), and allowed when it is public.
func TestGuardRefusesIPv4AddressesWrappedInIPv6(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, addr string
		refused    bool
	}{
		{"NAT64 of 10.0.0.5", "64:ff9b::a00:5", true},
		{"NAT64 of 127.0.0.1, dotted", "64:ff9b::127.0.0.1", true},
		{"NAT64 of the metadata address", "64:ff9b::a9fe:a9fe", true},
		{"NAT64 of a public address", "64:ff9b::5db8:d70e", false},
		{"local-use NAT64, wherever its IPv4 address sits", "64:ff9b:1:a00:5::", true},
		{"local-use NAT64 of a public address too", "64:ff9b:1::5db8:d70e", true},
		{"6to4 of 10.0.0.5", "2002:a00:5::1", true},
		{"6to4 of 192.168.1.1", "2002:c0a8:101::", true},
		{"6to4 of a public address", "2002:5db8:d70e::1", false},
		{"IPv4-compatible 10.0.0.5", "::a00:5", true},
		{"IPv4-compatible 127.0.0.1", "::127.0.0.1", true},
		{"IPv4-mapped 10.0.0.5", "::ffff:a00:5", true},
		{"IPv4-mapped 169.254.169.254", "::ffff:169.254.169.254", true},
		{"IPv4-translated 172.16.0.1", "::ffff:0:ac10:1", true},
		{"IPv4-compatible public address", "::93.184.215.14", false},
		{"Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", true},
		{"site-local", "fec0::1", true},
		{"a zoned link-local address", "fe80::1%eth0", true},
		{"a zoned NAT64 address", "64:ff9b::a00:5%eth0", true},
		{"0.1.2.3, this network", "0.1.2.3", true},
		{"the broadcast address", "255.255.255.255", true},
		{"198.18.0.1, benchmarking", "198.18.0.1", true},
		{"192.0.0.170, NAT64 discovery", "192.0.0.170", true},
		{"a public IPv6 address", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Guard{}.Control("tcp", net.JoinHostPort(tc.addr, "443"), nil)
			u, perr := url.Parse("https://" + net.JoinHostPort(strings.ReplaceAll(tc.addr, "%", "%25"), "443") + "/hook")
			require.NoError(t, perr)
			urlErr := webhook.Guard{}.CheckURL(t.Context(), u)
			if tc.refused {
				require.Error(t, err, "the dialer refuses %s", tc.addr)
				require.Error(t, urlErr, "the URL check refuses %s", tc.addr)
			} else {
				require.NoError(t, err)
				require.NoError(t, urlErr)
			}
		})
	}
}

// TestGuardDoesNotSayWhatANameResolvedTo: the refusal names the host as
// given, not the internal address it resolved to.
func TestGuardDoesNotSayWhatANameResolvedTo(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("https://localhost/hook")
	require.NoError(t, err)
	err = webhook.Guard{}.CheckURL(t.Context(), u)
	require.Error(t, err)
	require.Contains(t, err.Error(), "localhost")
	require.NotContains(t, err.Error(), "127.0.0.1")
	require.NotContains(t, err.Error(), "::1")
}

func TestBackoffGrowsWithJitterUpToItsCap(t *testing.T) {
	t.Parallel()
	w := webhook.NewWorker(nil, nil, nil, webhook.Options{Backoff: time.Second, MaxBackoff: time.Minute})
	for attempts := 1; attempts <= 12; attempts++ {
		bound := min(time.Second<<(attempts-1), time.Minute)
		seen := map[time.Duration]bool{}
		for range 50 {
			d := w.Backoff(attempts)
			require.GreaterOrEqual(t, d, bound/10, "attempt %d", attempts)
			require.LessOrEqual(t, d, bound, "attempt %d", attempts)
			seen[d] = true
		}
		require.Greater(t, len(seen), 1, "attempt %d: the waits are jittered", attempts)
	}
}

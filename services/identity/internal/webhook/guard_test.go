package webhook_test

import (
	"net/url"
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

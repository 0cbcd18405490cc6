package ratelimit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/platform/fault"
)

func TestExceeded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		retryAfter    time.Duration
		wantMessage   string
		wantRetryInfo string
	}{
		{name: "whole seconds are said as they are", retryAfter: 12 * time.Second, wantMessage: "too many login attempts; retry in 12 seconds", wantRetryInfo: "12s"},
		{name: "a part of a second rounds up", retryAfter: 11500 * time.Millisecond, wantMessage: "too many login attempts; retry in 12 seconds", wantRetryInfo: "11.5s"},
		{name: "less than a second is one second", retryAfter: 3 * time.Millisecond, wantMessage: "too many login attempts; retry in 1 second", wantRetryInfo: "3ms"},
		{name: "long waits stay in seconds", retryAfter: 20 * time.Minute, wantMessage: "too many login attempts; retry in 1200 seconds", wantRetryInfo: "20m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ratelimit.Exceeded(ratelimit.Decision{RetryAfter: tt.retryAfter, Limit: "login.account"}, "login attempts")
			f, ok := fault.As(err)
			require.True(t, ok, "a fault")
			require.Equal(t, fault.ResourceExhausted, f.Kind)
			require.Equal(t, "RATE_LIMITED", f.Reason)
			require.Equal(t, tt.wantMessage, f.Message)
			require.Equal(t, map[string]string{"retry_after": tt.wantRetryInfo}, f.Metadata)
		})
	}

	t.Run("an allowed decision is no error", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, ratelimit.Exceeded(ratelimit.Decision{Allowed: true, Remaining: 3}, "login attempts"))
	})
}

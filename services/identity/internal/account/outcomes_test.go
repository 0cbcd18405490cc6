package account

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
)

func TestLoginOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want LoginOutcome
	}{
		{"no error is a success", nil, LoginSucceeded},
		{"wrong credentials are a failure", errInvalidCredentials, LoginRefused},
		{"a disabled account is a failure", errDisabled, LoginRefused},
		{"a missing password is a failure", fault.Invalid("password", "PASSWORD_REQUIRED", "give your password"), LoginRefused},
		{"a rate limit is rate_limited", fault.New(fault.ResourceExhausted, "RATE_LIMITED", "too many login attempts"), LoginRateLimited},
		{"an internal error is an error", internal(errors.New("connection reset"), "login"), LoginErrored},
		{"an outage is an error", fault.New(fault.Unavailable, "DATABASE_UNAVAILABLE", "retry"), LoginErrored},
		{"an error that is no fault is an error", errors.New("context canceled"), LoginErrored},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.want, loginOutcome(c.err))
		})
	}
}

package account

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSecondFactorSessionsSayHowTheLoginBegan(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		first  []string
		factor string
		want   []string
	}{
		{"a password and a code, as always", AMRPassword, "otp", []string{"pwd", "otp", "mfa"}},
		{"a password and a passkey, as always", AMRPassword, "hwk", []string{"pwd", "hwk", "mfa"}},
		{"another provider and a code", AMRFederated, "otp", []string{"fed", "otp", "mfa"}},
		{"another provider and a passkey", AMRFederated, "hwk", []string{"fed", "hwk", "mfa"}},
		{"a mailed code and a code of the app", AMREmailCode, "otp", []string{"email", "otp", "mfa"}},
		{"a mailed code and a passkey", AMREmailCode, "hwk", []string{"email", "hwk", "mfa"}},
		{"a challenge issued before challenges said is a password's", nil, "otp", []string{"pwd", "otp", "mfa"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.want, withSecondFactor(c.first, c.factor))
		})
	}
	require.Equal(t, AMRPasswordAndOTP, withSecondFactor(AMRPassword, "otp"))
	require.Equal(t, AMRPasswordAndPasskey, withSecondFactor(AMRPassword, "hwk"))

	// A first step with room to spare is not appended to: two sessions
	// after the same challenge value would otherwise share one array.
	first := make([]string, 1, 4)
	first[0] = "fed"
	withCode, withPasskey := withSecondFactor(first, "otp"), withSecondFactor(first, "hwk")
	require.Equal(t, []string{"fed", "otp", "mfa"}, withCode)
	require.Equal(t, []string{"fed", "hwk", "mfa"}, withPasskey)
}

// TestRecentProofDependsOnTheFactorNotOnTheFirstStep: a login with the
// account's factor proves it for ReauthWindow whichever way it began; a
// login without the factor proves an account with one nothing, and an
// account without one only for ReauthWindow.
func TestRecentProofDependsOnTheFactorNotOnTheFirstStep(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	fresh, stale := now.Add(-time.Minute), now.Add(-ReauthWindow-time.Minute)
	cases := []struct {
		name   string
		amr    []string
		login  time.Time
		factor bool
		want   bool
	}{
		{"a password and a code, fresh", []string{"pwd", "otp", "mfa"}, fresh, true, true},
		{"another provider and a code, fresh", []string{"fed", "otp", "mfa"}, fresh, true, true},
		{"another provider and a passkey, fresh", []string{"fed", "hwk", "mfa"}, fresh, true, true},
		{"a mailed code and a code of the app, fresh", []string{"email", "otp", "mfa"}, fresh, true, true},
		{"a mailed code and a passkey, fresh", []string{"email", "hwk", "mfa"}, fresh, true, true},
		{"another provider and a code, stale", []string{"fed", "otp", "mfa"}, stale, true, false},
		{"another provider alone, for an account with a factor", []string{"fed"}, fresh, true, false},
		{"a mailed code alone, for an account with a factor", []string{"email"}, fresh, true, false},
		{"a password alone, for an account with a factor", []string{"pwd"}, fresh, true, false},
		{"a session stored without amr, for an account with a factor", nil, fresh, true, false},
		{"another provider alone, for an account without a factor", []string{"fed"}, fresh, false, true},
		{"a mailed code alone, for an account without a factor", []string{"email"}, fresh, false, true},
		{"a session stored without amr, for an account without a factor", nil, fresh, false, true},
		{"another provider alone, stale", []string{"fed"}, stale, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := &Session{CreateTime: c.login, AMR: c.amr}
			require.Equal(t, c.want, recentProof(s, c.factor, now))
		})
	}
}

package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// TestPasswordProofsSpendTheLoginBudget: the current password that
// ChangePassword and ChangeEmail take is checked under the account's login
// limits, the budget its logins spend, so that a stolen session cannot try
// passwords without end; and ChangeEmail's mails to the new address are
// limited as AddEmailAddress's are.
func TestPasswordProofsSpendTheLoginBudget(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	for _, tc := range []struct {
		name  string
		email string
		try   func(token, password string) error
	}{
		{"ChangePassword", "pat@example.com", func(token, password string) error {
			_, err := s.auth.ChangePassword(in("demo", token), &identityv1.ChangePasswordRequest{
				CurrentPassword: password, NewPassword: "a brand new passphrase"})
			return err
		}},
		{"ChangeEmail", "em@example.com", func(token, password string) error {
			_, err := s.auth.ChangeEmail(in("demo", token), &identityv1.ChangeEmailRequest{
				NewEmail: "elsewhere@example.com", Password: password})
			return err
		}},
	} {
		t.Run(tc.name+": wrong passwords in a row hit the login limit, which then refuses the right one and the login page too", func(t *testing.T) {
			login := s.signUpAndLogin("demo", tc.email) // one attempt of the budget
			wrong := 0
			var err error
			for range 20 {
				if err = tc.try(login.GetAccessToken(), "guess number x"); requireCodeIs(err, codes.ResourceExhausted) {
					break
				}
				requireCode(t, err, codes.InvalidArgument)
				require.Equal(t, "PASSWORD_INCORRECT", reasonOf(err))
				wrong++
			}
			requireCode(t, err, codes.ResourceExhausted)
			require.Equal(t, "RATE_LIMITED", reasonOf(err))
			// Ten at once per account and address (ratelimit.LoginPerAccountAddress),
			// the login's among them; a slow machine may see one refilled.
			require.LessOrEqual(t, wrong, 10)

			err = tc.try(login.GetAccessToken(), goodPassword)
			requireCode(t, err, codes.ResourceExhausted)
			_, err = s.auth.Login(in("demo"), loginRequest(tc.email, goodPassword))
			requireCode(t, err, codes.ResourceExhausted)
		})
	}

	t.Run("ChangeEmail mails a new address as often as the verification mails' limit allows", func(t *testing.T) {
		login := s.signUpAndLogin("demo", "mover@example.com")
		const target = "stranger@example.com"
		sent := 0
		var err error
		for range 10 {
			_, err = s.auth.ChangeEmail(in("demo", login.GetAccessToken()), &identityv1.ChangeEmailRequest{NewEmail: target, Password: goodPassword})
			if requireCodeIs(err, codes.ResourceExhausted) {
				break
			}
			require.NoError(t, err)
			sent++
		}
		requireCode(t, err, codes.ResourceExhausted)
		require.Equal(t, "RATE_LIMITED", reasonOf(err))
		// Three at once per address and client (ratelimit.VerificationPerAccountAddress).
		require.Equal(t, 3, sent)
		registrytestEventually(t, "the mails allowed", func() bool { return s.mailsTo(target) == sent })
	})
}

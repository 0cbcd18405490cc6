package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
)

// TestSecondFactorInABrowser drives the pages' script in headless Chromium:
// the account page adds an authenticator app (its QR code shown), the login
// page then asks for the app's code, and a tenant requiring a factor leads
// a user without one through the enrolment at login.
func TestSecondFactorInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "demo")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	demo := "http://demo.localhost:" + port
	const email = "ada@example.com"
	_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: email, Password: goodPassword})
	require.NoError(t, err)

	login := func(t *testing.T, email string) {
		b.run(t, "log in",
			chromedp.Navigate(demo+"/login"),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), goodPassword),
			chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	}

	var secret string
	t.Run("the account page adds an app: its QR code, its key, a code, then the recovery codes", func(t *testing.T) {
		login(t, email)
		b.waitFor(t, "the account page", `location.pathname === '/account'`)
		b.waitFor(t, "the authenticator app section", visible("#mfa-section"))
		require.Contains(t, b.text(t, "#mfa-status"), "Off")
		b.run(t, "add an app", chromedp.Click(chromedp.CSS("#mfa-begin")))
		b.waitFor(t, "the QR code, drawn", `document.querySelector('#mfa-qr').naturalWidth === 256`)
		secret = b.text(t, "#mfa-secret")
		require.Regexp(t, `^[A-Z2-7]{32}$`, secret)
		b.run(t, "confirm with the app's code",
			chromedp.SendKeys(chromedp.CSS("#totp_code"), oathtool(t, secret, clock.Now())),
			chromedp.Click(chromedp.CSS("#mfa-confirm-form button[type=submit]")))
		b.waitFor(t, "the recovery codes", visible("#mfa-codes"))
		require.Equal(t, 10, eval[int](t, b, `document.querySelectorAll('#mfa-code-list li').length`))
		b.waitFor(t, "the app on", contains("#mfa-status", "On since"))
		s.mailTo(email, "An authenticator app was added")
	})

	t.Run("the login page then asks for the app's code", func(t *testing.T) {
		clock.Advance(30 * time.Second)
		login(t, email)
		b.waitFor(t, "the code form", visible("#mfa-form"))
		require.Equal(t, "/login", eval[string](t, b, `location.pathname`))
		b.run(t, "give the code",
			chromedp.SendKeys(chromedp.CSS("#code"), oathtool(t, secret, clock.Now())),
			chromedp.Click(chromedp.CSS("#mfa-form button[type=submit]")))
		b.waitFor(t, "the account page", `location.pathname === '/account'`)
		b.waitFor(t, "the logged-in account", visible("#logged-in"))
	})

	t.Run("ten minutes later, changing the password asks for a code in a dialog, then goes through", func(t *testing.T) {
		clock.Advance(11 * time.Minute)
		b.run(t, "change the password",
			chromedp.SendKeys(chromedp.CSS("#current_password"), goodPassword),
			chromedp.SendKeys(chromedp.CSS("#new_password"), "tulip orbit velvet canyon 42"),
			chromedp.Click(chromedp.CSS("#password-form button[type=submit]")))
		b.waitFor(t, "the dialog asking for a code", `!!document.querySelector('#reauth-dialog[open]')`)
		b.run(t, "give the code",
			chromedp.SendKeys(chromedp.CSS("#reauth-secret"), oathtool(t, secret, clock.Now())),
			chromedp.Click(chromedp.CSS("#reauth-dialog button[type=submit]")))
		b.waitFor(t, "the password changed", contains("#message", "Your password is changed"))
		require.False(t, eval[bool](t, b, `!!document.querySelector('#reauth-dialog')`))
	})

	t.Run("a tenant requiring a factor leads a user without one through its enrolment at login", func(t *testing.T) {
		admin := s.makeAdmin("demo", "boss@example.com")
		_, err := s.users.UpdateTenantSettings(in("demo", admin.GetAccessToken()), &identityv1.UpdateTenantSettingsRequest{
			Settings: &identityv1.TenantSettings{MfaPolicy: identityv1.MfaPolicy_MFA_POLICY_REQUIRED}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mfa_policy"}}})
		require.NoError(t, err)
		_, err = s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: "bob@example.com", Password: goodPassword})
		require.NoError(t, err)

		b.run(t, "log out", chromedp.Click(chromedp.CSS("#logout")))
		b.waitFor(t, "the logged-out page", visible("#logged-out"))
		login(t, "bob@example.com")
		b.waitFor(t, "the enrolment", visible("#enrol-section"))
		b.waitFor(t, "its QR code, drawn", `document.querySelector('#enrol-qr').naturalWidth === 256`)
		key := b.text(t, "#enrol-secret")
		b.run(t, "enrol with the app's code",
			chromedp.SendKeys(chromedp.CSS("#enrol_code"), oathtool(t, key, clock.Now())),
			chromedp.Click(chromedp.CSS("#enrol-form button[type=submit]")))
		b.waitFor(t, "the recovery codes", visible("#codes-section"))
		require.Equal(t, 10, eval[int](t, b, `document.querySelectorAll('#recovery-codes li').length`))
		b.run(t, "continue", chromedp.Click(chromedp.CSS("#codes-continue")))
		b.waitFor(t, "the account page", `location.pathname === '/account'`)
		b.waitFor(t, "the logged-in account", visible("#logged-in"))
		require.Equal(t, "bob@example.com", b.text(t, "#me-email"))
		b.waitFor(t, "the app on", contains("#mfa-status", "On since"))
	})
}

package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

var (
	resetLink      = regexp.MustCompile(`https?://\S+/reset-password\?token=\S+`)
	invitationLink = regexp.MustCompile(`https?://\S+/accept-invitation\?token=\S+`)
)

// mailPath returns the path and query of the link re finds in the mail to
// addr about subject, for opening it on the test's own host and port.
func mailPath(t *testing.T, s *system, re *regexp.Regexp, addr, subject string) string {
	t.Helper()
	_, body, _ := s.mailTo(addr, subject)
	link := re.FindString(body)
	require.NotEmpty(t, link, "no link in:\n%s", body)
	u, err := url.Parse(link)
	require.NoError(t, err)
	return u.RequestURI()
}

// restLogin logs in through REST and returns the HTTP status and body.
func restLogin(s *system, email, password string) (int, []byte) {
	return s.rest(http.MethodPost, "demo.localhost", "/v1/auth:login",
		fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
}

func TestRecoveryAndAdminPagesInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := startSystem(t, "demo")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	demo := "http://demo.localhost:" + port
	const (
		forgetful   = "grace@example.com"
		resetTo     = "quartz meadow lantern river 7"
		admin       = "root@example.com"
		adminPass   = "harbor falcon pepper summit 9"
		member      = "bob@example.com"
		memberLabel = "Disable " + member
	)
	// Two accounts made through the API: one forgets its password, one is
	// disabled by the admin.
	s.signUpAndLogin("demo", forgetful)
	s.signUpAndLogin("demo", member)

	t.Run("forgot password sends a link that sets a new password", func(t *testing.T) {
		b.run(t, "open the forgot-password page", chromedp.Navigate(demo+"/forgot-password"))
		b.waitFor(t, "the tenant's name", contains("header [data-tenant-name]", "Tenant demo"))
		b.run(t, "ask for a reset link",
			chromedp.SendKeys(chromedp.CSS("#email"), forgetful),
			chromedp.Click(chromedp.CSS("#forgot-form button[type=submit]")))
		b.waitFor(t, "the confirmation", contains("#message", "a link to choose a new password is on its way"))

		path := mailPath(t, s, resetLink, forgetful, "Reset your password")
		b.run(t, "open the reset link", chromedp.Navigate(demo+path))
		b.waitFor(t, "the reset form", visible("#reset-form"))
		require.Equal(t, "/reset-password", eval[string](t, b, `location.pathname`))
		require.Empty(t, eval[string](t, b, `location.search`), "the token stays out of the address bar")
		b.run(t, "set the new password",
			chromedp.SendKeys(chromedp.CSS("#new_password"), resetTo),
			chromedp.Click(chromedp.CSS("#reset-form button[type=submit]")))
		b.waitFor(t, "the confirmation", contains("#message", "Your password is changed"))
		require.NotContains(t, eval[string](t, b, `document.querySelector('#message').className`), "error")

		b.run(t, "log in with the new password",
			chromedp.Navigate(demo+"/login"),
			chromedp.SendKeys(chromedp.CSS("#email"), forgetful),
			chromedp.SendKeys(chromedp.CSS("#password"), resetTo+kb.Enter))
		b.waitFor(t, "the account page", `location.pathname === '/account'`)
		b.waitFor(t, "the logged-in account", visible("#logged-in"))
		require.Equal(t, forgetful, b.text(t, "#me-email"))
		code, body := restLogin(s, forgetful, goodPassword)
		require.Equal(t, http.StatusUnauthorized, code, "the old password no longer works: %s", body)
	})

	t.Run("an invited admin joins, logs in and disables a user", func(t *testing.T) {
		_, err := s.users.InviteUser(asOperator("demo"), &identityv1.InviteUserRequest{
			Email: admin, Roles: []string{"admin"}, DisplayName: "Root"})
		require.NoError(t, err)
		path := mailPath(t, s, invitationLink, admin, "You are invited")

		b.run(t, "open the invitation link", chromedp.Navigate(demo+path))
		b.waitFor(t, "the invitation form", visible("#accept-form"))
		require.Empty(t, eval[string](t, b, `location.search`), "the token stays out of the address bar")
		b.run(t, "accept the invitation",
			chromedp.SendKeys(chromedp.CSS("#password"), adminPass),
			chromedp.Click(chromedp.CSS("#accept-form button[type=submit]")))
		b.waitFor(t, "the welcome", contains("#message", "Your account is ready"))

		// Before the page lists the users: a login bumps the user's version,
		// and so its etag, which the page's Disable button sends.
		code, body := restLogin(s, member, goodPassword)
		require.Equal(t, http.StatusOK, code, "before being disabled: %s", body)

		b.run(t, "log in as the admin",
			chromedp.Navigate(demo+"/login?next=/admin/users"),
			chromedp.SendKeys(chromedp.CSS("#email"), admin),
			chromedp.SendKeys(chromedp.CSS("#password"), adminPass+kb.Enter))
		b.waitFor(t, "the users page", `location.pathname === '/admin/users'`)
		b.waitFor(t, "the admin section", visible("#admin"))
		for _, email := range []string{forgetful, member, admin} {
			b.waitFor(t, email+" in the list", contains("#users", email))
		}

		b.run(t, "disable "+member,
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[aria-label=%q]`, memberLabel))))
		b.waitFor(t, "the confirmation", contains("#message", member+" disabled."))
		b.waitFor(t, "the row's new state", fmt.Sprintf(
			`[...document.querySelectorAll('#users tr')].some(tr => tr.cells[0].textContent === %q && tr.cells[1].textContent === 'disabled')`, member))
		b.waitFor(t, "the Enable button", visible(fmt.Sprintf(`button[aria-label=%q]`, "Enable "+member)))

		code, body = restLogin(s, member, goodPassword)
		require.Equal(t, http.StatusForbidden, code, "a disabled user cannot log in: %s", body)
		code, body = restLogin(s, admin, adminPass)
		require.Equal(t, http.StatusOK, code, "the admin still can: %s", body)
	})
}

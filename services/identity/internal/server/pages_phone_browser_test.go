package server_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// Phone is the viewport the phone test emulates (chromedp's iPhone 13):
// its width in CSS pixels, at its device pixel ratio.
const (
	phoneWidth = 390
	phoneScale = 3
)

// noOverflow is a JavaScript condition: the page is no wider than the
// phone (nothing to scroll sideways), and nothing shown in it runs past
// the phone's right edge. It compares with the phone's width, not
// innerWidth: a mobile browser widens its layout viewport to content wider
// than the screen (and zooms out), so innerWidth grows with the overflow.
var noOverflow = fmt.Sprintf(`window.innerWidth === %[1]d && document.scrollingElement.scrollWidth <= %[1]d &&
	![...document.querySelectorAll('body *')].some(e => !e.closest('[hidden]') && e.getBoundingClientRect().right > %[1]d.5)`, phoneWidth)

// overflowing lists what runs past the phone's right edge, for the failure
// message.
var overflowing = fmt.Sprintf(`[...document.querySelectorAll('body *')].filter(e => !e.closest('[hidden]') &&
	e.getBoundingClientRect().right > %d.5).map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 10)`, phoneWidth)

// inViewport is a JavaScript expression listing which of sels are missing,
// hidden, or not wholly inside the phone's width.
func inViewport(sels ...string) string {
	return fmt.Sprintf(`%s.filter(sel => {
		const e = document.querySelector(sel);
		if (!e || e.closest('[hidden]')) return true;
		const r = e.getBoundingClientRect();
		return r.width === 0 || r.height === 0 || r.left < 0 || r.right > %d;
	})`, jsStrings(sels), phoneWidth)
}

func jsStrings(ss []string) string {
	quoted := make([]string, len(ss))
	for i, s := range ss {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(quoted, ",") + "]"
}

// artifactDir is where the phone screenshots go: TENANTRY_TEST_ARTIFACTS
// when set (CI keeps it), else the test's temporary directory.
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("TENANTRY_TEST_ARTIFACTS"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

// saveScreenshot saves the viewport's screenshot as name and checks it is
// a PNG of the emulated phone's size (the properties, not the pixels).
func (b *browser) saveScreenshot(t *testing.T, dir, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	require.NoError(t, err)
	require.Equal(t, phoneWidth*phoneScale, cfg.Width, "the screenshot is the phone's width")
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot: %s", path)
}

// TestAccountAndAdminPagesOnAPhone: the account page and the admin's users
// page at a phone's width (390x844) scroll nothing sideways and keep their
// main controls on the screen, in English and in German (longer words);
// the admin page's search finds users on the server. Screenshots are kept
// as artifacts.
func TestAccountAndAdminPagesOnAPhone(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := startSystem(t, "phone")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	site := "http://phone.localhost:" + port
	dir := artifactDir(t)

	_, err := s.users.UpdateTenantSettings(asOperator("phone"), &identityv1.UpdateTenantSettingsRequest{
		Settings:   &identityv1.TenantSettings{DisplayName: "Phone & Partners Incorporated", AccentColor: "#0b6e4f"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name", "accent_color"}},
	})
	require.NoError(t, err)
	const admin = "an.administrator.with.a.rather.long.address@example.com"
	s.makeAdmin("phone", admin)
	for _, email := range []string{"zoe.someone@example.com", "ines.another.person.with.a.long.name@example.org", "sam@example.net"} {
		s.signUpAndLogin("phone", email)
	}

	// An iPhone 13: 390x844 at 3x, touch, and its Safari's User-Agent,
	// which the session list then names.
	b.run(t, "emulate a phone", chromedp.Emulate(device.IPhone13))
	b.run(t, "log in",
		chromedp.Navigate(site+"/login"),
		chromedp.SendKeys(chromedp.CSS("#email"), admin),
		chromedp.SendKeys(chromedp.CSS("#password"), goodPassword+kb.Enter))
	b.waitFor(t, "the account page", `location.pathname === '/account'`)
	require.Equal(t, float64(phoneWidth), eval[float64](t, b, `window.innerWidth`), "the phone's viewport")

	for _, lang := range []string{"en", "de"} {
		t.Run("the account page in "+lang, func(t *testing.T) {
			b.run(t, "open the account page", chromedp.Navigate(site+"/account?lang="+lang))
			b.waitFor(t, "the logged-in account", visible("#logged-in"))
			b.waitFor(t, "the sessions", `document.querySelectorAll('#sessions li').length > 0`)
			b.waitFor(t, "the address", contains("#me-email", admin))
			b.waitFor(t, "the deletion's status", `document.querySelector('#deletion-status').textContent !== ''`)
			// This session by its readable name (ListSessions' device_name),
			// not its raw User-Agent.
			require.Contains(t, b.text(t, "#sessions"), "Safari 15 · iOS · Mobile")
			require.NotContains(t, b.text(t, "#sessions"), "Mozilla/5.0")
			require.Equal(t, lang, eval[string](t, b, `document.documentElement.lang`))
			require.True(t, eval[bool](t, b, noOverflow), "the account page is no wider than the phone: %v", eval[[]string](t, b, overflowing))
			require.Empty(t, eval[[]string](t, b, inViewport("header.site .tenant", "#me-email", "#logout", "#export", "#delete-account", "#current_password", "#new_password",
				"#password-form button[type=submit]", "#new_email", "#email-form button[type=submit]", "#address-new", "#address-add-button", "#sessions li button")), "controls off the screen")
			b.saveScreenshot(t, dir, "account-phone-"+lang+".png")
			if lang == "en" {
				// The export (ExportAccountData over REST) of a session
				// just opened: no proof asked again.
				b.run(t, "download my data", chromedp.Click(chromedp.CSS("#export")))
				b.waitFor(t, "the download", contains("#message", "Your data is downloaded."))
				// The change of address: a link to the new one (ChangeEmail).
				b.run(t, "change the email address",
					chromedp.SendKeys(chromedp.CSS("#new_email"), "moved@example.com"),
					chromedp.SendKeys(chromedp.CSS("#password"), goodPassword),
					chromedp.Click(chromedp.CSS("#email-form button[type=submit]")))
				b.waitFor(t, "the link's announcement", contains("#message", "We sent a link to moved@example.com"))
				s.mailTo("moved@example.com", "Confirm your email address")
				// Another address (AddEmailAddress): listed at once as
				// waiting for its link, which is mailed to it.
				b.waitFor(t, "the addresses", `document.querySelectorAll('#addresses li').length === 1`)
				b.run(t, "add an address",
					chromedp.SendKeys(chromedp.CSS("#address-new"), "second@example.com"),
					chromedp.Click(chromedp.CSS("#address-add-button")))
				b.waitFor(t, "the add's announcement", contains("#message", "We sent a link to second@example.com"))
				b.waitFor(t, "the new address listed", `document.querySelectorAll('#addresses li').length === 2`)
				require.Contains(t, b.text(t, "#addresses"), "second@example.com (waiting for its link to be opened)")
				s.mailTo("second@example.com", "Confirm your email address")
			}
		})
	}

	t.Run("the users page, and its search", func(t *testing.T) {
		b.run(t, "open the users page", chromedp.Navigate(site+"/admin/users?lang=en"))
		b.waitFor(t, "the admin section", visible("#admin"))
		b.waitFor(t, "four users", `document.querySelectorAll('#users tr').length === 4`)
		require.True(t, eval[bool](t, b, noOverflow), "the users page is no wider than the phone: %v", eval[[]string](t, b, overflowing))
		require.Empty(t, eval[[]string](t, b, inViewport("#search", "#search-form button[type=submit]",
			"#users tr:first-child input", "#users tr:first-child td:last-child button", "#invite-form button[type=submit]")),
			"controls off the screen")
		// Every button of every user is on the screen, not only the first's.
		require.Zero(t, eval[int](t, b, `[...document.querySelectorAll('#users button')].filter(e => !e.closest('[hidden]')).filter(e => {
			const r = e.getBoundingClientRect(); return r.left < 0 || r.right > `+fmt.Sprint(phoneWidth)+`; }).length`))
		b.saveScreenshot(t, dir, "admin-users-phone.png")

		b.run(t, "search", chromedp.SendKeys(chromedp.CSS("#search"), "ANOTHER"), chromedp.Click(chromedp.CSS("#search-form button[type=submit]")))
		b.waitFor(t, "one match", `document.querySelectorAll('#users tr').length === 1`)
		require.Contains(t, b.text(t, "#users"), "ines.another.person.with.a.long.name@example.org")
		b.run(t, "search for nobody", chromedp.SetValue(chromedp.CSS("#search"), "nobody-here"),
			chromedp.Click(chromedp.CSS("#search-form button[type=submit]")))
		b.waitFor(t, "no match", visible("#no-users"))
		require.True(t, eval[bool](t, b, noOverflow))
	})
}

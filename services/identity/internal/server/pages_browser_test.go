package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// chromiumPath is Debian's chromium; `make test` installs it
// (deploy/scripts/ensure-chromium.sh).
const chromiumPath = "/usr/bin/chromium"

// browserStep bounds each step of a browser test: a navigation, or the wait
// for what a page shows.
const browserStep = 20 * time.Second

// browser is a headless Chromium driven through chromedp, with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// startBrowser starts a fresh headless Chromium for t, or skips t when
// Chromium is not installed. On failure it saves a screenshot of the page
// and logs where.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("Chromium is not installed at %s (run deploy/scripts/ensure-chromium.sh, or `make test` which does): %v", chromiumPath, err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 900),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	// Cleanups run last-registered first: the screenshot, then the tab and
	// the browser (waiting for it to exit), then the removal of its
	// user-data dir.
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelTab)
	// The first Run starts the browser; it must not be on a context with a
	// deadline, which would end the browser with it.
	require.NoError(t, chromedp.Do(ctx), "start %s", chromiumPath)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot()
		}
	})
	return b
}

func (b *browser) screenshot() {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	where, _ := chromedp.Run(ctx, chromedp.Location())
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		b.t.Logf("no screenshot of the failure: %v", err)
		return
	}
	path := filepath.Join(b.t.TempDir(), "failure.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("no screenshot of the failure: %v", err)
		return
	}
	b.t.Logf("screenshot of %s at the failure: %s", where, path)
}

// run runs actions within one step's deadline.
func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...), "%s", what)
}

// eval returns the value of a JavaScript expression in the page, awaiting
// it when it is a promise.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluate %s", expr)
	return v
}

// waitFor evaluates the JavaScript condition cond every 50ms until it is
// true, or fails t after browserStep. Errors are retried until then: the
// page may be navigating. On timeout it reports what the page's message
// said.
func (b *browser) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		lastErr = err
		select {
		case <-ctx.Done():
			mctx, mcancel := context.WithTimeout(b.ctx, 5*time.Second)
			defer mcancel()
			where, _ := chromedp.Run(mctx, chromedp.Location())
			message, _ := chromedp.Run(mctx, chromedp.Evaluate[string](
				`[...document.querySelectorAll('#message, .field-error')].map(e => e.textContent).filter(Boolean).join(' | ')`))
			require.FailNow(t, "the page did not get there", "waiting %s for %s on %s (page messages %q; last error: %v)",
				browserStep, what, where, message, lastErr)
		case <-tick.C:
		}
	}
}

// text returns the text content of the element sel.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	return eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// visible is a JavaScript condition: sel exists and is not hidden.
func visible(sel string) string {
	return fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && !e.closest('[hidden]'); })()`, sel)
}

// contains is a JavaScript condition: sel's text contains s.
func contains(sel, s string) string {
	return fmt.Sprintf(`(document.querySelector(%q)||{textContent:''}).textContent.includes(%q)`, sel, s)
}

var mailLink = regexp.MustCompile(`https?://\S+/verify-email\?token=\S+`)

func TestAccountPagesInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := startSystem(t, "demo", "other")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	demo := "http://demo.localhost:" + port
	other := "http://other.localhost:" + port
	const (
		email       = "ada@example.com"
		newPassword = "tulip orbit velvet canyon 42"
	)

	t.Run("sign-up shows the tenant's name and asks to verify the email", func(t *testing.T) {
		b.run(t, "open the sign-up page", chromedp.Navigate(demo+"/signup"))
		b.waitFor(t, "the tenant's name", contains("header [data-tenant-name]", "Tenant demo"))
		b.run(t, "fill in the sign-up form",
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), goodPassword),
			chromedp.Click(chromedp.CSS("#signup-form button[type=submit]")))
		b.waitFor(t, "the sign-up confirmation", contains("#message", "Account created"))
	})

	t.Run("the link in the verification email verifies the address", func(t *testing.T) {
		_, body, _ := s.mailTo(email, "Confirm your email address")
		link := mailLink.FindString(body)
		require.NotEmpty(t, link, "no verification link in:\n%s", body)
		u, err := url.Parse(link)
		require.NoError(t, err)
		b.run(t, "open the verification link", chromedp.Navigate(demo+u.RequestURI()))
		b.waitFor(t, "the verification", contains("#verify-status", "is verified"))
		require.Equal(t, "/verify-email", eval[string](t, b, `location.pathname`))
		require.Empty(t, eval[string](t, b, `location.search`), "the token stays out of the address bar once used")
	})

	t.Run("logging in from the keyboard opens the account page", func(t *testing.T) {
		b.run(t, "log in",
			chromedp.Navigate(demo+"/login"),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), goodPassword+kb.Enter))
		b.waitFor(t, "the account page", `location.pathname === '/account'`)
		b.waitFor(t, "the logged-in account", visible("#logged-in"))
		require.Equal(t, email, b.text(t, "#me-email"))
		b.waitFor(t, "this session in the list", contains("#sessions", "(this session)"))
	})

	t.Run("a too short new password is refused next to its field", func(t *testing.T) {
		b.run(t, "submit a short password",
			chromedp.SendKeys(chromedp.CSS("#current_password"), goodPassword),
			chromedp.SendKeys(chromedp.CSS("#new_password"), "short"),
			chromedp.Click(chromedp.CSS("#password-form button[type=submit]")))
		b.waitFor(t, "the field's error", `document.querySelector('#new_password-error').textContent !== ''`)
		require.Equal(t, "true", eval[string](t, b, `document.querySelector('#new_password').getAttribute('aria-invalid')`))
	})

	t.Run("the password can be changed", func(t *testing.T) {
		eval[bool](t, b, `document.querySelector('#password-form').reset() === undefined`)
		b.run(t, "change the password",
			chromedp.SendKeys(chromedp.CSS("#current_password"), goodPassword),
			chromedp.SendKeys(chromedp.CSS("#new_password"), newPassword),
			chromedp.Click(chromedp.CSS("#password-form button[type=submit]")))
		b.waitFor(t, "the confirmation", contains("#message", "Your password is changed"))
		code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:login",
			fmt.Sprintf(`{"email":%q,"password":%q}`, email, newPassword))
		require.Equal(t, http.StatusOK, code, "%s", body)
	})

	t.Run("another tenant's host does not accept the session", func(t *testing.T) {
		access := eval[string](t, b, `sessionStorage.getItem('tenantry.accessToken') || ''`)
		require.NotEmpty(t, access)
		b.run(t, "open the other tenant's account page", chromedp.Navigate(other+"/account"))
		b.waitFor(t, "the other tenant's name", contains("header [data-tenant-name]", "Tenant other"))
		b.waitFor(t, "the logged-out page", visible("#logged-out"))

		status := eval[int](t, b, fmt.Sprintf(`fetch('/v1/auth/me', {headers: {Authorization: 'Bearer ' + %q}}).then(r => r.status)`, access))
		require.Equal(t, http.StatusUnauthorized, status)
		code, body := s.rest(http.MethodGet, "demo.localhost", "/v1/auth/me", "", "Authorization", "Bearer "+access)
		require.Equal(t, http.StatusOK, code, "the token still works on its own tenant: %s", body)
	})

	t.Run("logging out ends the session", func(t *testing.T) {
		b.run(t, "open the account page", chromedp.Navigate(demo+"/account"))
		b.waitFor(t, "the logged-in account", visible("#logged-in"))
		b.run(t, "log out", chromedp.Click(chromedp.CSS("#logout")))
		b.waitFor(t, "the logged-out page", visible("#logged-out"))
		require.NotContains(t, eval[string](t, b, `document.cookie`), "tenantry_csrf")
		b.run(t, "reload the account page", chromedp.Navigate(demo+"/account"))
		b.waitFor(t, "still logged out", visible("#logged-out"))
		code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:login",
			fmt.Sprintf(`{"email":%q,"password":%q}`, email, newPassword))
		require.Equal(t, http.StatusOK, code, "%s", body)
		var login struct{ AccessToken string }
		require.NoError(t, json.Unmarshal(body, &login))
		code, body = s.rest(http.MethodGet, "demo.localhost", "/v1/auth/sessions", "", "Authorization", "Bearer "+login.AccessToken)
		require.Equal(t, http.StatusOK, code, "%s", body)
		var sessions struct{ Sessions []struct{ UserAgent string } }
		require.NoError(t, json.Unmarshal(body, &sessions))
		require.NotEmpty(t, sessions.Sessions)
		for _, session := range sessions.Sessions {
			require.NotContains(t, session.UserAgent, "Chrome", "the browser's session is revoked: %s", body)
		}
	})
}

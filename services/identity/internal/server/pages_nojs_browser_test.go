package server_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// setScript turns the page's JavaScript on or off for the tab, and back on
// when t ends. DevTools' own evaluations (the tests' conditions) still run.
func (b *browser) setScript(t *testing.T, on bool) {
	t.Helper()
	_, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on})
	require.NoError(t, err)
	if !on {
		t.Cleanup(func() {
			_, _ = chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		})
	}
}

// requestedURLs records the URL of every request the tab sends, from now
// until t ends.
func (b *browser) requestedURLs(t *testing.T) func() []string {
	t.Helper()
	var (
		mu   sync.Mutex
		urls []string
	)
	listen, stop := context.WithCancel(b.ctx)
	t.Cleanup(stop)
	require.NoError(t, chromedp.Listen(listen, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL+e.Request.URLFragment)
			mu.Unlock()
		}
	}))
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), urls...)
	}
}

// requireNoSecretInURLs fails t if any URL the tab requested or has in its
// history holds secret or a password field.
func (b *browser) requireNoSecretInURLs(t *testing.T, requested []string, secret string) {
	t.Helper()
	entries, err := chromedp.Run(b.ctx, chromedp.NavigationEntries())
	require.NoError(t, err)
	seen := requested
	for _, e := range entries.Entries {
		seen = append(seen, e.URL)
	}
	require.NotEmpty(t, seen)
	for _, u := range seen {
		decoded, err := url.QueryUnescape(u)
		if err != nil {
			decoded = u
		}
		require.NotContains(t, decoded, secret, "a URL holds the password: %s", u)
		require.NotContains(t, u, "password=", "a URL holds a password field: %s", u)
	}
}

// TestFormsWithAndWithoutJavaScriptInABrowser drives the pages' forms in
// Chromium with its JavaScript off (the browser posts them itself, and the
// server acts on them) and on (the script calls the API): every field error
// shows at once either way, and without the script a new account is
// verified and logs in with Enter, no password in any URL, into a session
// the script then finds.
func TestFormsWithAndWithoutJavaScriptInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := startSystem(t, "demo")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	demo := "http://demo.localhost:" + port

	for _, script := range []struct {
		name string
		on   bool
	}{{"with JavaScript on", true}, {"with JavaScript off", false}} {
		t.Run("a sign-up with several bad fields shows all their errors at once, "+script.name, func(t *testing.T) {
			b.setScript(t, script.on)
			requested := b.requestedURLs(t)
			b.run(t, "open the sign-up page", chromedp.Navigate(demo+"/signup"))
			before := b.currentEntry(t)
			b.run(t, "fill in three bad fields and press Enter",
				chromedp.WaitVisible(chromedp.CSS("#signup-form")),
				chromedp.SendKeys(chromedp.CSS("#email"), "not-an-email"),
				chromedp.SendKeys(chromedp.CSS("#display_name"), "   "),
				chromedp.SendKeys(chromedp.CSS("#password"), "short"+kb.Enter))
			if !script.on {
				b.waitForNewEntry(t, "the server's answer", before)
			}
			for _, field := range []string{"email", "password", "display_name"} {
				b.waitFor(t, "the error of "+field, `document.querySelector('#`+field+`-error').textContent !== ''`)
				require.Equal(t, "true", eval[string](t, b, `document.querySelector('#`+field+`').getAttribute('aria-invalid')`), field)
			}
			if script.on {
				require.Equal(t, before, b.currentEntry(t), "the script sent the form, not the browser")
			}
			require.Contains(t, b.text(t, "#message"), "Please correct the fields marked below.")
			// Without the script the focus comes from the autofocus
			// attribute, which Chromium applies at a rendering update after
			// the page is parsed: on a loaded machine, after the checks above.
			b.waitFor(t, "the first bad field to have the focus", `document.activeElement !== null && document.activeElement.id === 'email'`)
			require.Equal(t, "/signup", eval[string](t, b, `location.pathname + location.search`))
			b.requireNoSecretInURLs(t, requested(), "short")
		})
	}

	t.Run("with JavaScript off, a new account is verified and logs in with Enter, no password in any URL", func(t *testing.T) {
		const (
			email    = "nojs-browser@example.com"
			password = "plum kettle harbor 93 secret"
		)
		b.setScript(t, false)
		requested := b.requestedURLs(t)

		b.run(t, "open the sign-up page", chromedp.Navigate(demo+"/signup"))
		before := b.currentEntry(t)
		b.run(t, "sign up",
			chromedp.WaitVisible(chromedp.CSS("#signup-form")),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), password+kb.Enter))
		b.waitForNewEntry(t, "the server's answer", before)
		b.waitFor(t, "the sign-up confirmation", contains("#message", "Account created"))

		_, body, _ := s.mailTo(email, "Confirm your email address")
		link := mailLink.FindString(body)
		require.NotEmpty(t, link, "no verification link in:\n%s", body)
		u, err := url.Parse(link)
		require.NoError(t, err)
		b.run(t, "open the verification link", chromedp.Navigate(demo+u.RequestURI()))
		before = b.currentEntry(t)
		b.run(t, "press the button", chromedp.Click(chromedp.CSS("#verify-form button[type=submit]")))
		b.waitForNewEntry(t, "the server's answer", before)
		b.waitFor(t, "the verification", contains("#verify-status", "is verified"))

		b.run(t, "open the login page", chromedp.Navigate(demo+"/login?next=/account"))
		before = b.currentEntry(t)
		b.run(t, "log in with Enter",
			chromedp.WaitVisible(chromedp.CSS("#login-form")),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), password+kb.Enter))
		b.waitForNewEntry(t, "the server's answer", before)
		b.waitFor(t, "the account page", `location.pathname === '/account'`)
		b.waitFor(t, "the notice that the page needs JavaScript", visible("[data-needs-script]"))
		b.requireNoSecretInURLs(t, requested(), password)

		b.setScript(t, true)
		b.run(t, "reload the account page with JavaScript on", chromedp.Navigate(demo+"/account"))
		b.waitFor(t, "the logged-in account", visible("#logged-in"))
		require.Equal(t, email, b.text(t, "#me-email"), "the script finds the session the form opened")
		require.False(t, eval[bool](t, b, `!!document.querySelector('[data-needs-script]')`), "the script removes the notice")
	})
}

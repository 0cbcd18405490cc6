package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// TestLoginRedirectsInABrowser logs in through /login with hostile values
// of ?next= and checks that Chromium always ends on the tenant's own
// origin; then, with JavaScript off, that the login form sends no password
// in a URL and logs in all the same.
func TestLoginRedirectsInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := startSystem(t, "demo")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	home := "demo.localhost:" + port
	demo := "http://" + home
	// Another origin that answers (identity's 404 for a host that is no
	// tenant's), so a redirect there lands on a page the test can see
	// instead of a DNS error.
	evil := "evil.localhost:" + port
	// Each login has an account of its own: the login rate limit allows
	// one account and address ten attempts in a row, fewer than the cases.
	accounts := 0
	newAccount := func(t *testing.T) string {
		t.Helper()
		accounts++
		email := fmt.Sprintf("next%d@example.com", accounts)
		_, err := s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: email, Password: goodPassword})
		require.NoError(t, err)
		return email
	}

	// want is the path the browser must end on, or "" for any path of the
	// tenant's origin (a same-origin path the server answers as it likes).
	cases := []struct {
		name, next, want string
	}{
		{"a same-origin path is followed", "/account?tab=sessions#sessions", "/account"},
		{"another page of the tenant is followed", "/admin/users", "/admin/users"},
		{"a scheme-relative URL", "//" + evil + "/x", "/account"},
		{"three slashes", "///" + evil + "/x", "/account"},
		{"a slash and a backslash", "/\\" + evil + "/x", "/account"},
		{"two backslashes", "\\\\" + evil + "/x", "/account"},
		{"a backslash and a slash", "\\/" + evil + "/x", "/account"},
		{"a tab between the slashes", "/\t/" + evil + "/x", "/account"},
		{"a newline between the slashes", "/\n/" + evil + "/x", "/account"},
		{"a carriage return between the slashes", "/\r/" + evil + "/x", "/account"},
		{"a tab and a backslash", "/\t\\" + evil + "/x", "/account"},
		{"a leading tab", "\t//" + evil + "/x", "/account"},
		{"a leading space", " //" + evil + "/x", "/account"},
		{"a dot segment before two slashes", "/.//" + evil + "/x", "/account"},
		{"an encoded dot segment before two slashes", "/%2e//" + evil + "/x", "/account"},
		{"a dot-dot segment that climbs to two slashes", "/a/..//" + evil + "/x", "/account"},
		{"an absolute http URL", "http://" + evil + "/x", "/account"},
		{"an absolute URL with the tenant as userinfo", "http://" + home + "@" + evil + "/x", "/account"},
		{"a scheme-relative URL with the tenant as userinfo", "//" + home + "@" + evil + "/x", "/account"},
		{"a scheme without slashes is a path of the tenant", "http:" + evil + "/x", ""},
		{"a javascript: URL", "javascript:location.assign('http://" + evil + "/x')", "/account"},
		{"a data: URL", "data:text/html,<script>location='http://" + evil + "/x'</script>", "/account"},
		{"encoded slashes stay a path of the tenant", "/%2F%2F" + evil + "/x", ""},
		{"an encoded backslash stays a path of the tenant", "/%5C" + evil + "/x", ""},
		{"an at sign in the path stays a path of the tenant", "/@" + evil + "/x", ""},
	}
	// Two ways in: the link as an attacker sends it (the server may clean
	// it up before the page loads), and ?next= put in the address bar after
	// the page loaded, so the page's own check meets every payload too.
	ways := []struct {
		name string
		open func(t *testing.T, next string)
	}{
		{"in the link", func(t *testing.T, next string) {
			b.run(t, "open the login link", chromedp.Navigate(demo+"/login?next="+url.QueryEscape(next)))
		}},
		{"put there after the page loaded", func(t *testing.T, next string) {
			b.run(t, "open the login page", chromedp.Navigate(demo+"/login"))
			quoted, err := json.Marshal(next)
			require.NoError(t, err)
			eval[bool](t, b, fmt.Sprintf(
				`(history.replaceState(null, '', '/login?next=' + encodeURIComponent(%s)), true)`, quoted))
		}},
	}
	for _, c := range cases {
		for _, way := range ways {
			t.Run(c.name+", "+way.name+", ends on the tenant's origin", func(t *testing.T) {
				email := newAccount(t)
				way.open(t, c.next)
				b.waitFor(t, "the login form", visible("#login-form"))
				b.run(t, "log in",
					chromedp.SendKeys(chromedp.CSS("#email"), email),
					chromedp.SendKeys(chromedp.CSS("#password"), goodPassword+kb.Enter))
				b.waitFor(t, "the browser to leave the login page", fmt.Sprintf(
					`!(location.host === %q && location.pathname === '/login')`, home))
				require.Equal(t, home, eval[string](t, b, `location.host`), "next=%q", c.next)
				if c.want != "" {
					require.Equal(t, c.want, eval[string](t, b, `location.pathname`), "next=%q", c.next)
				}
			})
		}
	}

	t.Run("with JavaScript off, the login form sends no password in a URL and logs in", func(t *testing.T) {
		const password = "plum kettle harbor 93 secret"
		var (
			mu   sync.Mutex
			urls []string
		)
		listen, stopListening := context.WithCancel(b.ctx)
		defer stopListening()
		require.NoError(t, chromedp.Listen(listen, func(ev any) {
			if e, ok := ev.(*network.EventRequestWillBeSent); ok {
				mu.Lock()
				urls = append(urls, e.Request.URL+e.Request.URLFragment)
				mu.Unlock()
			}
		}))
		_, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		})

		const email = "nojs-next@example.com"
		_, err = s.auth.SignUp(in("demo"), &identityv1.SignUpRequest{Email: email, Password: password})
		require.NoError(t, err)
		b.run(t, "open the login page", chromedp.Navigate(demo+"/login?next=/account"))
		before := b.currentEntry(t)
		b.run(t, "submit the form with Enter",
			chromedp.WaitVisible(chromedp.CSS("#login-form")),
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), password+kb.Enter))
		b.waitForNewEntry(t, "the form's answer", before)

		entries, err := chromedp.Run(b.ctx, chromedp.NavigationEntries())
		require.NoError(t, err)
		mu.Lock()
		seen := append([]string(nil), urls...)
		mu.Unlock()
		for _, e := range entries.Entries {
			seen = append(seen, e.URL)
		}
		require.NotEmpty(t, seen)
		for _, u := range seen {
			decoded, err := url.QueryUnescape(u)
			if err != nil {
				decoded = u
			}
			require.NotContains(t, decoded, password, "a URL holds the password: %s", u)
			require.NotContains(t, u, "password=", "a URL holds a password field: %s", u)
		}
		// The server acted on the form: logged in, to next.
		b.waitFor(t, "the account page", `location.pathname === '/account'`)
	})
}

// currentEntry is the id of the tab's current history entry.
func (b *browser) currentEntry(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	h, err := chromedp.Run(ctx, chromedp.NavigationEntries())
	require.NoError(t, err)
	return h.Entries[h.CurrentIndex].ID
}

// waitForNewEntry polls the tab's history (which works with JavaScript
// off) until its current entry is no longer the one with id before, or
// fails t after browserStep. An entry exists once its navigation commits,
// with its final URL.
func (b *browser) waitForNewEntry(t *testing.T, what string, before int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		h, err := chromedp.Run(ctx, chromedp.NavigationEntries())
		if err == nil && h.Entries[h.CurrentIndex].ID != before {
			return
		}
		select {
		case <-ctx.Done():
			require.FailNow(t, "the page did not get there", "waiting %s for %s (last error: %v)", browserStep, what, err)
		case <-tick.C:
		}
	}
}

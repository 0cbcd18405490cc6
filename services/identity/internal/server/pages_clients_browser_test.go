package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// TestOAuthClientsPageInABrowser: a tenant admin, on a phone-wide screen,
// registers a confidential client on /admin/clients, sees its secret once
// (which the domain then accepts), sees every bad field at once, edits,
// rotates the secret and deletes the client.
func TestOAuthClientsPageInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	s := startSystem(t, "demo")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	demo := "http://demo.localhost:" + port
	const admin = "root@example.com"
	login := s.makeAdmin("demo", admin)
	bearer := "Bearer " + login.GetAccessToken()
	ctx := context.Background()
	verify := func(clientID, secret string) error {
		return s.identity.VerifyClientSecret(ctx, "demo", clientID, secret)
	}
	// noSecretKept checks that secret is in no URL and no storage of the
	// page, and in its DOM only while the secret panel shows it.
	noSecretKept := func(t *testing.T, secret string) {
		t.Helper()
		require.NotContains(t, eval[string](t, b, `location.href`), secret)
		require.NotContains(t, eval[string](t, b, `history.state === null ? '' : JSON.stringify(history.state)`), secret)
		require.NotContains(t, eval[string](t, b, `JSON.stringify(Object.assign({}, localStorage))`), secret)
		require.NotContains(t, eval[string](t, b, `JSON.stringify(Object.assign({}, sessionStorage))`), secret)
		require.NotContains(t, eval[string](t, b, `document.cookie`), secret)
	}
	row := func(clientID string) string { return fmt.Sprintf(`#clients li[data-client=%q]`, clientID) }
	// confirmWith clicks the row's action button and then the dialog's
	// confirming button.
	confirmWith := func(t *testing.T, clientID, action string) {
		t.Helper()
		b.run(t, action+" "+clientID, chromedp.Click(chromedp.CSS(row(clientID)+fmt.Sprintf(` button[data-action=%q]`, action))))
		b.waitFor(t, "the confirmation dialog", `document.querySelector('#confirm').open`)
		b.run(t, "confirm", chromedp.Click(chromedp.CSS("#confirm-yes")))
		b.waitFor(t, "the dialog to close", `!document.querySelector('#confirm').open`)
	}
	// shownSecret waits for the secret panel and returns the client id and
	// secret it shows.
	shownSecret := func(t *testing.T) (string, string) {
		t.Helper()
		b.waitFor(t, "the secret panel", visible("#secret-value"))
		require.Contains(t, b.text(t, "#secret-panel"), "Copy it now: it will not be shown again.")
		return b.text(t, "#secret-client-id"), eval[string](t, b, `document.querySelector('#secret-value').value`)
	}

	t.Run("the admin logs in on a phone and opens the page from the account page", func(t *testing.T) {
		b.run(t, "a phone-wide screen", chromedp.EmulateViewport(390, 844))
		b.run(t, "log in",
			chromedp.Navigate(demo+"/login"),
			chromedp.SendKeys(chromedp.CSS("#email"), admin),
			chromedp.SendKeys(chromedp.CSS("#password"), goodPassword+kb.Enter))
		b.waitFor(t, "the admin links", visible(`#admin-link a[href="/admin/clients"]`))
		b.run(t, "follow the link", chromedp.Click(chromedp.CSS(`#admin-link a[href="/admin/clients"]`)))
		b.waitFor(t, "the clients page", `location.pathname === '/admin/clients'`)
		b.waitFor(t, "the admin section", visible("#client-form"))
		b.waitFor(t, "the empty list", visible("#no-clients"))
	})

	t.Run("a missing name and a bad redirect URI are both shown at once", func(t *testing.T) {
		b.run(t, "submit a nameless client with an http redirect URI",
			chromedp.SetValue(chromedp.CSS("#redirect_uris"), "https://app.example.com/ok\nhttp://app.example.com/callback"),
			chromedp.Click(chromedp.CSS(`#client-form button[type=submit]`)))
		b.waitFor(t, "the name's error", `document.querySelector('#display_name-error').textContent !== ''`)
		b.waitFor(t, "the redirect URI's error", contains("#redirect_uris-error", "http://app.example.com/callback"))
		for _, id := range []string{"#display_name", "#redirect_uris"} {
			require.Equal(t, "true", eval[string](t, b, fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-invalid')`, id)), id)
		}
		require.Contains(t, b.text(t, "#message"), "Please correct the fields marked below.")
		require.Equal(t, "display_name", eval[string](t, b, `document.activeElement.id`), "the first bad field has the focus")
		code, body := s.rest(http.MethodGet, "demo.localhost", "/v1/oauthClients", "", "Authorization", bearer)
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.NotContains(t, string(body), "clientId", "nothing was registered")
	})

	var clientID, secret string
	t.Run("a confidential client is registered and its secret shown once, which the domain accepts", func(t *testing.T) {
		b.run(t, "correct the form and submit it",
			chromedp.SendKeys(chromedp.CSS("#display_name"), "Demo Web"),
			chromedp.SetValue(chromedp.CSS("#redirect_uris"), "https://app.example.com/callback\nhttp://localhost:3000/callback"),
			chromedp.Click(chromedp.CSS(`#grant_types input[value="GRANT_TYPE_REFRESH_TOKEN"]`)),
			chromedp.SendKeys(chromedp.CSS("#allowed_scopes"), "openid profile offline_access notes:read"),
			chromedp.Click(chromedp.CSS(`#client-form button[type=submit]`)))
		clientID, secret = shownSecret(t)
		require.Regexp(t, `^oc_[0-9a-f]{32}$`, clientID)
		require.True(t, strings.HasPrefix(secret, "ocs_"), "secret %q", secret)
		require.NoError(t, verify(clientID, secret))
		b.waitFor(t, "the client in the list", contains(row(clientID), "Demo Web"))
		require.Empty(t, eval[string](t, b, `document.querySelector('#display_name').value`), "the form is ready for another client")
		require.Empty(t, b.text(t, "#redirect_uris-error"))
		noSecretKept(t, secret)
		require.True(t, eval[bool](t, b, `document.documentElement.scrollWidth <= window.innerWidth`), "the page fits a phone's width")

		b.run(t, "hide the secret", chromedp.Click(chromedp.CSS("#secret-done")))
		b.waitFor(t, "the secret panel to go", `document.querySelector('#secret-panel').hidden`)
		require.NotContains(t, eval[string](t, b, `document.documentElement.outerHTML + document.querySelector('#secret-value').value`), secret,
			"once hidden, the secret is gone from the page")
		b.run(t, "reload the page", chromedp.Navigate(demo+"/admin/clients"))
		b.waitFor(t, "the client in the list", contains(row(clientID), "Demo Web"))
		require.True(t, eval[bool](t, b, `document.querySelector('#secret-panel').hidden`))
		require.NotContains(t, eval[string](t, b, `document.documentElement.outerHTML`), secret, "the secret is not shown again")
		noSecretKept(t, secret)
	})

	t.Run("an edit saves the client with its etag", func(t *testing.T) {
		b.run(t, "edit the client", chromedp.Click(chromedp.CSS(row(clientID)+` button[data-action="edit"]`)))
		b.waitFor(t, "the form filled in", `document.querySelector('#display_name').value === 'Demo Web'`)
		require.Equal(t, "https://app.example.com/callback\nhttp://localhost:3000/callback", eval[string](t, b, `document.querySelector('#redirect_uris').value`))
		b.run(t, "rename it",
			chromedp.SetValue(chromedp.CSS("#display_name"), "Demo Web 2"),
			chromedp.Click(chromedp.CSS(`#client-form button[type=submit]`)))
		b.waitFor(t, "the new name in the list", contains(row(clientID)+" .client-name", "Demo Web 2"))
		require.Contains(t, b.text(t, "#message"), "Demo Web 2 saved.")
		code, body := s.rest(http.MethodGet, "demo.localhost", "/v1/oauthClients/"+clientID, "", "Authorization", bearer)
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.Contains(t, string(body), `"displayName":"Demo Web 2"`)
		require.Contains(t, string(body), `"offline_access"`, "the fields not changed are kept")
	})

	t.Run("rotating, once confirmed, shows a new secret once and ends the old one", func(t *testing.T) {
		confirmWith(t, clientID, "rotate")
		id, rotated := shownSecret(t)
		require.Equal(t, clientID, id)
		require.NotEqual(t, secret, rotated)
		require.NoError(t, verify(clientID, rotated))
		require.Error(t, verify(clientID, secret), "the old secret still works")
		noSecretKept(t, rotated)
		secret = rotated
	})

	t.Run("deleting, once confirmed, removes the client", func(t *testing.T) {
		confirmWith(t, clientID, "delete")
		b.waitFor(t, "the row to go", fmt.Sprintf(`!document.querySelector(%q)`, row(clientID)))
		require.Contains(t, b.text(t, "#message"), "deleted.")
		code, body := s.rest(http.MethodGet, "demo.localhost", "/v1/oauthClients/"+clientID, "", "Authorization", bearer)
		require.Equal(t, http.StatusNotFound, code, "%s", body)
		require.Error(t, verify(clientID, secret))
	})
}

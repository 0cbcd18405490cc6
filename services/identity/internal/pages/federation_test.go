package pages_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/pages"
)

func get(h http.Handler, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

// The login and sign-up pages offer the tenant's other providers, keeping
// the login's next (escaped) for after the provider's sign-in.
func TestPagesOfferOtherProviders(t *testing.T) {
	accounts := &fakeAccounts{providers: []pages.SignInProvider{
		{DisplayName: "Corporate <SSO>", LoginPath: "/login/idp/corp"},
		{DisplayName: "GitHub", LoginPath: "/login/idp/github"},
	}}
	h := pages.Handler(accounts)

	w := get(h, "/login?next=/oauth/login%3Fid%3Dabc%26x%3D1")
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	require.Contains(t, body, `href="/login/idp/corp?next=%2foauth%2flogin%3fid%3dabc%26x%3d1"`)
	require.Contains(t, body, "Log in with Corporate &lt;SSO&gt;")
	require.Contains(t, body, `href="/login/idp/github?next=`)

	w = get(h, "/signup")
	require.Contains(t, w.Body.String(), `<a class="button secondary" href="/login/idp/github">Sign up with GitHub</a>`)

	// None configured: no section at all.
	w = get(pages.Handler(&fakeAccounts{}), "/login")
	require.NotContains(t, w.Body.String(), "Other ways to log in")
}

// A sign-in with a provider comes back with a reason code, which the page
// explains in its own fixed words: whatever a link puts there, the page
// says nothing else.
func TestFederationReasonsAreFixedTexts(t *testing.T) {
	h := pages.Handler(&fakeAccounts{})
	for _, tc := range []struct{ query, want string }{
		{"federation_error=FEDERATION_STATE_INVALID", "started in another browser"},
		{"federation_error=FEDERATED_ACCOUNT_NOT_LINKED", "connect it from your account page"},
		{"federation_error=" + url.QueryEscape("<script>alert(1)</script> log in at evil.example"), "did not work"},
	} {
		w := get(h, "/login?"+tc.query)
		require.Equal(t, http.StatusOK, w.Code)
		require.Contains(t, w.Body.String(), tc.want)
		require.Contains(t, w.Body.String(), `class="message error"`)
		require.NotContains(t, w.Body.String(), "evil.example")
	}
	w := get(h, "/account?connected=github")
	require.Contains(t, w.Body.String(), "Connected: you can log in with it")
}

// The link page asks for the password of the account that has the email
// the provider vouched for, posts it as a form that works without the
// script, and logs in with a redirect.
func TestLinkPage(t *testing.T) {
	accounts := &fakeAccounts{pending: &pages.PendingLink{Provider: "Corporate SSO", Email: "ada@example.com", PasswordSet: true}}
	h := pages.Handler(accounts)
	w := get(h, "/login/link")
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	require.Contains(t, body, "<strong>ada@example.com</strong>")
	require.Contains(t, body, `<form id="link-form" method="post" action="/login/link" novalidate>`)

	w = post(h, "/login/link", url.Values{"password": {"the password"}})
	require.Equal(t, http.StatusSeeOther, w.Code)
	require.Equal(t, "/after-link", w.Header().Get("Location"))
	require.Equal(t, []string{"LinkWithPassword password=the password"}, accounts.Calls())

	// A wrong password: the page again, with the error, never the password.
	accounts.err = &pages.FormError{Status: http.StatusUnauthorized, Message: "wrong email or password"}
	w = post(h, "/login/link", url.Values{"password": {"the password"}})
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, w.Body.String(), "wrong email or password")
	require.NotContains(t, w.Body.String(), "the password")

	// An account without a password: no form, the way to connect instead.
	w = get(pages.Handler(&fakeAccounts{pending: &pages.PendingLink{Provider: "GitHub", Email: "bo@example.com"}}), "/login/link")
	require.NotContains(t, w.Body.String(), "<form")
	require.Contains(t, w.Body.String(), "connect GitHub from your account page")

	// Nothing pending.
	w = get(pages.Handler(&fakeAccounts{}), "/login/link")
	require.NotContains(t, w.Body.String(), "<form")
	require.Contains(t, w.Body.String(), "No sign-in is waiting")
}

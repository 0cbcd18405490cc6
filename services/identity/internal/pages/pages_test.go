package pages_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/pages"
)

// serve sends one request to the pages' handler.
func serve(method, target, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	w := httptest.NewRecorder()
	pages.Handler(nil).ServeHTTP(w, r)
	return w
}

var formTag = regexp.MustCompile(`<form\b[^>]*>`)

func TestEveryFormPostsToItsOwnPage(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("static/*.html")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	forms := 0
	for _, p := range pages.Paths {
		// With a token, as the email links open them: the verification
		// page has a form only then.
		body := serve(http.MethodGet, p+"?token=t", "").Body.String()
		for _, form := range formTag.FindAllString(body, -1) {
			forms++
			require.Contains(t, form, ` method="post"`, "%s: %s", p, form)
			require.Contains(t, form, ` action="`+p+`"`, "%s: %s", p, form)
		}
	}
	// And no file holds a form that no page path serves.
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, form := range formTag.FindAllString(string(b), -1) {
			require.Contains(t, form, ` method="post"`, "%s: %s", file, form)
		}
	}
	require.Equal(t, 16, forms, "the pages' forms")
}

// TestAFormPostedToAPageIsRefusedWithoutEcho: a handler without Accounts
// acts on no form.
func TestAFormPostedToAPageIsRefusedWithoutEcho(t *testing.T) {
	t.Parallel()
	const body = "email=ada%40example.com&password=hunter2-secret"
	for _, p := range pages.Paths {
		t.Run("a POST to "+p+" is 405 with a page that links back", func(t *testing.T) {
			t.Parallel()
			w := serve(http.MethodPost, p+"?next=/account", body)
			require.Equal(t, http.StatusMethodNotAllowed, w.Code)
			require.Equal(t, "GET, HEAD", w.Header().Get("Allow"))
			require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			require.Equal(t, "no-referrer", w.Header().Get("Referrer-Policy"))
			require.Contains(t, w.Header().Get("Content-Security-Policy"), "default-src 'none'")
			require.Contains(t, w.Body.String(), `id="form-not-sent"`)
			require.Contains(t, w.Body.String(), `<a href="`+p+`">`)
			require.NotContains(t, w.Body.String(), "hunter2")
			require.NotContains(t, w.Body.String(), "example.com")
		})
	}
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		w := serve(method, "/login", body)
		require.Equal(t, http.StatusMethodNotAllowed, w.Code, method)
		require.NotContains(t, w.Body.String(), "hunter2", method)
	}
}

func TestPageURLsKeepNoPasswordAndNoForeignNext(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, target, location string
	}{
		{"a login submitted as GET goes to the bare page", "/login?email=ada%40example.com&password=hunter2", "/login"},
		{"a password change submitted as GET too", "/account?current_password=a&new_password=b", "/account"},
		{"a reset submitted as GET too, token and all", "/reset-password?token=abc&new_password=b", "/reset-password"},
		{"a foreign next is dropped", "/login?next=%2F%5Cevil.example%2Fx", "/login"},
		{"a foreign next is dropped, the rest kept", "/login?lang=en&next=//evil.example", "/login?lang=en"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := serve(http.MethodGet, c.target, "")
			require.Equal(t, http.StatusSeeOther, w.Code)
			require.Equal(t, c.location, w.Header().Get("Location"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			require.Empty(t, w.Body.String(), "the answer does not repeat the URL")
		})
	}
	for _, target := range []string{"/login?next=%2Fadmin%2Fusers", "/reset-password?token=abc", "/login"} {
		w := serve(http.MethodGet, target, "")
		require.Equal(t, http.StatusOK, w.Code, target)
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"), target)
	}
}

func TestAssetsAreServedAndPagesAreNotAssets(t *testing.T) {
	t.Parallel()
	w := serve(http.MethodGet, pages.AssetsPrefix+"app.js", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "no-cache", w.Header().Get("Cache-Control"))
	for _, name := range []string{"login.html", "form-not-sent.html", "nope.js", "", "../pages.go"} {
		require.Equal(t, http.StatusNotFound, serve(http.MethodGet, pages.AssetsPrefix+name, "").Code, name)
	}
}

// TestTheOAuthClientsPageNeedsItsScript: the admin page that shows client
// secrets works only with its script, which keeps a secret in the page
// alone (never in storage or a URL).
func TestTheOAuthClientsPageNeedsItsScript(t *testing.T) {
	t.Parallel()
	w := serve(http.MethodGet, "/admin/clients", "")
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	require.Contains(t, body, `<body data-page="admin-clients">`)
	require.Contains(t, body, "data-needs-script")
	require.Contains(t, body, `<form id="client-form" method="post" action="/admin/clients" novalidate>`)
	require.Contains(t, body, "it will not be shown again")
	for _, field := range []string{"display_name", "type", "redirect_uris", "post_logout_redirect_uris", "grant_types", "allowed_scopes", "first_party"} {
		require.Contains(t, body, `id="`+field+`-error"`, "the errors of %s have their place", field)
	}
	for _, p := range []string{"/account", "/admin/users"} {
		require.Contains(t, serve(http.MethodGet, p, "").Body.String(), `<a href="/admin/clients">`, "%s links to the OAuth clients", p)
	}
	script, err := os.ReadFile("static/app.js")
	require.NoError(t, err)
	require.NotContains(t, string(script), "localStorage", "the pages keep nothing in localStorage")
}

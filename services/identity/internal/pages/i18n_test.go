package pages_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/pages"
)

var (
	// templateText finds the texts the templates translate: {{.T "..."}}
	// and the labels of {{.Field "name" "Label" ...}}.
	templateText = regexp.MustCompile(`\.T(?:Strong)? "((?:[^"\\]|\\.)*)"|\.Field "[^"]*" "((?:[^"\\]|\\.)*)"`)
	// goText finds the texts the Go code translates: the pages' messages
	// (msg... constants), the federation messages and v.T("...").
	goText = regexp.MustCompile(`(?m)(?:^\s*msg\w+\s*=\s*|\bv\.T\(|^\s*"[A-Z_]+":\s*)"((?:[^"\\]|\\.)*)"(?:\s*\+\s*"((?:[^"\\]|\\.)*)")?`)
)

// TestEveryTextOfThePagesIsTranslated: each text the templates and the
// page code translate has an entry in every other language's catalog, so
// that a new text cannot ship in English only without this test failing.
func TestEveryTextOfThePagesIsTranslated(t *testing.T) {
	t.Parallel()
	catalogs, err := filepath.Glob("../i18n/locales/*.json")
	require.NoError(t, err)
	var texts []string
	files, err := filepath.Glob("static/*.html")
	require.NoError(t, err)
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, m := range templateText.FindAllStringSubmatch(string(b), -1) {
			texts = append(texts, m[1]+m[2])
		}
	}
	for _, file := range []string{"forms.go", "view.go"} {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, m := range goText.FindAllStringSubmatch(string(b), -1) {
			texts = append(texts, m[1]+m[2])
		}
	}
	require.Greater(t, len(texts), 80)
	scriptTexts := scriptText(t)
	for _, file := range catalogs {
		if strings.HasSuffix(file, ".errors.json") {
			continue // the API's messages, see TestEveryFaultMessageIsTranslated in internal/i18n
		}
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var catalog map[string]string
		require.NoError(t, json.Unmarshal(b, &catalog))
		want := texts
		if strings.HasSuffix(file, ".script.json") {
			want = scriptTexts
		}
		for _, text := range want {
			text = strings.ReplaceAll(text, `\"`, `"`)
			require.Contains(t, catalog, text, "%s has no translation of %q", file, text)
		}
	}
}

// scriptCall finds the texts app.js translates: t('...').
var scriptCall = regexp.MustCompile(`\bt\('((?:[^'\\]|\\.)*)'`)

func scriptText(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("static/app.js")
	require.NoError(t, err)
	var texts []string
	for _, m := range scriptCall.FindAllStringSubmatch(string(b), -1) {
		texts = append(texts, m[1])
	}
	require.Greater(t, len(texts), 80)
	return texts
}

// TestAPageInGerman: Accept-Language chooses the language of the page
// (its lang attribute, its text and the script's texts), ?lang= overrides
// it and is remembered in a cookie; the tenant's branding is on the page.
func TestAPageInGerman(t *testing.T) {
	t.Parallel()
	h := pages.Handler(&fakeAccounts{})
	r := httptest.NewRequest(http.MethodGet, "/login", nil)
	r.Header.Set("Accept-Language", "de-AT,de;q=0.9,en;q=0.5")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
	body := w.Body.String()
	require.Contains(t, body, `<html lang="de">`)
	require.Contains(t, body, `<title>Anmelden</title>`)
	require.Contains(t, body, `<label for="password">Passwort</label>`)
	require.Contains(t, body, `<a href="/forgot-password">Passwort vergessen?</a>`)
	require.NotContains(t, body, "Forgot your password?")
	require.Contains(t, body, `<meta name="i18n-messages" content="{&#34;`)
	require.Contains(t, body, `Abbrechen`, "the script's texts in German")
	// The branding: name, logo (whose origin the policy allows) and colours.
	require.Contains(t, body, `<span data-tenant-name data-server-named>Example Co</span>`)
	require.Contains(t, body, `<img class="logo" src="https://cdn.example.com/logo.png" alt="" height="32">`)
	require.Contains(t, w.Header().Get("Content-Security-Policy"), "img-src 'self' data: https://cdn.example.com;")
	require.Contains(t, body, `<link rel="stylesheet" href="/assets/brand.css">`)
	// The other language is a link; this one is not.
	require.Contains(t, body, `<a href="/login?lang=en" lang="en" hreflang="en">English</a>`)
	require.Contains(t, body, `<span lang="de" aria-current="true">Deutsch</span>`)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/assets/brand.css", nil))
	require.Equal(t, "text/css; charset=utf-8", w.Header().Get("Content-Type"))
	require.Equal(t, ":root { --accent: #ffeb3b; --accent-text: #1d2430; }\n", w.Body.String())

	// ?lang=en beats Accept-Language, and the choice is kept in a cookie.
	r = httptest.NewRequest(http.MethodGet, "/signup?lang=en", nil)
	r.Header.Set("Accept-Language", "de")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Contains(t, w.Body.String(), `<html lang="en">`)
	require.Contains(t, w.Body.String(), `<h1>Create your account</h1>`)
	require.Contains(t, w.Header().Get("Set-Cookie"), "tenantry_lang=en")

	// A form posted without the script is answered in the page's language.
	r = httptest.NewRequest(http.MethodPost, "/forgot-password", strings.NewReader("email=ada%40example.com"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept-Language", "de")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), "Wenn diese E-Mail-Adresse zu einem Konto gehört, ist ein Link zum Wählen eines neuen Passworts unterwegs.")
}

// TestPagesShowAPIErrorsInGerman: the API's English error messages, and
// its field violations, are shown in the page's language (the errors
// catalog), the texts their verbs wrote unchanged; the script gets the
// same catalog for the errors it shows.
func TestPagesShowAPIErrorsInGerman(t *testing.T) {
	t.Parallel()
	t.Run("a wrong login on /login?lang=de says so in German", func(t *testing.T) {
		t.Parallel()
		accounts := &fakeAccounts{err: &pages.FormError{Status: http.StatusUnauthorized,
			Message: "the email or username and password do not match an account (or its email address is not verified yet: follow the link we sent)"}}
		w := post(pages.Handler(accounts), "/login?lang=de", url.Values{"email": {"ada@example.com"}, "password": {"wrong"}})
		require.Equal(t, http.StatusUnauthorized, w.Code)
		body := w.Body.String()
		require.Contains(t, body, `<html lang="de">`)
		// The message, not the catalog in the head (whose keys are English).
		message := regexp.MustCompile(`<div id="message"[^>]*>([^<]*)</div>`).FindStringSubmatch(body)
		require.NotNil(t, message)
		require.Equal(t, "E-Mail-Adresse oder Benutzername und Passwort passen zu keinem Konto "+
			"(oder seine E-Mail-Adresse ist noch nicht bestätigt: folgen Sie dem Link, den wir geschickt haben)", message[1])
		require.Contains(t, body, `<meta name="i18n-api-messages" content="{&#34;`, "the script's catalog of the API's errors")
	})
	t.Run("a field violation with a verb is translated next to its field", func(t *testing.T) {
		t.Parallel()
		accounts := &fakeAccounts{err: &pages.FormError{Status: http.StatusBadRequest, Message: "email is not a valid email address (like ann@example.com)",
			Fields: []pages.FieldError{{Field: "email", Description: "email is not a valid email address (like ann@example.com)"}}}}
		w := post(pages.Handler(accounts), "/signup?lang=de", url.Values{"email": {"ada"}, "password": {"pw"}})
		require.Equal(t, http.StatusBadRequest, w.Code)
		require.Contains(t, w.Body.String(), `<p id="email-error" class="field-error">email ist keine gültige E-Mail-Adresse (wie ann@example.com)</p>`)
	})
	t.Run("in English the message is the API's", func(t *testing.T) {
		t.Parallel()
		accounts := &fakeAccounts{err: &pages.FormError{Status: http.StatusUnauthorized, Message: "the password is not correct"}}
		w := post(pages.Handler(accounts), "/login?lang=en", url.Values{"email": {"ada@example.com"}, "password": {"wrong"}})
		require.Contains(t, w.Body.String(), `<div id="message" class="message error" role="status" aria-live="polite">the password is not correct</div>`)
		require.Contains(t, w.Body.String(), `<meta name="i18n-api-messages" content="{}">`)
	})
}

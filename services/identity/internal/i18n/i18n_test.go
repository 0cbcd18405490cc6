package i18n_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"tenantry.dev/identity/internal/i18n"
)

func TestMatchPicksTheClosestSupportedLanguage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		preferences []string
		want        language.Tag
	}{
		{"nothing", nil, language.English},
		{"Austrian German", []string{"de-AT,de;q=0.9,en;q=0.5"}, language.German},
		{"a language not supported", []string{"fr-FR,fr;q=0.9"}, language.English},
		{"German ranked second", []string{"fr, de;q=0.8"}, language.German},
		{"a choice before Accept-Language", []string{"en", "", "de-DE"}, language.English},
		{"an empty choice is skipped", []string{"", "de"}, language.German},
		{"garbage", []string{"%%%;q=x"}, language.English},
	} {
		require.Equal(t, c.want, i18n.Match(c.preferences...), c.name)
	}
}

func TestFromRequestPrefersTheQueryThenTheCookie(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/login", nil)
	r.Header.Set("Accept-Language", "de")
	require.Equal(t, language.German, i18n.FromRequest(r))
	r.Header.Set("Cookie", i18n.CookieName+"=en")
	require.Equal(t, language.English, i18n.FromRequest(r))
	r = httptest.NewRequest("GET", "/login?lang=de", nil)
	r.Header.Set("Cookie", i18n.CookieName+"=en")
	require.Equal(t, language.German, i18n.FromRequest(r))
}

func TestPrinterTranslatesAndFallsBackToTheKey(t *testing.T) {
	t.Parallel()
	de := i18n.NewPrinter(language.German)
	require.Equal(t, "Anmelden", de.T("Log in"))
	require.Equal(t, "Mit GitHub anmelden", de.T("Log in with %s", "GitHub"))
	require.Equal(t, "No such text, 100% English", de.T("No such text, 100% English"), "a text without arguments is not formatted")
	require.Equal(t, "Log in", i18n.NewPrinter(language.English).T("Log in"))
	require.Equal(t, "Log in with GitHub", i18n.Printer{}.T("Log in with %s", "GitHub"))
	require.Equal(t, language.German, i18n.FromContext(i18n.WithLanguage(context.Background(), language.German)))
	require.Equal(t, language.English, i18n.FromContext(context.Background()))
	require.Equal(t, "Deutsch", i18n.Name(language.German))
}

var (
	verb        = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)
	placeholder = regexp.MustCompile(`\{\d+\}`)
)

// TestCatalogsKeepTheirKeysFormats: a translation has the verbs (server)
// or placeholders (script) of its English key, or the text would lose or
// garble what is filled in.
func TestCatalogsKeepTheirKeysFormats(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("locales/*.json")
	require.NoError(t, err)
	require.Len(t, files, 2*(len(i18n.Supported)-1))
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var catalog map[string]string
		require.NoError(t, json.Unmarshal(data, &catalog), file)
		pattern := verb
		if strings.HasSuffix(file, ".script.json") {
			pattern = placeholder
		}
		for key, msg := range catalog {
			require.NotEmpty(t, strings.TrimSpace(msg), "%s: %q", file, key)
			want, got := pattern.FindAllString(key, -1), pattern.FindAllString(msg, -1)
			slices.Sort(want)
			slices.Sort(got)
			require.Equal(t, want, got, "%s: %q → %q", file, key, msg)
		}
	}
}

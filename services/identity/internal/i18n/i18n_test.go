package i18n_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	require.Len(t, files, 3*(len(i18n.Supported)-1))
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

// faultCall finds the messages the account package's faults are made
// with: the format of fault.New and fault.Invalid, and of the invalid
// helpers that checks of identity providers and OAuth clients call with a
// field (three arguments) or, for a redirect URI, with only a reason (two:
// the helper puts "%s: " and the field before the format). A format made
// at run time is not a literal and is not found; the formats it is made of
// are, where they are written.
var faultCall = regexp.MustCompile(`(?:fault\.(?:New|Invalid)|\binvalid)\(\s*` +
	`(?:((?:fmt\.Sprintf\("[^"]*",\s*\w+\)|"[^"]*"|[\w.+]+)\s*,\s*(?:"[^"]*"|[\w.]+)\s*,)|("[A-Z_]+"\s*,))\s*` +
	`((?:"(?:[^"\\]|\\.)*"\s*(?:\+\s*)?)+)`)

// faultMessages are the fault messages in the source of every package of
// identity's internal tree (account's rules, the password policy, the
// access tokens, other providers, the rate limits, the server's request
// checks, the store's), since an API error raised anywhere may reach a
// page.
func faultMessages(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../*/*.go")
	require.NoError(t, err)
	for _, pkg := range []string{"account", "server", "store", "federation"} {
		require.True(t, slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(f, "../"+pkg+"/") }), pkg)
	}
	literal := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	seen := map[string]bool{}
	var messages []string
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		src := string(b)
		for _, m := range faultCall.FindAllStringSubmatchIndex(src, -1) {
			// "..." + format: the rest is made at run time.
			if rest := strings.TrimLeft(src[m[1]:], " \t\n"); strings.HasSuffix(strings.TrimSpace(src[m[6]:m[7]]), "+") && rest != "" && rest[0] != '"' {
				continue
			}
			var msg strings.Builder
			if m[4] >= 0 { // the redirect URI helper's two arguments
				msg.WriteString("%s: ")
			}
			for _, piece := range literal.FindAllString(src[m[6]:m[7]], -1) {
				s, err := strconv.Unquote(piece)
				require.NoError(t, err, "%s: %s", file, piece)
				msg.WriteString(s)
			}
			if !seen[msg.String()] {
				seen[msg.String()] = true
				messages = append(messages, msg.String())
			}
		}
	}
	return messages
}

// TestEveryFaultMessageIsTranslated: each message identity's faults are
// made with (faultMessages) has an entry in every other language's errors
// catalog, so that an error the pages show cannot be added in English
// only without this test failing.
func TestEveryFaultMessageIsTranslated(t *testing.T) {
	t.Parallel()
	messages := faultMessages(t)
	require.Greater(t, len(messages), 100, "the collection found the account package's faults")
	require.Contains(t, messages, "%s: %q has a fragment (#...); a redirect URI must not (RFC 6749, section 3.1.2): remove it")
	require.Contains(t, messages, "kind must be KIND_OIDC, KIND_GOOGLE, KIND_MICROSOFT or KIND_GITHUB")
	require.Contains(t, messages, "choose a password of at least %d characters; it has %d")
	for _, tag := range i18n.Supported[1:] {
		catalog := i18n.APIMessages(tag)
		var missing []string
		for _, msg := range messages {
			if _, ok := catalog[msg]; !ok {
				missing = append(missing, msg)
			}
		}
		require.Empty(t, missing, "%s.errors.json lacks these fault messages", i18n.Base(tag))
	}
}

// TestRateLimitMessagesAreTranslatedWhole: a rate limit's message names
// what was limited and the unit of the wait in English words the generic
// "too many %s; retry in %d %s" would leave English; each limit identity
// applies (collected from the server's adapters) has whole-message entries
// for both units.
func TestRateLimitMessagesAreTranslatedWhole(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../server/adapters.go")
	require.NoError(t, err)
	whats := regexp.MustCompile(`x\.check\(ctx, "([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	require.GreaterOrEqual(t, len(whats), 6, "the limits were found")
	de := i18n.NewPrinter(language.German)
	for _, w := range whats {
		for _, wait := range []string{"12 seconds", "1 second"} {
			msg := fmt.Sprintf("too many %s; retry in %s", w[1], wait)
			got := de.APIMessage(msg)
			require.NotContains(t, got, w[1], msg)
			require.NotContains(t, got, "second", msg)
			require.Contains(t, got, strings.Fields(wait)[0]+" Sekunde", msg)
		}
	}
	require.Equal(t, "Zu viele Anmeldeversuche; versuchen Sie es in 12 Sekunden erneut",
		de.APIMessage("too many login attempts; retry in 12 seconds"))
}

// TestAPIMessageTranslatesFormattedMessages: an API error's message is
// found by its format; the texts the verbs wrote go into the translation
// unchanged, in the translation's order; an unknown message stays as is.
func TestAPIMessageTranslatesFormattedMessages(t *testing.T) {
	t.Parallel()
	de := i18n.NewPrinter(language.German)
	require.Equal(t, "E-Mail-Adresse oder Benutzername und Passwort passen zu keinem Konto (oder seine E-Mail-Adresse ist noch nicht bestätigt: folgen Sie dem Link, den wir geschickt haben)",
		de.APIMessage("the email or username and password do not match an account (or its email address is not verified yet: follow the link we sent)"))
	require.Equal(t, `Der Benutzername "neo" ist vergeben; wählen Sie einen anderen`, de.APIMessage(`the username "neo" is taken; choose another`))
	require.Equal(t, "email ist erforderlich", de.APIMessage("email is required"))
	require.Equal(t, "no such message", de.APIMessage("no such message"))
	require.Equal(t, `redirect_uris[0]: "x" hat den Port 0; ein Port liegt zwischen 1 und 65535`,
		de.APIMessage(`redirect_uris[0]: "x" has port 0; a port is 1 to 65535`), "each verb's text goes into its place")
	require.Equal(t, `redirect_uris[0]: "a\\b" enthält einen Backslash; verwenden Sie '/' oder kodieren Sie ihn mit Prozentzeichen (%5C)`,
		de.APIMessage(`redirect_uris[0]: "a\\b" has a backslash; use '/' or percent-encode it (%5C)`), "%% is a percent sign")
	require.Equal(t, "email is required", i18n.NewPrinter(language.English).APIMessage("email is required"))
}

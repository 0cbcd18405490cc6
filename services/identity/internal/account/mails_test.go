package account

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"golang.org/x/text/language"

	"tenantry.dev/identity/internal/emails"
	"tenantry.dev/identity/internal/i18n"
	"tenantry.dev/kit/tenancy"
)

// testLinks builds links without a configured public URL.
type testLinks struct{}

func (testLinks) URL(t tenancy.Tenant, path, token string) string {
	return "https://" + t.Slug + ".example.com" + path + "?token=" + token
}

// Names stored before the registry refused them still reach mails; what
// could reorder or break a subject must not.
func TestMailsNameTheTenantSafely(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, displayName, want string
	}{
		{"a clean name is used as it is", "Acme Corp", "Acme Corp"},
		{"a right-to-left override is dropped", "Evil\u202emoc.elgoog", "Evilmoc.elgoog"},
		{"isolates and marks are dropped", "\u2067Acme\u2069\u200f", "Acme"},
		{"line breaks are dropped", "Acme\r\nBcc: eve@example.com", "AcmeBcc: eve@example.com"},
		{"spaces left at the edges are trimmed", "\u202e Acme ", "Acme"},
		{"an invisible-only name gives way to the slug", "\u200b\ufeff", "acme"},
		{"a name of direction controls gives way to the slug", "\u202e\u202c", "acme"},
		{"no name gives the slug", "", "acme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tenant := tenancy.Tenant{Slug: "acme", DisplayName: tc.displayName}
			letters := map[string]letter{
				"verification": verificationMail(tenant, testLinks{}, "ann@example.com", "s", []byte{1}),
				"welcome":      welcomeMail(tenant, &User{ID: "u1", Email: "ann@example.com"}),
				"reset":        resetMail(tenant, testLinks{}, "ann@example.com", "s", []byte{2}, time.Hour),
				"invitation":   invitationMail(tenant, testLinks{}, "ann@example.com", "s", []byte{3}),
			}
			for kind, l := range letters {
				m, err := emails.Render(l.Letter, language.English, BrandOf(tenant, Settings{}))
				require.NoError(t, err)
				require.Contains(t, m.Subject, tc.want, kind)
				require.Contains(t, m.Text, tc.want, kind)
				require.Contains(t, m.HTML, tc.want, kind)
				for _, s := range []string{m.Subject, m.Text, m.HTML} {
					require.False(t, strings.ContainsAny(s, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u200b\ufeff"),
						"%s mail carries no direction control or invisible name: %q", kind, s)
				}
				require.False(t, strings.ContainsAny(m.Subject, "\r\n"), kind)
			}
		})
	}
}

// allLetters is one letter of every kind a tenant admin can preview,
// with sample data.
func allLetters(tenant tenancy.Tenant) []letter {
	var out []letter
	for _, kind := range MailKinds() {
		out = append(out, sampleMails[kind](tenant, testLinks{}))
	}
	return out
}

// TestEveryMailIsTranslated: each text of each mail kind has a German
// entry (an untranslated text would go out in English in a German mail).
func TestEveryMailIsTranslated(t *testing.T) {
	t.Parallel()
	de := i18n.NewPrinter(language.German)
	texts := []emails.Text{emails.Say("Hello,"), emails.Say("If the button does not work, copy this link into your browser:"),
		emails.Say("This email was sent by %s. Please do not reply to it.")}
	letters := allLetters(tenancy.Tenant{Slug: "acme"})
	require.Len(t, letters, 19)
	for _, l := range letters {
		texts = append(texts, l.Subject)
		texts = append(texts, l.Paragraphs...)
		texts = append(texts, l.After...)
		if l.Action != nil {
			texts = append(texts, l.Action.Label)
		}
	}
	for _, text := range texts {
		require.NotEqual(t, text.Key, de.T(text.Key), "no German for %q", text.Key)
	}
}

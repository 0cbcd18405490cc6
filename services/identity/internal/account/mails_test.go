package account

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
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
			mails := map[string]mail.Message{
				"verification": verificationMail(tenant, testLinks{}, "ann@example.com", "s", []byte{1}),
				"welcome":      welcomeMail(tenant, &User{ID: "u1", Email: "ann@example.com"}),
				"reset":        resetMail(tenant, testLinks{}, "ann@example.com", "s", []byte{2}, time.Hour),
				"invitation":   invitationMail(tenant, testLinks{}, "ann@example.com", "s", []byte{3}),
			}
			for kind, m := range mails {
				require.Contains(t, m.Subject, tc.want, kind)
				require.Contains(t, m.Text, tc.want, kind)
				for _, s := range []string{m.Subject, m.Text} {
					require.False(t, strings.ContainsAny(s, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u200b\ufeff"),
						"%s mail carries no direction control or invisible name: %q", kind, s)
				}
				require.False(t, strings.ContainsAny(m.Subject, "\r\n"), kind)
			}
		})
	}
}

package tenantname_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
)

func TestValidateDisplayName(t *testing.T) {
	t.Parallel()
	good := []struct{ name, input string }{
		{"the empty name", ""},
		{"an ASCII name", "Acme Corp."},
		{"accented letters", "Zoë Ünïcode ✓"},
		{"a right-to-left script", "שלום עולם"},
		{"Persian with a zero-width non-joiner", "می\u200cخواهم"},
		{"an emoji with a variation selector", "Love \u2764\ufe0f"},
		{"an emoji zero-width-joiner sequence", "Family \U0001F468\u200d\U0001F469\u200d\U0001F467"},
		{"a decomposed accent at the end", "Cafe\u0301"},
		{"one character", "A"},
		{"the longest name", strings.Repeat("é", tenantname.MaxDisplayNameLength)},
	}
	for _, tc := range good {
		t.Run(tc.name+" is accepted", func(t *testing.T) {
			t.Parallel()
			require.NoError(t, tenantname.ValidateDisplayName("tenant.display_name", tc.input))
		})
	}

	bad := []struct {
		name, input, reason string
	}{
		{"a right-to-left override", "Evil\u202emoc.elgoog", tenantname.ReasonDisplayNameInvalid},
		{"a left-to-right override", "\u202dAcme", tenantname.ReasonDisplayNameInvalid},
		{"a left-to-right embedding", "Ac\u202ame", tenantname.ReasonDisplayNameInvalid},
		{"a right-to-left embedding", "Ac\u202bme", tenantname.ReasonDisplayNameInvalid},
		{"a pop directional formatting", "Acme\u202c", tenantname.ReasonDisplayNameInvalid},
		{"a left-to-right isolate", "\u2066Acme", tenantname.ReasonDisplayNameInvalid},
		{"a right-to-left isolate", "Ac\u2067me", tenantname.ReasonDisplayNameInvalid},
		{"a first strong isolate", "Ac\u2068me", tenantname.ReasonDisplayNameInvalid},
		{"a pop directional isolate", "Acme\u2069", tenantname.ReasonDisplayNameInvalid},
		{"a left-to-right mark", "Acme\u200e", tenantname.ReasonDisplayNameInvalid},
		{"a right-to-left mark", "\u200fAcme", tenantname.ReasonDisplayNameInvalid},
		{"an Arabic letter mark", "Ac\u061cme", tenantname.ReasonDisplayNameInvalid},
		{"only zero-width spaces", "\u200b\u200b\u200b", tenantname.ReasonDisplayNameInvalid},
		{"only zero-width joiners", "\u200d\u200c", tenantname.ReasonDisplayNameInvalid},
		{"only a byte order mark", "\ufeff", tenantname.ReasonDisplayNameInvalid},
		{"only a soft hyphen and a word joiner", "\u00ad\u2060", tenantname.ReasonDisplayNameInvalid},
		{"only Hangul fillers", "\u3164\u3164", tenantname.ReasonDisplayNameInvalid},
		{"only the blank braille pattern", "\u2800", tenantname.ReasonDisplayNameInvalid},
		{"only spaces", "   ", tenantname.ReasonDisplayNameInvalid},
		{"only an ideographic space", "\u3000", tenantname.ReasonDisplayNameInvalid},
		{"only combining marks", "\u0301\u0308", tenantname.ReasonDisplayNameInvalid},
		{"only a variation selector", "\ufe0f", tenantname.ReasonDisplayNameInvalid},
		{"invisible characters around spaces", "\u200b \ufeff", tenantname.ReasonDisplayNameInvalid},
		{"a leading space", " Acme", tenantname.ReasonDisplayNameInvalid},
		{"a trailing no-break space", "Acme\u00a0", tenantname.ReasonDisplayNameInvalid},
		{"a line feed", "Acme\nBcc: eve@example.com", tenantname.ReasonDisplayNameInvalid},
		{"a carriage return", "Acme\r", tenantname.ReasonDisplayNameInvalid},
		{"a tab", "Ac\tme", tenantname.ReasonDisplayNameInvalid},
		{"a NUL byte", "Acme\x00", tenantname.ReasonDisplayNameInvalid},
		{"a next line (C1)", "Acme\u0085x", tenantname.ReasonDisplayNameInvalid},
		{"a line separator", "Acme\u2028x", tenantname.ReasonDisplayNameInvalid},
		{"a paragraph separator", "Ann\u2029Evil", tenantname.ReasonDisplayNameInvalid},
		{"invalid UTF-8", "Acme\xff", tenantname.ReasonDisplayNameInvalid},
		{"one character too many", strings.Repeat("a", tenantname.MaxDisplayNameLength+1), tenantname.ReasonDisplayNameTooLong},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			err := tenantname.ValidateDisplayName("tenant.display_name", tc.input)
			f, ok := fault.As(err)
			require.True(t, ok, "want a fault, got %v", err)
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.Equal(t, tc.reason, f.Reason)
			require.Equal(t, []fault.FieldViolation{{Field: "tenant.display_name", Description: f.Message}}, f.Violations)
			require.True(t, strings.HasPrefix(f.Message, "tenant.display_name "), "the message names the field: %s", f.Message)
			require.False(t, strings.ContainsFunc(f.Message, func(r rune) bool { return r > unicode.MaxASCII }),
				"the message does not repeat the input: %q", f.Message)
		})
	}
}

func TestSanitizeDisplayText(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, input, want string }{
		{"a clean name is kept as it is", "Zoë ✓ \u200dx", "Zoë ✓ \u200dx"},
		{"a right-to-left override is removed", "Evil\u202emoc.elgoog", "Evilmoc.elgoog"},
		{"isolates and marks are removed", "\u2067A\u2069\u200eB\u200fC\u061c", "ABC"},
		{"line breaks and controls are removed", "A\r\nB\tC\x00D\u0085E\u2028F\u2029", "ABCDEF"},
		{"invalid UTF-8 is removed", "A\xffB", "AB"},
		{"what is only direction controls becomes empty", "\u202e\u202c", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tenantname.SanitizeDisplayText(tc.input))
		})
	}
}

func FuzzValidateDisplayName(f *testing.F) {
	for _, seed := range []string{
		"Acme", "Zoë", "Evil\u202emoc.elgoog", "\u200b", "\ufeff", " ", "\u3164", "A\r\nB",
		"\u2066x\u2069", "Acme\xff", "Love \u2764\ufe0f", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clean := tenantname.SanitizeDisplayText(s)
		require.True(t, utf8.ValidString(clean))
		require.Equal(t, clean, tenantname.SanitizeDisplayText(clean), "sanitizing is idempotent")
		err := tenantname.ValidateDisplayName("display_name", s)
		if err != nil {
			f, ok := fault.As(err)
			require.True(t, ok, "every refusal is a fault")
			require.Equal(t, fault.InvalidArgument, f.Kind)
			return
		}
		require.Equal(t, s, clean, "an accepted name has nothing to sanitize")
	})
}

package tenantname_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
)

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	label63 := strings.Repeat("a", 63)
	// 63+1+63+1+63+1+61 = 253 characters.
	host253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	good := []struct {
		name string
		host string
		want string
	}{
		{"a lower-case host is kept", "acme.example.com", "acme.example.com"},
		{"a single label is accepted", "localhost", "localhost"},
		{"upper case is folded", "ACME.Example.COM", "acme.example.com"},
		{"a port is stripped", "acme.example.com:8080", "acme.example.com"},
		{"the highest port is stripped", "acme.example.com:65535", "acme.example.com"},
		{"port 1 is stripped", "acme.localhost:1", "acme.localhost"},
		{"one trailing dot is stripped", "acme.example.com.", "acme.example.com"},
		{"a trailing dot before a port is stripped", "acme.example.com.:443", "acme.example.com"},
		{"digits and hyphens in labels are kept", "acme-2.eu-west-1.example.com", "acme-2.eu-west-1.example.com"},
		{"a numeric label before the last is kept", "123.example.com", "123.example.com"},
		{"an internationalised label becomes punycode", "bücher.example.com", "xn--bcher-kva.example.com"},
		{"an upper-case internationalised label becomes punycode", "BÜCHER.example.com", "xn--bcher-kva.example.com"},
		{"a punycode label is kept", "xn--bcher-kva.example.com", "xn--bcher-kva.example.com"},
		{"an upper-case punycode label is folded", "XN--BCHER-KVA.example.com", "xn--bcher-kva.example.com"},
		{"sharp s is kept, not mapped to ss", "faß.de", "xn--fa-hia.de"},
		{"fullwidth letters map to ASCII as in browsers", "ａｃｍｅ.localhost", "acme.localhost"},
		{"a fullwidth full stop maps to a dot", "ａｃｍｅ．localhost", "acme.localhost"},
		{"a right-to-left label that follows the Bidi rule is accepted", "אב.example.com", "xn--4dbc.example.com"},
		{"an Arabic top-level domain is accepted", "example.العربية", "example.xn--mgbcd4a2b0d2b"},
		// A label mixing scripts that IDNA allows becomes punycode, which can
		// never be a slug (ParseSlug refuses "--" at positions 3 and 4), so it
		// cannot pose as a tenant's host.
		{"a Cyrillic look-alike becomes a punycode label", "\u0430cme.example.com", "xn--cme-5cd.example.com"},
		{"a label of 63 characters is accepted", label63 + ".com", label63 + ".com"},
		{"a host of 253 characters is accepted", host253, host253},
		{"a host of 253 characters with a trailing dot is accepted", host253 + ".", host253},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tenantname.NormalizeHost("host", tc.host)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			again, err := tenantname.NormalizeHost("host", got)
			require.NoError(t, err)
			require.Equal(t, got, again, "normalising is idempotent")
		})
	}

	bad := []struct {
		name   string
		host   string
		reason string
	}{
		{"an empty host is refused", "", tenantname.ReasonHostEmpty},
		{"a lone dot is refused", ".", tenantname.ReasonHostEmpty},
		{"a lone port is refused", ":8080", tenantname.ReasonHostEmpty},
		{"two trailing dots are refused", "acme.example.com..", tenantname.ReasonHostInvalid},
		{"a leading dot is refused", ".acme.example.com", tenantname.ReasonHostInvalid},
		{"an empty label is refused", "acme..example.com", tenantname.ReasonHostInvalid},
		{"an ideographic trailing full stop is refused", "acme.example.com\u3002", tenantname.ReasonHostInvalid},
		{"a label of 64 characters is refused", strings.Repeat("a", 64) + ".com", tenantname.ReasonHostInvalid},
		{"a host of 254 characters is refused", host253 + "b", tenantname.ReasonHostTooLong},
		{"a host of 254 characters with a port is refused", host253 + "b:443", tenantname.ReasonHostTooLong},
		{"a huge host is refused before any work", strings.Repeat("a.", 1<<20), tenantname.ReasonHostTooLong},
		{"a leading hyphen in a label is refused", "-acme.example.com", tenantname.ReasonHostInvalid},
		{"a trailing hyphen in a label is refused", "acme-.example.com", tenantname.ReasonHostInvalid},
		{"hyphens at positions 3 and 4 are refused", "ab--cd.example.com", tenantname.ReasonHostInvalid},
		{"an underscore is refused", "acme_corp.example.com", tenantname.ReasonHostInvalid},
		{"a punycode label that decodes to ASCII is refused", "xn--acme-.example.com", tenantname.ReasonHostInvalid},
		{"a malformed punycode label is refused", "xn--acme.example.com", tenantname.ReasonHostInvalid},
		{"a quote is refused", "acme'.example.com", tenantname.ReasonHostInvalid},
		{"an SQL injection is refused", "acme'; DROP SCHEMA public;--.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a double-quoted host is refused", `"acme".example.com`, tenantname.ReasonHostInvalid},
		{"an IPv4 address is refused", "127.0.0.1", tenantname.ReasonHostIPLiteral},
		{"an IPv4 address with a port is refused", "10.0.0.1:8080", tenantname.ReasonHostIPLiteral},
		{"an IPv4 address with a trailing dot is refused", "127.0.0.1.", tenantname.ReasonHostIPLiteral},
		{"a short IPv4 form is refused", "127.1", tenantname.ReasonHostIPLiteral},
		{"a hexadecimal IPv4 form is refused", "0x7f.0.0.1", tenantname.ReasonHostIPLiteral},
		{"a bare hexadecimal prefix is refused", "acme.0x", tenantname.ReasonHostIPLiteral},
		{"a decimal IPv4 number is refused", "2130706433", tenantname.ReasonHostIPLiteral},
		{"a numeric top-level domain is refused", "acme.123", tenantname.ReasonHostIPLiteral},
		{"fullwidth digits of an IPv4 address are refused", "１２７.０.０.１", tenantname.ReasonHostIPLiteral},
		{"a bracketed IPv6 address is refused", "[::1]", tenantname.ReasonHostIPLiteral},
		{"a bracketed IPv6 address with a port is refused", "[2001:db8::1]:443", tenantname.ReasonHostIPLiteral},
		{"a bare IPv6 address is refused", "2001:db8::1", tenantname.ReasonHostIPLiteral},
		{"an IPv4-mapped IPv6 address is refused", "::ffff:127.0.0.1", tenantname.ReasonHostIPLiteral},
		{"a bracket inside a host is refused", "acme[1].example.com", tenantname.ReasonHostInvalidCharacter},
		{"user information is refused", "user@acme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"user information with a password is refused", "user:pw@acme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a path is refused", "acme.example.com/admin", tenantname.ReasonHostInvalidCharacter},
		{"a backslash is refused", "acme.example.com\\admin", tenantname.ReasonHostInvalidCharacter},
		{"a query is refused", "acme.example.com?x=1", tenantname.ReasonHostInvalidCharacter},
		{"a fragment is refused", "acme.example.com#x", tenantname.ReasonHostInvalidCharacter},
		{"a URL is refused", "https://acme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"percent-encoding is refused", "acme%2eexample.com", tenantname.ReasonHostInvalidCharacter},
		{"a wildcard is refused", "*.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a space is refused", "acme .example.com", tenantname.ReasonHostInvalidCharacter},
		{"a leading space is refused", " acme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a no-break space is refused", "acme\u00a0.example.com", tenantname.ReasonHostInvalidCharacter},
		{"an ideographic space is refused", "acme\u3000.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a tab is refused", "acme\t.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a header injection is refused", "acme.example.com\r\nX-Tenant: admin", tenantname.ReasonHostInvalidCharacter},
		{"a NUL byte is refused", "acme.example.com\x00.evil.com", tenantname.ReasonHostInvalidCharacter},
		{"a C1 control character is refused", "acme\u0085.example.com", tenantname.ReasonHostInvalidCharacter},
		{"DEL is refused", "acme\x7f.example.com", tenantname.ReasonHostInvalidCharacter},
		{"invalid UTF-8 is refused", "acme\xff.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a zero-width space is refused", "ac\u200bme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a zero-width non-joiner is refused", "ac\u200cme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a zero-width joiner is refused", "ac\u200dme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a soft hyphen is refused", "ac\u00adme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a byte order mark is refused", "\ufeffacme.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a word joiner is refused", "ac\u2060me.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a right-to-left override is refused", "acme\u202emoc.elpmaxe", tenantname.ReasonHostInvalidCharacter},
		{"a left-to-right mark is refused", "acme\u200e.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a variation selector is refused", "acme\ufe0f.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a combining grapheme joiner is refused", "acme\u034f.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a Hangul filler is refused", "acme\u3164.example.com", tenantname.ReasonHostInvalidCharacter},
		{"a label mixing directions is refused by the Bidi rule", "a\u05d0.example.com", tenantname.ReasonHostInvalid},
		{"a fullwidth colon is refused", "acme.example.com\uff1a80", tenantname.ReasonHostInvalid},
		{"a fullwidth solidus is refused", "acme.example.com\uff0fadmin", tenantname.ReasonHostInvalid},
		{"a symbol that IDNA 2008 disallows is refused", "acme\u2665.example.com", tenantname.ReasonHostInvalid},
		{"an emoji is refused", "\U0001F600.example.com", tenantname.ReasonHostInvalid},
		{"a fraction slash posing as a path is refused", "acme.com\u2044evil.com", tenantname.ReasonHostInvalid},
		{"a division slash posing as a path is refused", "acme.com\u2215evil.com", tenantname.ReasonHostInvalid},
		{"a one dot leader posing as a dot is refused", "acme\u2024com", tenantname.ReasonHostInvalid},
		{"the punycode of a symbol is refused", "xn--i-n3p.com", tenantname.ReasonHostInvalid},
		{"a label starting with a combining mark is refused", "\u0301a.com", tenantname.ReasonHostInvalid},
		{"an empty port is refused", "acme.example.com:", tenantname.ReasonHostInvalidPort},
		{"port 0 is refused", "acme.example.com:0", tenantname.ReasonHostInvalidPort},
		{"a port above 65535 is refused", "acme.example.com:65536", tenantname.ReasonHostInvalidPort},
		{"a port with a leading zero is refused", "acme.example.com:080", tenantname.ReasonHostInvalidPort},
		{"a named port is refused", "acme.example.com:http", tenantname.ReasonHostInvalidPort},
		{"a negative port is refused", "acme.example.com:-1", tenantname.ReasonHostInvalidPort},
		{"a port with a sign is refused", "acme.example.com:+80", tenantname.ReasonHostInvalidPort},
		{"a very long port is refused", "acme.example.com:0000000000080", tenantname.ReasonHostInvalidPort},
		{"fullwidth digits in a port are refused", "acme.example.com:８０", tenantname.ReasonHostInvalidPort},
		{"two ports are refused", "acme.example.com:80:80", tenantname.ReasonHostInvalidCharacter},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tenantname.NormalizeHost("host", tc.host)
			requireInvalid(t, err, "host", tc.reason)
			require.Empty(t, got)
		})
	}
}

func TestNormalizeHostMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		host    string
		message string
	}{
		{"an IP address asks for a domain name", "10.0.0.1", "host is an IP address; use a domain name such as acme.example.com"},
		{"user information says where it is", "u@acme.example.com", "host must not contain user information ('@' at position 2); send the host name only"},
		{"an invisible character is not repeated", "ac\u200dme.example.com", "host has an invisible or formatting character (such as a zero-width joiner or a direction override) at position 3; remove it"},
		{"a bad port says what a port is", "acme.example.com:99999", "host has an invalid port; a port is a number from 1 to 65535 without leading zeros, e.g. acme.example.com:8443"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tenantname.NormalizeHost("host", tc.host)
			f, ok := fault.As(err)
			require.True(t, ok)
			require.Equal(t, tc.message, f.Message)
		})
	}
}

// FuzzNormalizeHost checks that whatever NormalizeHost accepts is a
// canonical ASCII domain name that normalises to itself.
func FuzzNormalizeHost(f *testing.F) {
	for _, seed := range []string{
		"acme.example.com", "ACME.example.com:8080", "acme.example.com.", "localhost",
		"bücher.example.com", "xn--bcher-kva.example.com", "XN--BCHER-KVA.EXAMPLE.COM",
		"ａｃｍｅ.localhost", "ａｃｍｅ．localhost", "faß.de", "אב.example.com", "a\u05d0.com",
		"\u0430cme.example.com", "127.0.0.1", "127.1", "0x7f.1", "[::1]:80", "2001:db8::1",
		"user@acme.example.com", "acme.example.com/x", "acme%2e.com", "*.example.com",
		"ac\u200dme.com", "acme\u202e.com", "acme\x00.com", "acme.com..", ".acme.com",
		"acme.com:0", "acme.com:65536", "acme.com:", "xn--acme.com", "xn--zca.com",
		"acme'; DROP SCHEMA public;--", "acme.example.com\u3002", "①.com", "ǅ.com",
		strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got, err := tenantname.NormalizeHost("host", h)
		if err != nil {
			f, ok := fault.As(err)
			require.True(t, ok, "every refusal is a fault")
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.True(t, utf8.ValidString(f.Message), "messages are valid UTF-8")
			require.Empty(t, got)
			return
		}
		requireHostGrammar(t, got)
		again, err := tenantname.NormalizeHost("host", got)
		require.NoError(t, err, "the canonical form %q is accepted", got)
		require.Equal(t, got, again, "normalising is idempotent")
		withPort, err := tenantname.NormalizeHost("host", strings.ToUpper(got)+".:443")
		require.NoError(t, err)
		require.Equal(t, got, withPort, "case, a trailing dot and a port do not change the host")
	})
}

// requireHostGrammar checks a normalised host against the grammar
// independently of the code under test.
func requireHostGrammar(t *testing.T, h string) {
	t.Helper()
	require.NotEmpty(t, h)
	require.LessOrEqual(t, len(h), 253)
	labels := strings.Split(h, ".")
	for _, label := range labels {
		require.NotEmpty(t, label, "no empty labels in %q", h)
		require.LessOrEqual(t, len(label), 63)
		for i := 0; i < len(label); i++ {
			c := label[i]
			require.True(t, 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-', "%q has %q", h, c)
		}
		require.NotEqual(t, byte('-'), label[0])
		require.NotEqual(t, byte('-'), label[len(label)-1])
		if len(label) >= 4 && label[2:4] == "--" {
			require.True(t, strings.HasPrefix(label, "xn--"), "%q has -- at positions 3 and 4", label)
		}
	}
	last := labels[len(labels)-1]
	require.NotRegexp(t, `^([0-9]+|0x[0-9a-f]*)$`, last, "a numeric last label is an IPv4 address")
}

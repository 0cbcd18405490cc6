package tenantname_test

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
)

func TestParseSlug(t *testing.T) {
	t.Parallel()
	good := []struct {
		name string
		slug string
	}{
		{"a short slug is accepted", "acm"},
		{"a typical slug is accepted", "acme"},
		{"digits and inner hyphens are accepted", "acme-2024-eu"},
		{"a slug may start with a digit", "3m-corp"},
		{"a slug of only digits is accepted", "123"},
		{"a slug of 63 characters is accepted", strings.Repeat("a", 63)},
		{"two hyphens away from positions 3 and 4 are accepted", "acme--corp"},
		{"a reserved word inside a longer slug is accepted", "admin-team"},
		{"a slug merely containing pg is accepted", "apg-corp"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tenantname.ParseSlug("tenant_id", tc.slug)
			require.NoError(t, err)
			require.Equal(t, tc.slug, got)
		})
	}

	bad := []struct {
		name   string
		slug   string
		reason string
	}{
		{"an empty slug is refused", "", tenantname.ReasonSlugInvalidLength},
		{"a slug of two characters is refused", "ab", tenantname.ReasonSlugInvalidLength},
		{"a slug of 64 characters is refused", strings.Repeat("a", 64), tenantname.ReasonSlugInvalidLength},
		{"a very long slug is refused", strings.Repeat("a", 1<<20), tenantname.ReasonSlugInvalidLength},
		{"upper case is refused rather than folded", "Acme", tenantname.ReasonSlugInvalid},
		{"all upper case is refused", "ACME", tenantname.ReasonSlugInvalid},
		{"an underscore is refused", "acme_corp", tenantname.ReasonSlugInvalid},
		{"a dot is refused", "acme.corp", tenantname.ReasonSlugInvalid},
		{"a space is refused", "acme corp", tenantname.ReasonSlugInvalid},
		{"a leading space is refused", " acme", tenantname.ReasonSlugInvalid},
		{"a trailing newline is refused", "acme\n", tenantname.ReasonSlugInvalid},
		{"a leading hyphen is refused", "-acme", tenantname.ReasonSlugInvalid},
		{"a trailing hyphen is refused", "acme-", tenantname.ReasonSlugInvalid},
		{"hyphens at positions 3 and 4 are refused", "ab--cd", tenantname.ReasonSlugInvalid},
		{"a punycode label is refused", "xn--bcher-kva", tenantname.ReasonSlugInvalid},
		{"an SQL injection is refused", "acme'; DROP SCHEMA public;--", tenantname.ReasonSlugInvalid},
		{"a single quote is refused", "acme'", tenantname.ReasonSlugInvalid},
		{"a quoted identifier is refused", `"acme"`, tenantname.ReasonSlugInvalid},
		{"a schema-qualified name is refused", "public.acme", tenantname.ReasonSlugInvalid},
		{"a NUL byte is refused", "acme\x00", tenantname.ReasonSlugInvalid},
		{"a NUL byte in the middle is refused", "ac\x00me", tenantname.ReasonSlugInvalid},
		{"a slash is refused", "acme/corp", tenantname.ReasonSlugInvalid},
		{"a percent sign is refused", "acme%20", tenantname.ReasonSlugInvalid},
		{"a Cyrillic look-alike letter is refused", "\u0430cme", tenantname.ReasonSlugInvalid},
		{"a zero-width space is refused", "ac\u200bme", tenantname.ReasonSlugInvalid},
		{"a zero-width joiner is refused", "ac\u200dme", tenantname.ReasonSlugInvalid},
		{"a right-to-left override is refused", "acme\u202egpj", tenantname.ReasonSlugInvalid},
		{"fullwidth letters are refused", "ａｃｍｅ", tenantname.ReasonSlugInvalid},
		{"a Kelvin sign for k is refused", "\u212aey", tenantname.ReasonSlugInvalid},
		{"invalid UTF-8 is refused", "acme\xff", tenantname.ReasonSlugInvalid},
		{"www is reserved", "www", tenantname.ReasonSlugReserved},
		{"public is reserved", "public", tenantname.ReasonSlugReserved},
		{"postgres is reserved", "postgres", tenantname.ReasonSlugReserved},
		{"template1 is reserved", "template1", tenantname.ReasonSlugReserved},
		{"information-schema is reserved", "information-schema", tenantname.ReasonSlugReserved},
		{"tenantry is reserved", "tenantry", tenantname.ReasonSlugReserved},
		{"localhost is reserved", "localhost", tenantname.ReasonSlugReserved},
		{"autodiscover is reserved", "autodiscover", tenantname.ReasonSlugReserved},
		{"wpad is reserved", "wpad", tenantname.ReasonSlugReserved},
		{"the pg- prefix is reserved", "pg-catalog", tenantname.ReasonSlugReserved},
		{"the tenantry- prefix is reserved", "tenantry-meta", tenantname.ReasonSlugReserved},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tenantname.ParseSlug("tenant_id", tc.slug)
			requireInvalid(t, err, "tenant_id", tc.reason)
			require.Empty(t, got)
		})
	}
}

func TestParseSlugMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		slug    string
		message string
	}{
		{"upper case asks for lower case", "aCme", "tenant_id has the upper-case letter 'C' at position 2; use lower case (a-z, 0-9 and '-')"},
		{"a wrong length says what is allowed", "ab", "tenant_id must be 3 to 63 characters long (a-z, 0-9 and '-'), not 2"},
		{"a control character is escaped", "ac\x00me", `tenant_id has '\x00' at position 3; only a-z, 0-9 and '-' are allowed`},
		{"a non-ASCII character is not repeated", "acme\u202e", "tenant_id has a non-ASCII character at position 5; only a-z, 0-9 and '-' are allowed"},
		{"a reserved name says so", "admin", `tenant_id "admin" is reserved; choose another name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tenantname.ParseSlug("tenant_id", tc.slug)
			f, ok := fault.As(err)
			require.True(t, ok)
			require.Equal(t, tc.message, f.Message)
		})
	}
}

func TestSchemaName(t *testing.T) {
	t.Parallel()
	t.Run("the schema of a tenant is its slug", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "acme-eu", tenantname.SchemaName("acme-eu"))
	})
	for _, slug := range []string{"", "public", "pg_catalog", "tenantry_meta", "acme\"; DROP SCHEMA public; --", strings.Repeat("a", 64)} {
		t.Run("an unchecked slug "+strconv.QuoteToASCII(slug)+" panics", func(t *testing.T) {
			t.Parallel()
			require.Panics(t, func() { tenantname.SchemaName(slug) })
		})
	}
}

// FuzzParseSlug checks that whatever ParseSlug accepts is exactly the input,
// is safe as a DNS label and a PostgreSQL schema, and parses again.
func FuzzParseSlug(f *testing.F) {
	for _, seed := range []string{
		"acme", "acm", "a-b-c", "3m", strings.Repeat("z", 63), strings.Repeat("z", 64),
		"Acme", "-acme", "acme-", "xn--bcher-kva", "ab--cd", "acme--corp", "public", "pg-x",
		"tenantry-x", "acme'; DROP SCHEMA public;--", `"acme"`, "acme\x00", "ac\u200dme",
		"\u0430cme", "ａｃｍｅ", "acme\xff", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := tenantname.ParseSlug("tenant_id", s)
		if err != nil {
			f, ok := fault.As(err)
			require.True(t, ok, "every refusal is a fault")
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.True(t, utf8.ValidString(f.Message), "messages are valid UTF-8")
			require.Empty(t, got)
			return
		}
		require.Equal(t, s, got, "a slug is never repaired")
		requireSlugGrammar(t, got)
		again, err := tenantname.ParseSlug("tenant_id", got)
		require.NoError(t, err)
		require.Equal(t, got, again)
		schema := tenantname.SchemaName(got)
		require.LessOrEqual(t, len(schema), 63, "PostgreSQL would truncate a longer identifier")
		require.NotContains(t, schema, "_", "a tenant schema cannot collide with tenantry_* or pg_*")
		slug, err := tenantname.ParseTenantName("name", tenantname.TenantName(got))
		require.NoError(t, err)
		require.Equal(t, got, slug)
		host, err := tenantname.NormalizeHost("host", got+".example.com")
		require.NoError(t, err, "every slug is a valid host label")
		require.Equal(t, got+".example.com", host)
	})
}

// requireSlugGrammar checks s against the slug grammar independently of the
// code under test.
func requireSlugGrammar(t *testing.T, s string) {
	t.Helper()
	require.GreaterOrEqual(t, len(s), 3)
	require.LessOrEqual(t, len(s), 63)
	for i := 0; i < len(s); i++ {
		c := s[i]
		require.True(t, 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-', "byte %d is %q", i, c)
	}
	require.NotEqual(t, byte('-'), s[0])
	require.NotEqual(t, byte('-'), s[len(s)-1])
	if len(s) >= 4 {
		require.NotEqual(t, "--", s[2:4])
	}
}

// requireInvalid checks that err is an InvalidArgument fault for field with
// the given reason.
func requireInvalid(t *testing.T, err error, field, reason string) {
	t.Helper()
	require.Error(t, err)
	f, ok := fault.As(err)
	require.True(t, ok, "error %v is not a fault", err)
	require.Equal(t, fault.InvalidArgument, f.Kind)
	require.Equal(t, reason, f.Reason, "message: %s", f.Message)
	require.Len(t, f.Violations, 1)
	require.Equal(t, field, f.Violations[0].Field)
	require.NotEmpty(t, f.Message)
}

package listquery_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
	"tenantry.dev/tenant-registry/internal/listquery"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		filter string
		want   listquery.Filter
	}{
		{"an empty filter matches everything", "", listquery.Filter{}},
		{"a filter of spaces matches everything", " \t\r\n ", listquery.Filter{}},
		{"a state is parsed", "state = ACTIVE", listquery.Filter{State: "ACTIVE"}},
		{"a state needs no spaces around the equals sign", "state=SUSPENDED", listquery.Filter{State: "SUSPENDED"}},
		{"a state is read in any case", "state = provisioning", listquery.Filter{State: "PROVISIONING"}},
		{"the enum prefix of a state is accepted", "state = STATE_DELETED", listquery.Filter{State: "DELETED"}},
		{"the enum prefix is read in any case", "state = state_active", listquery.Filter{State: "ACTIVE"}},
		{"a label is parsed", `labels.tier = "gold"`, listquery.Filter{Labels: map[string]string{"tier": "gold"}}},
		{"a label key may have digits, underscores, hyphens and dots", `labels.app.kubernetes-io_v2 = "x"`,
			listquery.Filter{Labels: map[string]string{"app.kubernetes-io_v2": "x"}}},
		{"a label value may be empty", `labels.tier = ""`, listquery.Filter{Labels: map[string]string{"tier": ""}}},
		{"escaped quotes and backslashes are unescaped", `labels.q = "say \"hi\" \\o/"`,
			listquery.Filter{Labels: map[string]string{"q": `say "hi" \o/`}}},
		{"a label value may hold SQL, which is only ever data", `labels.x = "'; DROP SCHEMA public;--"`,
			listquery.Filter{Labels: map[string]string{"x": "'; DROP SCHEMA public;--"}}},
		{"a label value may be non-ASCII", `labels.city = "Zürich"`, listquery.Filter{Labels: map[string]string{"city": "Zürich"}}},
		{"a label value of 255 characters is accepted", `labels.k = "` + strings.Repeat("é", 255) + `"`,
			listquery.Filter{Labels: map[string]string{"k": strings.Repeat("é", 255)}}},
		{"a label key of 63 characters is accepted", "labels." + strings.Repeat("k", 63) + ` = "v"`,
			listquery.Filter{Labels: map[string]string{strings.Repeat("k", 63): "v"}}},
		{"conditions are joined by AND", `state = ACTIVE AND labels.tier = "gold" AND labels.region = "eu"`,
			listquery.Filter{State: "ACTIVE", Labels: map[string]string{"tier": "gold", "region": "eu"}}},
		{"AND is read in any case", `labels.a = "1" and state = ACTIVE And labels.b = "2"`,
			listquery.Filter{State: "ACTIVE", Labels: map[string]string{"a": "1", "b": "2"}}},
		{"AND may follow a string without a space", `labels.a="1"AND state=ACTIVE`,
			listquery.Filter{State: "ACTIVE", Labels: map[string]string{"a": "1"}}},
		{"whitespace may be tabs and newlines", "\tstate\n=\r\nACTIVE\n", listquery.Filter{State: "ACTIVE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := listquery.ParseFilter(tc.filter)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			again, err := listquery.ParseFilter(got.String())
			require.NoError(t, err)
			require.Equal(t, got, again, "the canonical form %q parses back", got.String())
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filter  string
		message string
	}{
		{"a missing equals sign is reported after the field", "state ACTIVE",
			`filter: at 7: expected "=" after "state", found "ACTIVE"`},
		{"a missing equals sign is reported at the end", `labels.tier = "gold" AND state`,
			`filter: at 31: expected "=" after "state", found the end of the filter`},
		{"a missing state is reported", "state = ",
			`filter: at 9: expected a state (PROVISIONING, ACTIVE, SUSPENDED or DELETED) after "state =", found the end of the filter`},
		{"an unknown state says which exist", "state = RUNNING",
			`filter: at 9: unknown state "RUNNING"; use PROVISIONING, ACTIVE, SUSPENDED or DELETED`},
		{"the unspecified state is unknown", "state = STATE_UNSPECIFIED",
			`filter: at 9: unknown state "STATE_UNSPECIFIED"; use PROVISIONING, ACTIVE, SUSPENDED or DELETED`},
		{"a quoted state is refused", `state = "ACTIVE"`,
			`filter: at 9: expected a state (PROVISIONING, ACTIVE, SUSPENDED or DELETED) after "state =", found a string`},
		{"a second state is refused", "state = ACTIVE AND state = DELETED",
			`filter: at 20: "state" may appear at most once`},
		{"an unknown field is refused", "display_name = x",
			`filter: at 1: unknown field "display_name"; filter on "state" or "labels.KEY"`},
		{"an upper-case field is refused", "State = ACTIVE",
			`filter: at 1: field names are lower case: write "state" or "labels.KEY"`},
		{"labels without a key is refused", `labels = "x"`,
			`filter: at 1: expected a label key after "labels.", e.g. labels.tier = "gold"`},
		{"an empty label key is refused", `labels. = "x"`,
			`filter: at 1: label key "" is not valid; a label key is 1 to 63 characters of a-z, 0-9, '_', '-' and '.'`},
		{"an upper-case label key is refused", `labels.Tier = "x"`,
			`filter: at 1: label key "Tier" is not valid; a label key is 1 to 63 characters of a-z, 0-9, '_', '-' and '.'`},
		{"a label key of 64 characters is refused", "labels." + strings.Repeat("k", 64) + ` = "v"`,
			`filter: at 1: label key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"... is not valid; a label key is 1 to 63 characters of a-z, 0-9, '_', '-' and '.'`},
		{"a label repeated is refused", `labels.a = "1" AND labels.a = "2"`,
			`filter: at 20: labels.a may appear at most once`},
		{"an unquoted label value is refused", "labels.tier = gold",
			`filter: at 15: expected a double-quoted value after "labels.tier =", e.g. labels.tier = "gold", found "gold"`},
		{"a single-quoted label value is refused", "labels.tier = 'gold'",
			`filter: at 15: strings are written in double quotes: "VALUE"`},
		{"a label value of 256 characters is refused", `labels.k = "` + strings.Repeat("a", 256) + `"`,
			`filter: at 12: label value is 256 characters long; at most 255 are allowed`},
		{"an unterminated string is reported at its start", `labels.tier = "gold`,
			`filter: at 15: string is not terminated; end it with '"'`},
		{"an escaped closing quote leaves the string open", `labels.tier = "gold\"`,
			`filter: at 15: string is not terminated; end it with '"'`},
		{"an unknown escape is refused", `labels.tier = "go\nld"`,
			`filter: at 18: unknown escape in string; only \" and \\ are allowed`},
		{"a NUL in a string is refused", "labels.tier = \"go\x00ld\"",
			`filter: at 18: strings must not contain NUL characters`},
		{"invalid UTF-8 in a string is refused", "labels.tier = \"go\xffld\"",
			`filter: at 15: string is not valid UTF-8`},
		{"positions count characters, not bytes", `labels.city = "Zürich" AND x`,
			`filter: at 28: unknown field "x"; filter on "state" or "labels.KEY"`},
		{"a condition must follow AND", "state = ACTIVE AND",
			`filter: at 19: expected a condition after "AND"`},
		{"a condition must follow AND before spaces", "state = ACTIVE AND   ",
			`filter: at 19: expected a condition after "AND"`},
		{"AND cannot start a filter", "AND state = ACTIVE",
			`filter: at 1: unknown field "AND"; filter on "state" or "labels.KEY"`},
		{"two conditions need AND", `state = ACTIVE labels.a = "1"`,
			`filter: at 16: expected "AND" or the end of the filter after a condition, found "labels.a"`},
		{"AND AND is refused", "state = ACTIVE AND AND",
			`filter: at 20: unknown field "AND"; filter on "state" or "labels.KEY"`},
		{"OR is not supported", "state = ACTIVE OR state = DELETED",
			`filter: at 16: OR is not supported; only AND can join conditions`},
		{"NOT is not supported", "NOT state = ACTIVE",
			`filter: at 1: unknown field "NOT"; filter on "state" or "labels.KEY"`},
		{"a NOT after AND is not supported", "state = ACTIVE AND NOT labels.a = \"1\"",
			`filter: at 20: unknown field "NOT"; filter on "state" or "labels.KEY"`},
		{"a double equals sign is refused", "state == ACTIVE",
			`filter: at 7: use "=" to compare, not "=="`},
		{"not-equals is refused", "state != ACTIVE",
			`filter: at 7: only "=" comparisons are supported`},
		{"the has operator is refused", `labels.tier:"gold"`,
			`filter: at 12: only "=" comparisons are supported`},
		{"parentheses are refused", "(state = ACTIVE)",
			`filter: at 1: parentheses are not supported; join conditions with AND`},
		{"a semicolon is refused", "state = ACTIVE; DROP SCHEMA public",
			`filter: at 15: unexpected character ';'`},
		{"a control character is not repeated", "state = ACTIVE\x00",
			`filter: at 15: unexpected character; outside strings a filter is ASCII letters, digits, '_', '.', '-', '=' and spaces`},
		{"a non-ASCII character outside strings is not repeated", "state = ACTIVE\u202e",
			`filter: at 15: unexpected character; outside strings a filter is ASCII letters, digits, '_', '.', '-', '=' and spaces`},
		{"a fullwidth equals sign is refused", "state ＝ ACTIVE",
			`filter: at 7: unexpected character; outside strings a filter is ASCII letters, digits, '_', '.', '-', '=' and spaces`},
		{"a filter longer than 2048 bytes is refused", "state = ACTIVE" + strings.Repeat(" ", 2035),
			`filter: is 2049 bytes long; at most 2048 are allowed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := listquery.ParseFilter(tc.filter)
			requireInvalid(t, err, "filter", listquery.ReasonInvalidFilter)
			f, _ := fault.As(err)
			require.Equal(t, tc.message, f.Message)
			require.Equal(t, listquery.Filter{}, got)
		})
	}
}

func TestFilterString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		filter listquery.Filter
		want   string
	}{
		{"the empty filter is empty", listquery.Filter{}, ""},
		{"a state is spelled without its prefix", listquery.Filter{State: "ACTIVE"}, "state = ACTIVE"},
		{"labels come after the state, by key", listquery.Filter{State: "DELETED", Labels: map[string]string{"b": "2", "a": "1"}},
			`state = DELETED AND labels.a = "1" AND labels.b = "2"`},
		{"a label alone has no AND", listquery.Filter{Labels: map[string]string{"a": "1"}}, `labels.a = "1"`},
		{"quotes and backslashes are escaped", listquery.Filter{Labels: map[string]string{"q": `"\`}}, `labels.q = "\"\\"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.filter.String())
		})
	}
	t.Run("equivalent spellings have one canonical form", func(t *testing.T) {
		t.Parallel()
		a, err := listquery.ParseFilter(`labels.b="2" and state=state_active AND labels.a = "1"`)
		require.NoError(t, err)
		b, err := listquery.ParseFilter(`state = ACTIVE AND labels.a = "1" AND labels.b = "2"`)
		require.NoError(t, err)
		require.Equal(t, a.String(), b.String())
	})
}

// FuzzParseFilter checks that ParseFilter never panics, refuses only with
// INVALID_FILTER faults, and that what it accepts round-trips through the
// canonical form.
func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		"", "state = ACTIVE", "state=state_suspended", `labels.tier = "gold"`,
		`state = ACTIVE AND labels.tier = "gold" and labels.a.b-c_d = "x \" \\ y"`,
		`labels.a = "1" AND labels.a = "2"`, "state = ACTIVE AND state = DELETED",
		"state ACTIVE", "state = ", "state = ACTIVE AND", "state = ACTIVE OR state = DELETED",
		`labels.x = "unterminated`, `labels.x = "bad \n escape"`, "labels.x = \"\x00\"",
		"labels.x = \"\xff\"", "(state = ACTIVE)", "state != ACTIVE", "state == ACTIVE",
		`labels.city = "Zürich"`, "state = ACTIVE\u202e", "'; DROP SCHEMA public;--",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := listquery.ParseFilter(s)
		if err != nil {
			f, ok := fault.As(err)
			require.True(t, ok, "every refusal is a fault")
			require.Equal(t, listquery.ReasonInvalidFilter, f.Reason)
			require.True(t, utf8.ValidString(f.Message), "messages are valid UTF-8")
			require.Equal(t, listquery.Filter{}, got)
			return
		}
		canonical := got.String()
		again, err := listquery.ParseFilter(canonical)
		require.NoError(t, err, "the canonical form %q parses", canonical)
		require.Equal(t, got, again)
		require.Equal(t, canonical, again.String(), "the canonical form is stable")
		if got.State != "" {
			require.Contains(t, []string{"PROVISIONING", "ACTIVE", "SUSPENDED", "DELETED"}, got.State)
		}
		require.True(t, got.Labels == nil || len(got.Labels) > 0, "no labels is a nil map")
		for k, v := range got.Labels {
			require.Regexp(t, `^[a-z0-9_.-]{1,63}$`, k)
			require.True(t, utf8.ValidString(v))
			require.LessOrEqual(t, utf8.RuneCountInString(v), 255)
			require.NotContains(t, v, "\x00")
		}
	})
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
}

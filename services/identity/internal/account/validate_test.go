package account

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"Ann@Example.com":               "ann@example.com",
		"  bob@example.org ":            "bob@example.org",
		"first.last+tag@sub.example.co": "first.last+tag@sub.example.co",
		"dev@localhost":                 "dev@localhost",
	}
	for in, want := range good {
		got, err := NormalizeEmail("email", in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	bad := map[string]string{
		"empty":            "",
		"no at sign":       "ann.example.com",
		"display name":     "Ann <ann@example.com>",
		"header injection": "ann@example.com\r\nBcc: eve@example.com",
		"two addresses":    "ann@example.com, eve@example.com",
		"non-ASCII":        "zoë@example.com",
		"no dot in domain": "ann@example",
		"line separator":   "ann\u2028x@example.com",
		"too long":         string(make([]byte, 300)) + "@example.com",
	}
	for name, in := range bad {
		t.Run(name+" is refused", func(t *testing.T) {
			_, err := NormalizeEmail("email", in)
			require.Equal(t, fault.InvalidArgument, fault.KindOf(err), "%q: %v", in, err)
		})
	}
}

func TestNormalizeUsernameAndRoles(t *testing.T) {
	t.Parallel()
	u, err := NormalizeUsername("username", "Ann_B")
	require.NoError(t, err)
	require.Equal(t, "ann_b", u)
	for _, in := range []string{"ab", "-ann", "ann-", "an n", "ann'; DROP TABLE users;--", "ànn"} {
		_, err := NormalizeUsername("username", in)
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err), in)
	}
	roles, err := ValidateRoles("roles", []string{"admin", "billing", "admin"})
	require.NoError(t, err)
	require.Equal(t, []string{"admin", "billing"}, roles)
	_, err = ValidateRoles("roles", []string{"Admin"})
	require.Error(t, err)
	require.Error(t, ValidateDisplayName("display_name", "Ann\u2029Evil"))
	require.NoError(t, ValidateDisplayName("display_name", "Zoë Ünïcode ✓"))
}

func TestNormalizeEmailRefusesIPAddressDomains(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"an IPv4 literal":             "x@[127.0.0.1]",
		"an IPv6 literal":             "x@[IPv6:::1]",
		"a full IPv6 literal":         "x@[IPv6:2001:db8::1]",
		"a mapped IPv6 literal":       "x@[IPv6:::ffff:10.0.0.1]",
		"a bare IPv4 address":         "x@127.0.0.1",
		"a bare address in capitals":  "X@10.0.0.1",
		"a short IPv4 form":           "x@127.1",
		"a hexadecimal IPv4 form":     "x@0x7f.1",
		"a hexadecimal form in caps":  "x@0X7F.0X1",
		"a quoted local part literal": `"x"@[1.2.3.4]`,
	}
	for name, in := range cases {
		t.Run(name+" is refused", func(t *testing.T) {
			t.Parallel()
			_, err := NormalizeEmail("email", in)
			f, ok := fault.As(err)
			require.True(t, ok, "%q: want a fault, got %v", in, err)
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.Equal(t, "EMAIL_IP_LITERAL", f.Reason, "%q", in)
			require.Equal(t, "email", f.Violations[0].Field)
		})
	}
	for _, in := range []string{"ann@1password.com", "ann@123.example.com", "ann@mail.0xabc.dev", "ann@example.co1"} {
		t.Run(in+" is accepted: only a numeric last label makes an address", func(t *testing.T) {
			t.Parallel()
			_, err := NormalizeEmail("email", in)
			require.NoError(t, err)
		})
	}
}

func TestValidateDisplayName(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"empty":                    "",
		"accented letters":         "Zoë Ünïcode ✓",
		"a zero-width non-joiner":  "می\u200cخواهم",
		"an emoji with a selector": "Ann \u2764\ufe0f",
	}
	for name, in := range good {
		t.Run(name+" is accepted", func(t *testing.T) {
			t.Parallel()
			require.NoError(t, ValidateDisplayName("display_name", in))
		})
	}
	bad := map[string]string{
		"a right-to-left override": "Ann\u202eEvil",
		"a right-to-left isolate":  "\u2067Ann",
		"a left-to-right mark":     "Ann\u200e",
		"an Arabic letter mark":    "An\u061cn",
		"only zero-width spaces":   "\u200b\u200b",
		"only a byte order mark":   "\ufeff",
		"only a zero-width joiner": "\u200d",
		"only spaces":              "  ",
		"a paragraph separator":    "Ann\u2029Evil",
		"a control character":      "Ann\x07",
		"a line break":             "Ann\nBcc: x",
		"invalid UTF-8":            "Ann\xff",
		"a leading space":          " Ann",
		"more than 200 characters": strings.Repeat("a", 201),
	}
	for name, in := range bad {
		t.Run(name+" is refused", func(t *testing.T) {
			t.Parallel()
			err := ValidateDisplayName("user.display_name", in)
			f, ok := fault.As(err)
			require.True(t, ok, "%q: want a fault, got %v", in, err)
			require.Equal(t, fault.InvalidArgument, f.Kind)
			require.Contains(t, []string{"DISPLAY_NAME_INVALID", "DISPLAY_NAME_TOO_LONG"}, f.Reason)
			require.Equal(t, "user.display_name", f.Violations[0].Field)
		})
	}
}

func TestFieldErrors(t *testing.T) {
	t.Parallel()
	email := fault.Invalid("email", "EMAIL_INVALID", "email is not a valid email address")
	short := fault.Invalid("password", "PASSWORD_TOO_SHORT", "choose a password of at least 12 characters; it has 5")

	t.Run("nothing added is no error", func(t *testing.T) {
		t.Parallel()
		var bad fieldErrors
		bad.add(nil)
		require.NoError(t, bad.err())
	})
	t.Run("one field's fault is returned as it is", func(t *testing.T) {
		t.Parallel()
		var bad fieldErrors
		bad.add(email)
		require.Same(t, email, bad.err())
	})
	t.Run("several fields' faults become one naming every field, with the first's reason", func(t *testing.T) {
		t.Parallel()
		var bad fieldErrors
		bad.add(email)
		bad.add(nil)
		bad.add(short)
		f, ok := fault.As(bad.err())
		require.True(t, ok)
		require.Equal(t, fault.InvalidArgument, f.Kind)
		require.Equal(t, "EMAIL_INVALID", f.Reason)
		require.Equal(t, []fault.FieldViolation{email.Violations[0], short.Violations[0]}, f.Violations)
		require.Equal(t, email.Message+"; "+short.Message, f.Message)
		require.Len(t, email.Violations, 1, "the faults added are not changed")
	})
	t.Run("an error that is not a field's wins", func(t *testing.T) {
		t.Parallel()
		other := fault.New(fault.PermissionDenied, "SIGNUP_CLOSED", "sign-up is closed in this tenant")
		var bad fieldErrors
		bad.add(email)
		bad.add(other)
		bad.add(fault.New(fault.Internal, "INTERNAL", "internal error"))
		require.Same(t, other, bad.err())
	})
}

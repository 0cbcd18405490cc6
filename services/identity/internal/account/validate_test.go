package account

import (
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

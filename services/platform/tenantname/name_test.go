package tenantname_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/tenantname"
)

func TestParseTenantName(t *testing.T) {
	t.Parallel()
	t.Run("a tenant name gives its slug", func(t *testing.T) {
		t.Parallel()
		slug, err := tenantname.ParseTenantName("name", "tenants/acme")
		require.NoError(t, err)
		require.Equal(t, "acme", slug)
	})
	t.Run("a tenant name is built from its slug", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "tenants/acme", tenantname.TenantName("acme"))
	})

	bad := []struct {
		name   string
		input  string
		reason string
	}{
		{"an empty name is refused", "", tenantname.ReasonTenantNameInvalid},
		{"a bare slug is refused", "acme", tenantname.ReasonTenantNameInvalid},
		{"another collection is refused", "users/acme", tenantname.ReasonTenantNameInvalid},
		{"an upper-case collection is refused", "Tenants/acme", tenantname.ReasonTenantNameInvalid},
		{"the collection alone is refused", "tenants/", tenantname.ReasonSlugInvalidLength},
		{"a nested name is refused", "tenants/acme/domains/x", tenantname.ReasonTenantNameInvalid},
		{"a trailing slash is refused", "tenants/acme/", tenantname.ReasonTenantNameInvalid},
		{"a path traversal is refused", "tenants/../acme", tenantname.ReasonTenantNameInvalid},
		{"a full resource name with a service is refused", "//registry.tenantry.dev/tenants/acme", tenantname.ReasonTenantNameInvalid},
		{"a leading space is refused", " tenants/acme", tenantname.ReasonTenantNameInvalid},
		{"an invalid slug is refused", "tenants/Acme", tenantname.ReasonSlugInvalid},
		{"an SQL injection is refused", "tenants/acme'; DROP SCHEMA public;--", tenantname.ReasonSlugInvalid},
		{"a reserved slug is refused", "tenants/public", tenantname.ReasonSlugReserved},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			slug, err := tenantname.ParseTenantName("name", tc.input)
			requireInvalid(t, err, "name", tc.reason)
			require.Empty(t, slug)
		})
	}
}

package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
)

// Display names reach identity's mail subjects, so names that read as
// something else there are refused on every way in.
func TestDisplayNamesThatHideOrReorderTextAreRefused(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	victim := r.create("victim")

	bad := map[string]string{
		"a right-to-left override":       "Evil\u202emoc.elgoog",
		"a right-to-left isolate":        "Acme \u2067Corp\u2069",
		"a right-to-left mark":           "Acme\u200f",
		"an Arabic letter mark":          "Ac\u061cme",
		"only zero-width spaces":         "\u200b\u200b",
		"only a byte order mark":         "\ufeff",
		"only zero-width joiners":        "\u200d\u200c",
		"only Hangul fillers":            "\u3164",
		"only an ideographic space":      "\u3000",
		"a line break (header breakout)": "Acme\r\nBcc: eve@example.com",
	}
	for name, displayName := range bad {
		t.Run("creating a tenant whose name has "+name+" is refused", func(t *testing.T) {
			_, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{
				TenantId: "evil",
				Tenant:   &registryv1.Tenant{DisplayName: displayName},
			})
			st := requireCode(t, err, codes.InvalidArgument)
			require.Equal(t, "DISPLAY_NAME_INVALID", reasonOf(st))
			require.Equal(t, []string{"tenant.display_name"}, badFields(st))
		})
		t.Run("renaming a tenant to a name with "+name+" is refused", func(t *testing.T) {
			_, err := r.client.UpdateTenant(operator(), &registryv1.UpdateTenantRequest{
				Tenant:     &registryv1.Tenant{Name: "tenants/victim", DisplayName: displayName},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			})
			st := requireCode(t, err, codes.InvalidArgument)
			require.Equal(t, "DISPLAY_NAME_INVALID", reasonOf(st))
			require.Equal(t, []string{"tenant.display_name"}, badFields(st))
		})
	}

	t.Run("nothing was created or renamed", func(t *testing.T) {
		_, err := r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/evil"})
		requireCode(t, err, codes.NotFound)
		got, err := r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/victim"})
		require.NoError(t, err)
		require.Equal(t, victim.GetDisplayName(), got.GetTenant().GetDisplayName())
	})

	t.Run("names that need joiners and selectors are accepted", func(t *testing.T) {
		for i, displayName := range []string{"می\u200cخواهم", "Acme \u2764\ufe0f", "שלום Acme"} {
			slug := []string{"persian", "emoji", "hebrew"}[i]
			resp, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{
				TenantId: slug,
				Tenant:   &registryv1.Tenant{DisplayName: displayName},
			})
			require.NoError(t, err, displayName)
			require.Equal(t, displayName, resp.GetTenant().GetDisplayName())
		}
	})
}

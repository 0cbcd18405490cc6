package tenancy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

func TestRequireActive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		state  tenancy.State
		kind   fault.Kind
		reason string
	}{
		{"a suspended tenant is refused as suspended", tenancy.Suspended, fault.FailedPrecondition, tenancy.ReasonTenantSuspended},
		{"a deleted tenant is refused as not found", tenancy.Deleted, fault.NotFound, tenancy.ReasonTenantNotFound},
		{"a provisioning tenant is refused until it is ready", tenancy.Provisioning, fault.FailedPrecondition, tenancy.ReasonTenantProvisioning},
		{"a tenant in a state this service does not know is refused", 0, fault.FailedPrecondition, tenancy.ReasonTenantStateUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tenancy.RequireActive(tenancy.Tenant{Slug: "acme", State: tt.state})
			requireFault(t, err, tt.kind, tt.reason)
		})
	}
	t.Run("an active tenant is served", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, tenancy.RequireActive(tenancy.Tenant{Slug: "acme", State: tenancy.Active}))
	})
}

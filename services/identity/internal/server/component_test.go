package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/tenantrole"
)

// identity's tables are the component "identity", registered by identity
// at start-up and applied by the registry like any product's: a tenant
// created before identity first ran gets them from identity's start-up
// fleet migration, a tenant created afterwards in CreateTenant itself, and
// in both they belong to the tenant's identity role, which no other
// component's role can read.
func TestIdentityTablesAreAComponentLikeAnyOther(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "early")
	migs, err := store.Migrations()
	require.NoError(t, err)
	components := registryv1.NewComponentServiceClient(registrytest.Dial(t, s.registry.Addr))

	got, err := components.GetComponent(s.registry.OperatorCtx(), &registryv1.GetComponentRequest{Name: "components/identity"})
	require.NoError(t, err, "identity registered its tables")
	require.Len(t, got.GetComponent().GetMigrations(), len(migs))

	versionOf := func(slug string) [2]int32 {
		resp, err := components.ListTenantComponents(s.registry.OperatorCtx(), &registryv1.ListTenantComponentsRequest{Parent: "tenants/" + slug})
		require.NoError(t, err)
		for _, c := range resp.GetComponents() {
			if strings.HasSuffix(c.GetName(), "/components/identity") {
				return [2]int32{c.GetVersion(), c.GetLatestVersion()}
			}
		}
		return [2]int32{}
	}
	latest := int32(len(migs))
	registrytest.Eventually(t, "identity's start-up migration to reach the tenant created before it", func() bool {
		return versionOf("early") == [2]int32{latest, latest}
	})
	late := s.registry.Create("late")
	require.Equal(t, [2]int32{latest, latest}, versionOf("late"), "CreateTenant applied identity's tables before answering")

	db, err := pgxpool.New(context.Background(), s.registry.DBURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	early, err := s.registry.Operator.GetTenant(s.registry.OperatorCtx(), &registryv1.GetTenantRequest{Name: "tenants/early"})
	require.NoError(t, err)
	for _, tenant := range []*registryv1.Tenant{early.GetTenant(), late} {
		var owner string
		require.NoError(t, db.QueryRow(context.Background(),
			`SELECT tableowner FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'users'`, tenant.GetSchema()).Scan(&owner))
		require.Equal(t, tenantrole.RoleName(tenant.GetUid(), "identity"), owner)
	}

	// Both tenants serve at once.
	for _, slug := range []string{"early", "late"} {
		_, err := s.auth.SignUp(in(slug), &identityv1.SignUpRequest{Email: "ann@" + slug + ".example", Password: "correct horse battery staple"})
		require.NoError(t, err, slug)
	}
}

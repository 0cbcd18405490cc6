package server_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
)

func TestTenantLifecycle(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	ctx := operator()

	// Create: the schema exists in PostgreSQL and the tenant is ACTIVE.
	created, err := r.client.CreateTenant(ctx, &registryv1.CreateTenantRequest{
		TenantId: "acme",
		Tenant:   &registryv1.Tenant{DisplayName: "Acme", Labels: map[string]string{"tier": "gold"}},
	})
	require.NoError(t, err)
	acme := created.GetTenant()
	require.Equal(t, "tenants/acme", acme.GetName())
	require.Equal(t, registryv1.Tenant_STATE_ACTIVE, acme.GetState())
	require.Equal(t, "acme", acme.GetSchema())
	require.Equal(t, "default", acme.GetPlacement())
	require.NotEmpty(t, acme.GetUid())
	require.NotEmpty(t, acme.GetEtag())
	require.True(t, schemaExists(t, r.db, "acme"), "schema acme must exist after create")

	// Get returns the same tenant.
	got, err := r.client.GetTenant(ctx, &registryv1.GetTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	require.Equal(t, acme.GetUid(), got.GetTenant().GetUid())
	require.Equal(t, "Acme", got.GetTenant().GetDisplayName())

	// List sees it, and the label filter selects it.
	r.create("beta")
	list, err := r.client.ListTenants(ctx, &registryv1.ListTenantsRequest{Filter: `labels.tier = "gold"`})
	require.NoError(t, err)
	require.Len(t, list.GetTenants(), 1)
	require.Equal(t, "acme", list.GetTenants()[0].GetSlug())

	// Update with the current etag works; the old etag is then stale.
	upd, err := r.client.UpdateTenant(ctx, &registryv1.UpdateTenantRequest{
		Tenant:     &registryv1.Tenant{Name: "tenants/acme", DisplayName: "Acme Corp", Etag: acme.GetEtag()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	})
	require.NoError(t, err)
	require.Equal(t, "Acme Corp", upd.GetTenant().GetDisplayName())
	require.Equal(t, map[string]string{"tier": "gold"}, upd.GetTenant().GetLabels(), "fields outside the mask stay")
	require.NotEqual(t, acme.GetEtag(), upd.GetTenant().GetEtag())

	_, err = r.client.UpdateTenant(ctx, &registryv1.UpdateTenantRequest{
		Tenant:     &registryv1.Tenant{Name: "tenants/acme", DisplayName: "Lost update", Etag: acme.GetEtag()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	})
	st := requireCode(t, err, codes.Aborted)
	require.Contains(t, st.Message(), "changed since etag")
	got, err = r.client.GetTenant(ctx, &registryv1.GetTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	require.Equal(t, "Acme Corp", got.GetTenant().GetDisplayName(), "a refused update changes nothing")

	// Suspend: resolution reports the tenant suspended, never active.
	_, err = r.client.SuspendTenant(ctx, &registryv1.SuspendTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	res, err := r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: "ACME.localhost:8080"}})
	require.NoError(t, err)
	require.Equal(t, registryv1.Tenant_STATE_SUSPENDED, res.GetTenant().GetState())
	require.Equal(t, registryv1.ResolveTenantResponse_MATCH_SUBDOMAIN, res.GetMatch())
	require.True(t, schemaExists(t, r.db, "acme"), "suspending keeps the schema")

	// Suspending twice is refused with the reason.
	_, err = r.client.SuspendTenant(ctx, &registryv1.SuspendTenantRequest{Name: "tenants/acme"})
	requireCode(t, err, codes.FailedPrecondition)

	// Resume, then delete softly: the schema stays until purge.
	_, err = r.client.ResumeTenant(ctx, &registryv1.ResumeTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	del, err := r.client.DeleteTenant(ctx, &registryv1.DeleteTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	require.Equal(t, registryv1.Tenant_STATE_DELETED, del.GetTenant().GetState())
	require.NotNil(t, del.GetTenant().GetDeleteTime())
	require.True(t, del.GetTenant().GetPurgeTime().AsTime().After(time.Now().Add(24*time.Hour)), "default grace is long")
	require.True(t, schemaExists(t, r.db, "acme"), "a soft delete keeps the schema")
	res, err = r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "acme"}})
	require.NoError(t, err)
	require.Equal(t, registryv1.Tenant_STATE_DELETED, res.GetTenant().GetState())

	// Deleted tenants are hidden from lists unless asked for.
	list, err = r.client.ListTenants(ctx, &registryv1.ListTenantsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetTenants(), 1)
	list, err = r.client.ListTenants(ctx, &registryv1.ListTenantsRequest{ShowDeleted: true})
	require.NoError(t, err)
	require.Len(t, list.GetTenants(), 2)

	// Undelete brings it back; delete with force purges at once.
	und, err := r.client.UndeleteTenant(ctx, &registryv1.UndeleteTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	require.Equal(t, registryv1.Tenant_STATE_ACTIVE, und.GetTenant().GetState())
	_, err = r.client.DeleteTenant(ctx, &registryv1.DeleteTenantRequest{Name: "tenants/acme", Force: true})
	require.NoError(t, err)
	require.False(t, schemaExists(t, r.db, "acme"), "purge drops the schema")
	_, err = r.client.GetTenant(ctx, &registryv1.GetTenantRequest{Name: "tenants/acme"})
	requireCode(t, err, codes.NotFound)
	_, err = r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: "acme.localhost"}})
	requireCode(t, err, codes.NotFound)

	// The slug is free again after the purge.
	again := r.create("acme")
	require.NotEqual(t, acme.GetUid(), again.GetUid())
	require.True(t, schemaExists(t, r.db, "acme"))
}

func TestPurgeAfterGracePeriod(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "", withPurgeGrace(0))
	r.create("shortlived")
	_, err := r.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/shortlived"})
	require.NoError(t, err)
	require.True(t, schemaExists(t, r.db, "shortlived"), "the schema waits for the purger")

	// Past its purge time a tenant can no longer be undeleted.
	_, err = r.client.UndeleteTenant(operator(), &registryv1.UndeleteTenantRequest{Name: "tenants/shortlived"})
	requireCode(t, err, codes.FailedPrecondition)

	rep, err := r.app.Reconcile(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, rep.Purged)
	require.False(t, schemaExists(t, r.db, "shortlived"))
	_, err = r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/shortlived"})
	requireCode(t, err, codes.NotFound)
}

func TestCreateIsIdempotentWithRequestID(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	req := &registryv1.CreateTenantRequest{TenantId: "retry", RequestId: "7f1b7a8e-9c2d-4a8e-8d3e-1c2b3a4d5e6f"}
	first, err := r.client.CreateTenant(operator(), req)
	require.NoError(t, err)
	second, err := r.client.CreateTenant(operator(), req)
	require.NoError(t, err, "a retry with the same request_id succeeds")
	require.Equal(t, first.GetTenant().GetUid(), second.GetTenant().GetUid())

	_, err = r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: "retry"})
	requireCode(t, err, codes.AlreadyExists)

	_, err = r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: "other", RequestId: req.RequestId})
	requireCode(t, err, codes.FailedPrecondition)
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	want := []string{"page-a", "page-b", "page-c", "page-d", "page-e"}
	for _, s := range want {
		r.create(s)
	}
	var got []string
	token := ""
	for range 10 {
		resp, err := r.client.ListTenants(operator(), &registryv1.ListTenantsRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.GetTenants()), 2)
		for _, tn := range resp.GetTenants() {
			got = append(got, tn.GetSlug())
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	require.Equal(t, want, got)

	// A token is only good with the filter it was made for.
	resp, err := r.client.ListTenants(operator(), &registryv1.ListTenantsRequest{PageSize: 2})
	require.NoError(t, err)
	_, err = r.client.ListTenants(operator(), &registryv1.ListTenantsRequest{PageSize: 2, PageToken: resp.GetNextPageToken(), Filter: "state = ACTIVE"})
	requireCode(t, err, codes.InvalidArgument)
	_, err = r.client.ListTenants(operator(), &registryv1.ListTenantsRequest{PageToken: "garbage!"})
	requireCode(t, err, codes.InvalidArgument)
}

func TestDomains(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	r.create("shop")
	r.create("rival")
	ctx := operator()

	resp, err := r.client.AddDomain(ctx, &registryv1.AddDomainRequest{Name: "tenants/shop", Host: "Shop.Example.COM."})
	require.NoError(t, err)
	require.Len(t, resp.GetTenant().GetDomains(), 1)
	require.Equal(t, "shop.example.com", resp.GetTenant().GetDomains()[0].GetHost())
	require.True(t, resp.GetTenant().GetDomains()[0].GetPrimary(), "the first domain is primary")

	resp, err = r.client.AddDomain(ctx, &registryv1.AddDomainRequest{Name: "tenants/shop", Host: "bücher.example", Primary: true})
	require.NoError(t, err)
	require.Equal(t, "xn--bcher-kva.example", resp.GetTenant().GetDomains()[1].GetHost(), "IDN is stored as punycode")
	require.True(t, resp.GetTenant().GetDomains()[1].GetPrimary())
	require.False(t, resp.GetTenant().GetDomains()[0].GetPrimary(), "only one primary")

	for _, host := range []string{"shop.example.com", "SHOP.EXAMPLE.COM:443", "bücher.example", "xn--bcher-kva.example"} {
		res, err := r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: host}})
		require.NoError(t, err, host)
		require.Equal(t, "shop", res.GetTenant().GetSlug(), host)
		require.Equal(t, registryv1.ResolveTenantResponse_MATCH_DOMAIN, res.GetMatch())
	}

	// A host belongs to one tenant only.
	_, err = r.client.AddDomain(ctx, &registryv1.AddDomainRequest{Name: "tenants/rival", Host: "shop.example.com"})
	st := requireCode(t, err, codes.AlreadyExists)
	require.Equal(t, "DOMAIN_TAKEN", reasonOf(st))

	// Hosts under a base domain resolve by slug and cannot be claimed.
	_, err = r.client.AddDomain(ctx, &registryv1.AddDomainRequest{Name: "tenants/rival", Host: "shop.localhost"})
	requireCode(t, err, codes.InvalidArgument)

	// Removing the primary promotes the remaining domain.
	removed, err := r.client.RemoveDomain(ctx, &registryv1.RemoveDomainRequest{Name: "tenants/shop", Host: "xn--bcher-kva.example"})
	require.NoError(t, err)
	require.Len(t, removed.GetTenant().GetDomains(), 1)
	require.Equal(t, "shop.example.com", removed.GetTenant().GetDomains()[0].GetHost())
	require.True(t, removed.GetTenant().GetDomains()[0].GetPrimary(), "the remaining domain becomes primary")
	_, err = r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: "bücher.example"}})
	requireCode(t, err, codes.NotFound)
	_, err = r.client.RemoveDomain(ctx, &registryv1.RemoveDomainRequest{Name: "tenants/shop", Host: "nope.example"})
	requireCode(t, err, codes.NotFound)

	// Resolution by uid and unknown keys.
	res, err := r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Uid{Uid: resp.GetTenant().GetUid()}})
	require.NoError(t, err)
	require.Equal(t, "shop", res.GetTenant().GetSlug())
	for _, host := range []string{"nobody.localhost", "a.b.shop.localhost", "localhost", "unknown.example"} {
		_, err = r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: host}})
		requireCode(t, err, codes.NotFound)
	}
	_, err = r.client.ResolveTenant(ctx, &registryv1.ResolveTenantRequest{})
	requireCode(t, err, codes.InvalidArgument)
}

func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

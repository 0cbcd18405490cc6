package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/pgtest"
)

// While PostgreSQL is down, every call that needs it answers UNAVAILABLE
// (retry) with reason DATABASE_UNAVAILABLE, over gRPC and as HTTP 503 over
// REST, never INTERNAL; and the registry serves again once it is back.
func TestDatabaseOutageIsUnavailableNeverInternal(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	r := startRegistry(t, cluster.URL("postgres"))
	acme := r.create("acme")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Stop(ctx))

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CreateTenant", func(ctx context.Context) error {
			_, err := r.client.CreateTenant(ctx, &registryv1.CreateTenantRequest{TenantId: "during-outage"})
			return err
		}},
		{"UpdateTenant", func(ctx context.Context) error {
			_, err := r.client.UpdateTenant(ctx, &registryv1.UpdateTenantRequest{
				Tenant:     &registryv1.Tenant{Name: acme.GetName(), DisplayName: "Acme, renamed"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			})
			return err
		}},
		{"SuspendTenant", func(ctx context.Context) error {
			_, err := r.client.SuspendTenant(ctx, &registryv1.SuspendTenantRequest{Name: acme.GetName()})
			return err
		}},
		{"AddDomain", func(ctx context.Context) error {
			_, err := r.client.AddDomain(ctx, &registryv1.AddDomainRequest{Name: acme.GetName(), Host: "acme.example.com"})
			return err
		}},
		{"DeleteTenant", func(ctx context.Context) error {
			_, err := r.client.DeleteTenant(ctx, &registryv1.DeleteTenantRequest{Name: acme.GetName()})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name+" is UNAVAILABLE with DATABASE_UNAVAILABLE and a retry delay", func(t *testing.T) {
			callCtx, cancel := context.WithTimeout(operator(), 30*time.Second)
			defer cancel()
			requireDatabaseUnavailable(t, c.call(callCtx))
		})
	}

	t.Run("CreateTenant over REST is 503 Service Unavailable", func(t *testing.T) {
		code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=rest-during-outage", operatorToken, `{"displayName":"REST"}`)
		require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
		e := decodeError(t, body)
		require.Equal(t, int(codes.Unavailable), e.Code)
		require.Equal(t, "the database is unavailable; retry shortly", e.Message)
	})

	require.NoError(t, cluster.Start(ctx))
	eventually(t, 30*time.Second, "create to succeed once the database is back", func() bool {
		_, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: "after-outage"})
		return err == nil
	})
}

// requireDatabaseUnavailable checks that err is what a client must see
// during a database outage: UNAVAILABLE, reason DATABASE_UNAVAILABLE, a
// retry delay, and nothing about the database.
func requireDatabaseUnavailable(t *testing.T, err error) {
	t.Helper()
	st := requireCode(t, err, codes.Unavailable)
	require.Equal(t, "the database is unavailable; retry shortly", st.Message())
	require.Equal(t, "DATABASE_UNAVAILABLE", grpcerr.Reason(st))
	delay, ok := grpcerr.RetryDelay(st)
	require.True(t, ok && delay > 0, "no RetryInfo")
}

package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
)

func TestHostileInputIsRefused(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	r.create("victim")

	slugs := map[string]string{
		"sql injection":          `acme'; DROP SCHEMA victim CASCADE; --`,
		"quoted identifier":      `"victim"`,
		"double quote inside":    `ac"me`,
		"semicolon":              "acme;",
		"upper case":             "ACME",
		"underscore":             "pg_catalog",
		"reserved word":          "public",
		"reserved admin":         "admin",
		"reserved www":           "www",
		"information schema":     "information_schema",
		"postgres prefix":        "pg-toast",
		"too short":              "ab",
		"64 characters":          strings.Repeat("a", 64),
		"leading hyphen":         "-acme",
		"trailing hyphen":        "acme-",
		"cyrillic lookalike":     "асme",
		"zero width space":       "ac\u200bme",
		"right-to-left override": "ac\u202eme",
		"fullwidth letters":      "ａｃｍｅ",
		"nul byte":               "acme\x00",
		"space":                  "ac me",
		"empty":                  "",
		"punycode prefix":        "xn--acme",
	}
	for name, slug := range slugs {
		t.Run("slug with "+name+" is refused", func(t *testing.T) {
			_, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: slug})
			st := requireCode(t, err, codes.InvalidArgument)
			require.NotEmpty(t, badFields(st), "a field violation names tenant_id")
			require.Equal(t, "tenant_id", badFields(st)[0])
		})
	}
	hosts := map[string]string{
		"sql injection":     `x.localhost'; DROP SCHEMA victim; --`,
		"quote":             `vic"tim.localhost`,
		"path":              "victim.localhost/admin",
		"userinfo":          "evil@victim.localhost",
		"ip literal":        "127.0.0.1",
		"ipv6 literal":      "[::1]:8080",
		"zero width joiner": "vic\u200dtim.localhost",
		"rtl override":      "\u202evictim.localhost",
		"label too long":    strings.Repeat("a", 64) + ".localhost",
		"bad port":          "victim.localhost:99999",
		"wildcard":          "*.localhost",
		"percent encoding":  "victim%2elocalhost",
		"empty":             "",
		"control character": "victim.localhost\r\nx-injected: 1",
		"empty label":       "victim..localhost",
	}
	for name, host := range hosts {
		t.Run("host with "+name+" is refused", func(t *testing.T) {
			_, err := r.client.ResolveTenant(operator(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: host}})
			requireCode(t, err, codes.InvalidArgument)
			_, err = r.client.AddDomain(operator(), &registryv1.AddDomainRequest{Name: "tenants/victim", Host: host})
			requireCode(t, err, codes.InvalidArgument)
		})
	}
	t.Run("resource names that are not tenants/{slug} are refused", func(t *testing.T) {
		for _, name := range []string{"victim", "tenants/", "tenants/victim/x", "projects/victim", "tenants/VICTIM", "tenants/vic'tim"} {
			_, err := r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: name})
			requireCode(t, err, codes.InvalidArgument)
		}
	})
	t.Run("the victim survives every attempt", func(t *testing.T) {
		require.True(t, schemaExists(t, r.db, "victim"))
		_, err := r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/victim"})
		require.NoError(t, err)
	})
}

func badFields(st *status.Status) []string {
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func TestConcurrentCreatesOfOneSlug(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	const n = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codeN = map[codes.Code]int{}
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: "contested"})
			mu.Lock()
			defer mu.Unlock()
			codeN[status.Code(err)]++
		}()
	}
	wg.Wait()
	require.Equal(t, map[codes.Code]int{codes.OK: 1, codes.AlreadyExists: n - 1}, codeN)
	var count int
	require.NoError(t, r.db.QueryRow(context.Background(), `SELECT count(*) FROM tenantry_registry.tenants WHERE slug = 'contested'`).Scan(&count))
	require.Equal(t, 1, count)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	r.create("guarded")

	t.Run("anonymous calls are unauthenticated", func(t *testing.T) {
		_, err := r.client.GetTenant(context.Background(), &registryv1.GetTenantRequest{Name: "tenants/guarded"})
		requireCode(t, err, codes.Unauthenticated)
		_, err = r.client.ResolveTenant(context.Background(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "guarded"}})
		requireCode(t, err, codes.Unauthenticated)
		stream, err := r.client.WatchTenants(context.Background(), &registryv1.WatchTenantsRequest{})
		require.NoError(t, err)
		_, err = stream.Recv()
		requireCode(t, err, codes.Unauthenticated)
	})
	t.Run("a wrong token is unauthenticated", func(t *testing.T) {
		_, err := r.client.GetTenant(as("wrong-token-wrong-token"), &registryv1.GetTenantRequest{Name: "tenants/guarded"})
		requireCode(t, err, codes.Unauthenticated)
		_, err = r.client.CreateTenant(as(operatorToken+"x"), &registryv1.CreateTenantRequest{TenantId: "sneaky"})
		requireCode(t, err, codes.Unauthenticated)
	})
	t.Run("the service credential can resolve and watch", func(t *testing.T) {
		res, err := r.client.ResolveTenant(as(serviceToken), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: "guarded.localhost"}})
		require.NoError(t, err)
		require.Equal(t, "guarded", res.GetTenant().GetSlug())
		stream, err := r.client.WatchTenants(as(serviceToken), &registryv1.WatchTenantsRequest{})
		require.NoError(t, err)
		ev, err := stream.Recv()
		require.NoError(t, err)
		require.Equal(t, "guarded", ev.GetTenant().GetSlug())
	})
	t.Run("the service credential cannot administer", func(t *testing.T) {
		svc := as(serviceToken)
		_, err := r.client.CreateTenant(svc, &registryv1.CreateTenantRequest{TenantId: "sneaky"})
		requireCode(t, err, codes.PermissionDenied)
		_, err = r.client.DeleteTenant(svc, &registryv1.DeleteTenantRequest{Name: "tenants/guarded", Force: true})
		requireCode(t, err, codes.PermissionDenied)
		_, err = r.client.GetTenant(svc, &registryv1.GetTenantRequest{Name: "tenants/guarded"})
		requireCode(t, err, codes.PermissionDenied)
		require.True(t, schemaExists(t, r.db, "guarded"))
		require.False(t, schemaExists(t, r.db, "sneaky"))
	})
	t.Run("health needs no credential", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(r.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
	})
}

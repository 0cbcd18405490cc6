package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/tenant-registry/internal/config"
)

// scrape GETs url and parses it with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "the exposition does not parse")
	return families
}

// value finds the sample of family with every label of want.
func value(t *testing.T, families map[string]*dto.MetricFamily, family string, want map[string]string) (float64, bool) {
	t.Helper()
	f, ok := families[family]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsCountCallsByMethodAndCode(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	r.create("acme")
	_, err := r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/nobody"})
	requireCode(t, err, 5) // NOT_FOUND
	httpBase := "http://" + r.app.HTTPAddr().String()
	resp, err := http.Get(httpBase + "/v1/tenants/acme") // no credential: 401
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	families := scrape(t, httpBase+"/metrics")
	for _, c := range []struct {
		family  string
		labels  map[string]string
		atLeast float64
	}{
		{"grpc_server_handled_total", map[string]string{"grpc_method": "CreateTenant", "grpc_code": "OK", "service": "tenant-registry"}, 1},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "GetTenant", "grpc_code": "NotFound"}, 1},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "DeleteTenant", "grpc_code": "OK"}, 0}, // initialised at zero
		{"grpc_server_handling_seconds", map[string]string{"grpc_method": "CreateTenant"}, 1},
		{"http_requests_total", map[string]string{"method": "get", "code": "401"}, 1},
		{"http_request_duration_seconds", map[string]string{"code": "401"}, 1},
		{"pgx_pool_max_connections", map[string]string{"placement": "default"}, 1},
		{"pgx_pool_acquires_total", map[string]string{"placement": "default"}, 1},
		{"go_goroutines", map[string]string{"service": "tenant-registry"}, 1},
	} {
		v, ok := value(t, families, c.family, c.labels)
		require.True(t, ok, "no %s%v in the exposition", c.family, c.labels)
		require.GreaterOrEqual(t, v, c.atLeast, "%s%v", c.family, c.labels)
	}
	// No series names a tenant: bounded labels only.
	for name, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				require.NotContains(t, l.GetValue(), "acme", "%s carries a tenant in %s", name, l.GetName())
			}
		}
	}
}

func TestMetricsOnTheirOwnAddressOrOff(t *testing.T) {
	t.Parallel()
	own := startRegistry(t, "", func(c *config.Config) { c.MetricsAddr = "127.0.0.1:0" })
	require.NotNil(t, own.app.MetricsAddr())
	own.create("acme")
	families := scrape(t, fmt.Sprintf("http://%s/metrics", own.app.MetricsAddr()))
	_, ok := value(t, families, "grpc_server_handled_total", map[string]string{"grpc_method": "CreateTenant"})
	require.True(t, ok)
	resp, err := http.Get("http://" + own.app.HTTPAddr().String() + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, http.StatusOK, resp.StatusCode, "metrics with an address of their own are not on the HTTP port too")

	off := startRegistry(t, "", func(c *config.Config) { c.MetricsAddr = "off" })
	require.Nil(t, off.app.MetricsAddr())
	resp, err = http.Get("http://" + off.app.HTTPAddr().String() + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, http.StatusOK, resp.StatusCode)
}

// TestMetricsFollowARunningMigration: a fleet migration's progress is on
// /metrics while it runs (held up here by a lock on the tenant's table).
func TestMetricsFollowARunningMigration(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	_, err := r.register(notes())
	require.NoError(t, err)
	r.create("acme")
	_, err = r.register(notes(&registryv1.Migration{Version: 3, Name: "add_pinned", Sql: `ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false`}))
	require.NoError(t, err)
	ctx := context.Background()
	holder, err := r.db.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = holder.Exec(ctx, `LOCK TABLE acme.notes IN ACCESS SHARE MODE`)
	require.NoError(t, err)

	resp, err := r.components().MigrateTenants(operator(), &registryv1.MigrateTenantsRequest{LockTimeout: durationpb.New(time.Minute)})
	require.NoError(t, err)
	id := strings.TrimPrefix(resp.GetOperation().GetName(), "operations/")
	url := "http://" + r.app.HTTPAddr().String() + "/metrics"
	eventually(t, 10*time.Second, "the migration's progress on /metrics", func() bool {
		v, ok := value(t, scrape(t, url), "tenantry_registry_operation_tenants", map[string]string{"operation": id, "progress": "total"})
		return ok && v == 1
	})
	families := scrape(t, url)
	done, _ := value(t, families, "tenantry_registry_operation_tenants", map[string]string{"operation": id, "progress": "done"})
	require.Zero(t, done)
	running, _ := value(t, families, "tenantry_registry_operations_running", map[string]string{"kind": "MigrateTenants"})
	require.Equal(t, 1.0, running)

	require.NoError(t, holder.Rollback(ctx))
	eventually(t, 10*time.Second, "the migration to end", func() bool {
		_, ok := value(t, scrape(t, url), "tenantry_registry_operation_tenants", map[string]string{"operation": id, "progress": "total"})
		return !ok // a finished operation leaves the exposition
	})
}

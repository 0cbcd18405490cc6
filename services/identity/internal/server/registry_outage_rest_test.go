package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/smtptest"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/tenantdb"
)

// A registry outage changes nothing for existing tenants on either face:
// once identity holds the registry's snapshot, a tenant's hosts (its
// "{slug}.localhost" and its custom domains) are answered from memory, even
// hosts no request ever used, and a host of no tenant is NOT_FOUND rather
// than UNAVAILABLE. That holds again after identity restarts, once it has
// the snapshot from the registry.
func TestRegistryOutageKeepsEveryHostOfExistingTenantsWorking(t *testing.T) {
	t.Parallel()
	s := &system{t: t, registry: registrytest.Start(t, registryBin), smtp: smtptest.Start(t, smtptest.Options{})}
	acme := s.registry.Create("acme")
	s.registry.AddDomain("acme", "login.acme-corp.example")
	s.startIdentity(s.registry.DBURL)
	s.awaitSnapshot(acme.GetSchema())
	s.registry.Kill()
	s.requireTenantHostsWork("first", "acme", "acme.localhost", "login.acme-corp.example")
	s.requireUnknownHostsNotFound()

	// identity restarts while the registry is up, with a tenant it has
	// never seen, then the registry goes down again.
	s.stop()
	s.registry.Restart()
	beta := s.registry.Create("beta")
	s.registry.AddDomain("beta", "id.beta.example")
	s.startIdentity(s.registry.DBURL)
	s.awaitSnapshot(beta.GetSchema())
	s.registry.Kill()
	s.requireTenantHostsWork("restarted", "acme", "acme.localhost", "login.acme-corp.example")
	s.requireTenantHostsWork("restarted", "beta", "beta.localhost", "id.beta.example")
	s.requireUnknownHostsNotFound()
}

// awaitSnapshot waits until identity holds the registry's snapshot, in
// which the tenant with schema is (it was created before identity started),
// and that schema has identity's tables: a tenant created before identity
// first registered them gets them from identity's start-up migration,
// which needs the registry.
func (s *system) awaitSnapshot(schema string) {
	s.t.Helper()
	migs, err := store.Migrations()
	require.NoError(s.t, err)
	db, err := pgxpool.New(context.Background(), s.registry.DBURL)
	require.NoError(s.t, err)
	defer db.Close()
	registrytest.Eventually(s.t, "identity to load the registry's snapshot and the schema "+schema+" to have identity's tables", func() bool {
		v, err := tenantdb.RecordedVersion(context.Background(), db, schema, store.Component)
		return s.identity.Ready() && err == nil && v == len(migs)
	})
}

// requireTenantHostsWork requires the REST API and the pages of a tenant to
// be served on each of its hosts, and gRPC with x-tenant to work; phase
// tells this check's sign-ups from the others'.
func (s *system) requireTenantHostsWork(phase, slug string, hosts ...string) {
	t := s.t
	t.Helper()
	_, err := s.auth.GetAuthConfig(in(slug), &identityv1.GetAuthConfigRequest{})
	require.NoError(t, err, "gRPC with x-tenant: %s", slug)
	for _, host := range hosts {
		code, body := s.rest(http.MethodGet, host, "/v1/auth/config", "")
		require.Equal(t, http.StatusOK, code, "GET /v1/auth/config on %s: %s", host, body)

		email := phase + "-" + strings.ReplaceAll(host, ".", "-") + "@example.com"
		signUp := fmt.Sprintf(`{"email":%q,"password":%q}`, email, goodPassword)
		code, body = s.rest(http.MethodPost, host, "/v1/auth:signup", signUp)
		require.Equal(t, http.StatusOK, code, "POST /v1/auth:signup on %s: %s", host, body)

		resp, body := s.restResponse(http.MethodGet, host, "/login", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "GET /login on %s: %s", host, body)
		require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), "GET /login on %s", host)
	}
}

// requireUnknownHostsNotFound requires hosts of no tenant to be NOT_FOUND,
// on the API and the pages alike.
func (s *system) requireUnknownHostsNotFound() {
	t := s.t
	t.Helper()
	for _, host := range []string{"nobody.localhost", "www.acme.localhost", "acme.example.org", "login.nobody.example"} {
		code, body := s.rest(http.MethodGet, host, "/v1/auth/config", "")
		require.Equal(t, http.StatusNotFound, code, "GET /v1/auth/config on %s: %s", host, body)
		requireErrorReason(t, body, 5, "TENANT_NOT_FOUND")
		code, body = s.rest(http.MethodGet, host, "/login", "")
		require.Equal(t, http.StatusNotFound, code, "GET /login on %s: %s", host, body)
	}
}

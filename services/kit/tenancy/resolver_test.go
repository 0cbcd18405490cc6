package tenancy_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

// TestResolver runs resolvers against real registries. The subtests share
// one build of the registry; each has its own registry and database.
func TestResolver(t *testing.T) {
	t.Parallel()
	bin := buildRegistry(t)
	ctx := context.Background()

	t.Run("an existing tenant resolves by slug and by host, then from the cache", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		created := reg.Create("acme")
		res, calls := newResolver(t, reg, serviceToken, tenancy.Options{})

		bySlug, err := res.BySlug(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, tenancy.Tenant{
			UID:         created.GetUid(),
			Slug:        "acme",
			DisplayName: "Tenant acme",
			Schema:      created.GetSchema(),
			Placement:   created.GetPlacement(),
			State:       tenancy.Active,
		}, bySlug)
		require.NotEmpty(t, bySlug.Schema)
		byHost, err := res.ByHost(ctx, "ACME.localhost:8443")
		require.NoError(t, err)
		require.Equal(t, bySlug, byHost)
		require.NoError(t, tenancy.RequireActive(byHost))
		require.EqualValues(t, 2, calls.resolves())

		// Every spelling of the host normalises to the cached one.
		for _, host := range []string{"acme.localhost", "acme.localhost.", "Acme.LocalHost:443"} {
			got, err := res.ByHost(ctx, host)
			require.NoError(t, err)
			require.Equal(t, bySlug, got)
		}
		_, err = res.BySlug(ctx, "acme")
		require.NoError(t, err)
		require.EqualValues(t, 2, calls.resolves(), "cached answers must not call the registry")
	})

	t.Run("a resolver with the wrong credential is refused by the registry", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		reg.Create("acme")
		res, _ := newResolver(t, reg, "not-the-service-token-0123456789", tenancy.Options{})
		_, err := res.BySlug(ctx, "acme")
		requireFault(t, err, fault.Internal, tenancy.ReasonRegistryRejected)
	})

	t.Run("an unknown tenant is not found and remembered as unknown until an event", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		res, calls := newResolver(t, reg, serviceToken, tenancy.Options{NegativeTTL: time.Hour})

		for range 3 {
			_, err := res.BySlug(ctx, "nobody")
			requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
			_, err = res.ByHost(ctx, "nobody.localhost")
			requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
		}
		require.EqualValues(t, 2, calls.resolves(), "unknown keys must be remembered for NegativeTTL")

		// With the watch running, a new tenant makes unknown keys worth
		// asking about again, however long they were to be remembered; a
		// host the snapshot does not know is asked about once (a tenant
		// created a moment ago may not have reached the watch), then
		// remembered.
		run(t, res)
		asked := calls.resolves()
		for range 3 {
			_, err := res.ByHost(ctx, "nobody.localhost")
			requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
		}
		require.LessOrEqual(t, calls.resolves(), asked+1)

		created := reg.Create("nobody")
		eventually(t, "the new tenant to resolve by host", func() bool {
			got, err := res.ByHost(ctx, "nobody.localhost")
			return err == nil && got.UID == created.GetUid()
		})
	})

	t.Run("an unknown tenant is asked about again after NegativeTTL", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		res, calls := newResolver(t, reg, serviceToken, tenancy.Options{NegativeTTL: 50 * time.Millisecond})
		eventually(t, "the unknown slug to be asked about twice", func() bool {
			_, err := res.BySlug(ctx, "ghost")
			requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
			return calls.resolves() >= 2
		})
	})

	t.Run("a suspension reaches a running resolver and RequireActive refuses the tenant", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		reg.Create("acme")
		res, calls := newResolver(t, reg, serviceToken, tenancy.Options{})
		run(t, res)

		// The snapshot holds every tenant: known slugs cost no RPC.
		got, err := res.BySlug(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, tenancy.Active, got.State)
		require.Zero(t, calls.resolves())
		_, err = res.ByHost(ctx, "acme.localhost")
		require.NoError(t, err)

		reg.Suspend("acme")
		// Slugs are answered from the cache only, so only the watch can
		// bring the suspension.
		eventually(t, "the suspension to reach the resolver", func() bool {
			got, err = res.BySlug(ctx, "acme")
			require.NoError(t, err)
			return got.State == tenancy.Suspended
		})
		requireFault(t, tenancy.RequireActive(got), fault.FailedPrecondition, tenancy.ReasonTenantSuspended)
		// The host's answer was given for the active tenant; it is not served
		// as it was.
		got, err = res.ByHost(ctx, "acme.localhost")
		require.NoError(t, err)
		require.Equal(t, tenancy.Suspended, got.State)

		reg.Resume("acme")
		eventually(t, "the resumption to reach the resolver", func() bool {
			got, err = res.ByHost(ctx, "acme.localhost")
			require.NoError(t, err)
			return got.State == tenancy.Active
		})
		require.NoError(t, tenancy.RequireActive(got))
	})

	t.Run("a purged tenant is forgotten and reported to the OnPurge hooks", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		acme := reg.Create("acme")
		reg.Create("beta")
		res, _ := newResolver(t, reg, serviceToken, tenancy.Options{})
		purged := make(chan tenancy.Tenant, 10)
		res.OnPurge(func(t tenancy.Tenant) { purged <- t })
		run(t, res)
		_, err := res.ByHost(ctx, "acme.localhost")
		require.NoError(t, err)

		// A soft delete keeps the tenant, deleted, until its purge.
		reg.Delete("beta", false)
		eventually(t, "the deletion to reach the resolver", func() bool {
			got, err := res.BySlug(ctx, "beta")
			require.NoError(t, err)
			return got.State == tenancy.Deleted
		})
		beta, err := res.BySlug(ctx, "beta")
		require.NoError(t, err)
		requireFault(t, tenancy.RequireActive(beta), fault.NotFound, tenancy.ReasonTenantNotFound)

		reg.Delete("acme", true)
		got := receive(t, "the purge of acme", purged)
		require.Equal(t, acme.GetUid(), got.UID)
		require.Equal(t, "acme", got.Slug)
		_, err = res.BySlug(ctx, "acme")
		requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
		_, err = res.ByHost(ctx, "acme.localhost")
		requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
		require.Empty(t, purged, "only acme was purged")
	})

	t.Run("cached tenants survive a registry crash, and the watch resumes after a restart", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		reg.Create("acme")
		beta := reg.Create("beta")
		res, _ := newResolver(t, reg, serviceToken, tenancy.Options{})
		purged := make(chan tenancy.Tenant, 10)
		res.OnPurge(func(t tenancy.Tenant) { purged <- t })
		run(t, res)
		_, err := res.ByHost(ctx, "acme.localhost")
		require.NoError(t, err)

		reg.Kill()
		for _, lookup := range []func() (tenancy.Tenant, error){
			func() (tenancy.Tenant, error) { return res.BySlug(ctx, "acme") },
			func() (tenancy.Tenant, error) { return res.ByHost(ctx, "acme.localhost") },
			func() (tenancy.Tenant, error) { return res.BySlug(ctx, "beta") },
		} {
			got, err := lookup()
			require.NoError(t, err)
			require.Equal(t, tenancy.Active, got.State)
		}
		_, err = res.BySlug(ctx, "stranger")
		requireFault(t, err, fault.Unavailable, tenancy.ReasonRegistryUnavailable)
		// No answer for this host ever was, but the registry's answer for
		// acme's taught the resolver the base domain: beta is known.
		got, err := res.ByHost(ctx, "beta.localhost")
		require.NoError(t, err)
		require.Equal(t, beta.GetUid(), got.UID)
		// A host no known tenant could have is no tenant's.
		_, err = res.ByHost(ctx, "stranger.localhost")
		requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
		// Without the registry's base domains, "{known slug}.{domain}" could
		// still be a tenant's host.
		_, err = res.ByHost(ctx, "acme.example.com")
		requireFault(t, err, fault.Unavailable, tenancy.ReasonRegistryUnavailable)

		reg.Restart()
		reg.Suspend("acme")
		reg.Delete("beta", true)
		eventually(t, "the suspension made after the restart to reach the resolver", func() bool {
			got, err := res.BySlug(ctx, "acme")
			require.NoError(t, err)
			return got.State == tenancy.Suspended
		})
		require.Equal(t, beta.GetUid(), receive(t, "the purge of beta", purged).UID)

		// The host answers with the tenant's current state, registry or not.
		reg.Kill()
		got, err = res.ByHost(ctx, "acme.localhost")
		require.NoError(t, err)
		require.Equal(t, tenancy.Suspended, got.State)
	})

	t.Run("a ready resolver with the base domains answers every host from memory, also while the registry is down", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		acme := reg.Create("acme")
		reg.AddDomain("acme", "Login.Acme-Corp.example.")
		beta := reg.Create("beta")
		reg.Suspend("beta")
		opts := tenancy.Options{BaseDomains: []string{"LocalHost."}}
		res, calls := newResolver(t, reg, serviceToken, opts)
		run(t, res)
		fresh, freshCalls := newResolver(t, reg, serviceToken, opts)
		run(t, fresh)

		check := func(res *tenancy.Resolver, calls *rpcCounter) func(t *testing.T) {
			return func(t *testing.T) {
				before := calls.resolves()
				for host, uid := range map[string]string{
					"acme.localhost":              acme.GetUid(),
					"ACME.localhost:8443":         acme.GetUid(),
					"login.acme-corp.example":     acme.GetUid(),
					"Login.ACME-corp.example.:80": acme.GetUid(),
					"beta.localhost":              beta.GetUid(),
				} {
					require.Equal(t, uid, resolveHost(t, res, host).UID, host)
				}
				require.Equal(t, tenancy.Suspended, resolveHost(t, res, "beta.localhost").State)
				require.Equal(t, before, calls.resolves(), "the hosts of known tenants are answered from memory once the resolver is ready")
				// A host the snapshot does not know is asked about (a tenant
				// created a moment ago may not have reached the watch yet),
				// at most once per NegativeTTL; with the registry down the
				// snapshot's answer stands.
				unknown := []string{
					"nobody.localhost", "localhost", "www.acme.localhost", "acme.example.com",
					"acme-corp.example", "other.acme-corp.example",
				}
				for range 2 {
					for _, host := range unknown {
						_, err := res.ByHost(ctx, host)
						requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
					}
				}
				require.LessOrEqual(t, calls.resolves(), before+int64(len(unknown)))
			}
		}
		t.Run("with the registry up", check(res, calls))
		reg.Kill()
		t.Run("with the registry down", check(res, calls))
		t.Run("with the registry down, by a resolver never asked about a host", check(fresh, freshCalls))
	})

	t.Run("domain changes, suspensions and purges reach the hosts of a running resolver", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		acme := reg.Create("acme")
		beta := reg.Create("beta")
		res, calls := newResolver(t, reg, serviceToken, tenancy.Options{BaseDomains: []string{"localhost"}})
		run(t, res)
		resolvesTo := func(host, uid string, state tenancy.State) func() bool {
			return func() bool {
				got, err := res.ByHost(ctx, host)
				return err == nil && got.UID == uid && got.State == state
			}
		}
		notFound := func(host string) func() bool {
			return func() bool {
				_, err := res.ByHost(ctx, host)
				return fault.KindOf(err) == fault.NotFound
			}
		}

		reg.AddDomain("acme", "shop.example")
		eventually(t, "an added domain to resolve", resolvesTo("shop.example", acme.GetUid(), tenancy.Active))
		reg.RemoveDomain("acme", "shop.example")
		eventually(t, "a removed domain to resolve to nothing", notFound("shop.example"))
		reg.AddDomain("beta", "shop.example")
		eventually(t, "a domain moved to another tenant to resolve to it", resolvesTo("shop.example", beta.GetUid(), tenancy.Active))
		reg.Suspend("beta")
		eventually(t, "the suspension to reach the domain", resolvesTo("shop.example", beta.GetUid(), tenancy.Suspended))
		require.Equal(t, tenancy.Suspended, resolveHost(t, res, "beta.localhost").State)
		reg.Delete("beta", true)
		eventually(t, "the purge to reach the domain", notFound("shop.example"))
		_, err := res.ByHost(ctx, "beta.localhost")
		requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
		before := calls.resolves()
		require.Equal(t, acme.GetUid(), resolveHost(t, res, "acme.localhost").UID)
		require.Equal(t, before, calls.resolves(), "a known tenant's host is answered from memory")
	})

	t.Run("before the snapshot, hosts are asked of the registry", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		acme := reg.Create("acme")
		reg.AddDomain("acme", "shop.example")
		res, calls := newResolver(t, reg, serviceToken, tenancy.Options{BaseDomains: []string{"localhost"}})

		got, err := res.ByHost(ctx, "shop.example")
		require.NoError(t, err)
		require.Equal(t, acme.GetUid(), got.UID)
		// The answer brought the tenant: its other host is known too.
		require.Equal(t, acme.GetUid(), resolveHost(t, res, "acme.localhost").UID)
		require.EqualValues(t, 1, calls.resolves())
		_, err = res.ByHost(ctx, "nobody.localhost")
		requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)
		require.EqualValues(t, 2, calls.resolves())

		reg.Kill()
		_, err = res.ByHost(ctx, "beta.localhost")
		requireFault(t, err, fault.Unavailable, tenancy.ReasonRegistryUnavailable)
		require.Equal(t, acme.GetUid(), resolveHost(t, res, "shop.example").UID)
	})

	t.Run("a registry that lost its history is reloaded from a snapshot", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, bin)
		gone := map[string]bool{}
		for _, slug := range []string{"alpha", "beta", "gamma"} {
			gone[reg.Create(slug).GetUid()] = true
		}
		res, _ := newResolver(t, reg, serviceToken, tenancy.Options{})
		purged := make(chan tenancy.Tenant, 10)
		res.OnPurge(func(t tenancy.Tenant) { purged <- t })
		run(t, res)

		// The same address, an empty database: the registry's revisions
		// start over below the one the resolver resumes from.
		reg.Kill()
		reg.UseNewDatabase()
		reg.Restart()
		for range gone {
			got := receive(t, "the tenants of the lost history to be purged", purged)
			require.True(t, gone[got.UID], "unexpected purge of %q", got.Slug)
			delete(gone, got.UID)
		}
		_, err := res.BySlug(ctx, "alpha")
		requireFault(t, err, fault.NotFound, tenancy.ReasonTenantNotFound)

		reg.Create("delta")
		reg.Suspend("delta")
		eventually(t, "a change in the new history to reach the resolver", func() bool {
			got, err := res.BySlug(ctx, "delta")
			return err == nil && got.State == tenancy.Suspended
		})
	})
}

// resolveHost resolves host with res, failing the test on an error.
func resolveHost(t *testing.T, res *tenancy.Resolver, host string) tenancy.Tenant {
	t.Helper()
	got, err := res.ByHost(context.Background(), host)
	require.NoError(t, err, host)
	return got
}

// TestResolverRefusesInvalidKeysWithoutAsking checks that what is not a
// slug or a host never reaches the registry.
func TestResolverRefusesInvalidKeysWithoutAsking(t *testing.T) {
	t.Parallel()
	// A nil client panics if called.
	res := tenancy.NewResolver(struct{ registryv1.TenantServiceClient }{}, serviceToken, tenancy.Options{Logger: testLogger(t)})
	ctx := context.Background()
	tests := []struct {
		name   string
		lookup func() (tenancy.Tenant, error)
	}{
		{"an upper-case slug", func() (tenancy.Tenant, error) { return res.BySlug(ctx, "Acme") }},
		{"a reserved slug", func() (tenancy.Tenant, error) { return res.BySlug(ctx, "admin") }},
		{"an empty slug", func() (tenancy.Tenant, error) { return res.BySlug(ctx, "") }},
		{"an IP address as host", func() (tenancy.Tenant, error) { return res.ByHost(ctx, "127.0.0.1:8080") }},
		{"a host with a path", func() (tenancy.Tenant, error) { return res.ByHost(ctx, "acme.localhost/login") }},
		{"an empty host", func() (tenancy.Tenant, error) { return res.ByHost(ctx, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			t.Parallel()
			_, err := tt.lookup()
			require.Equal(t, fault.InvalidArgument, fault.KindOf(err), "error: %v", err)
		})
	}
}

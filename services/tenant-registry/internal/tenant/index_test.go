package tenant_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/tenant-registry/internal/tenant"
)

func upsert(rev int64, t *tenant.Tenant) tenant.Event {
	c := t.Clone()
	c.Revision = rev
	return tenant.Event{Revision: rev, Kind: tenant.Upsert, Tenant: c}
}

func TestIndexResolution(t *testing.T) {
	t.Parallel()
	x := tenant.NewIndex([]string{"localhost", "example.net"})
	acme := &tenant.Tenant{UID: "u1", Slug: "acme", State: tenant.Active}
	beta := &tenant.Tenant{UID: "u2", Slug: "beta", State: tenant.Suspended,
		Domains: []tenant.Domain{{Host: "acme.localhost", Primary: true}, {Host: "beta.io"}}}
	x.Load([]*tenant.Tenant{acme}, 1)
	require.Equal(t, 1, x.Apply([]tenant.Event{upsert(2, beta)}))

	cases := []struct {
		name  string
		host  string
		slug  string
		match tenant.Match
	}{
		{"a custom domain wins over the slug under a base domain", "acme.localhost", "beta", tenant.MatchDomain},
		{"a slug resolves under every base domain", "acme.example.net", "acme", tenant.MatchSubdomain},
		{"another custom domain", "beta.io", "beta", tenant.MatchDomain},
		{"a suspended tenant resolves, with its state", "beta.localhost", "beta", tenant.MatchSubdomain},
		{"a deeper subdomain does not resolve", "x.acme.example.net", "", 0},
		{"a base domain alone does not resolve", "localhost", "", 0},
		{"an unknown slug does not resolve", "gamma.localhost", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, match, rev, ok := x.ByHost(c.host)
			require.Equal(t, int64(2), rev)
			if c.slug == "" {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, c.slug, got.Slug)
			require.Equal(t, c.match, match)
		})
	}
}

func TestIndexAppliesEventsInOrderOnce(t *testing.T) {
	t.Parallel()
	x := tenant.NewIndex([]string{"localhost"})
	shop := &tenant.Tenant{UID: "u1", Slug: "shop", State: tenant.Active, Domains: []tenant.Domain{{Host: "shop.io"}}}
	x.Load(nil, 10)
	require.Equal(t, 0, x.Apply([]tenant.Event{upsert(9, shop)}), "events at or below the loaded revision are skipped")
	_, _, ok := x.BySlug("shop")
	require.False(t, ok)

	require.Equal(t, 1, x.Apply([]tenant.Event{upsert(11, shop)}))
	moved := shop.Clone()
	moved.Domains = []tenant.Domain{{Host: "shop.example"}}
	require.Equal(t, 1, x.Apply([]tenant.Event{upsert(12, moved), upsert(12, moved)}))
	_, _, _, ok = x.ByHost("shop.io")
	require.False(t, ok, "a removed domain stops resolving")
	got, _, _, ok := x.ByHost("shop.example")
	require.True(t, ok)
	require.Equal(t, int64(12), got.Revision)

	require.Equal(t, 1, x.Apply([]tenant.Event{{Revision: 13, Kind: tenant.Purge, Tenant: moved}}))
	_, _, _, ok = x.ByHost("shop.example")
	require.False(t, ok, "a purged tenant's domains are forgotten")
	_, _, ok = x.ByUID("u1")
	require.False(t, ok)
	require.Equal(t, int64(13), x.Revision())
	require.Equal(t, 0, x.Len())
}

func TestIndexSubscriptions(t *testing.T) {
	t.Parallel()
	x := tenant.NewIndex(nil)
	a := &tenant.Tenant{UID: "u1", Slug: "aaa"}
	x.Load([]*tenant.Tenant{a}, 5)

	sub, snapshot, rev := x.Subscribe(2, true)
	require.Equal(t, int64(5), rev)
	require.Len(t, snapshot, 1)
	x.Apply([]tenant.Event{upsert(6, a)})
	ev := <-sub.Events()
	require.Equal(t, int64(6), ev.Revision)

	t.Run("a subscriber that falls behind is dropped, not waited for", func(t *testing.T) {
		slow, _, _ := x.Subscribe(1, false)
		x.Apply([]tenant.Event{upsert(7, a), upsert(8, a), upsert(9, a)})
		require.True(t, slow.Overflowed())
		n := 0
		for range slow.Events() {
			n++
		}
		require.Equal(t, 1, n, "it got what fit, then its channel closed")
		slow.Close() // closing again is harmless
	})
	sub.Close()
	_, open := <-sub.Events()
	for open {
		_, open = <-sub.Events()
	}
}

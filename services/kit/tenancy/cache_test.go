package tenancy

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The cache's rules for answers that race with the watch, and for the hosts
// it derives from the tenants it holds, cannot be staged against a real
// registry reliably, so they are checked here directly.

var (
	now   = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	acme  = Tenant{UID: "uid-acme", Slug: "acme", Schema: "t_acme", State: Active}
	beta  = Tenant{UID: "uid-beta", Slug: "beta", Schema: "t_beta", State: Active}
	acmeH = host("acme.localhost")
	acmeS = key{kind: bySlug, value: "acme"}
)

// localhost is the base domains of most caches here.
var localhost = []string{"localhost"}

func host(h string) key { return key{kind: byHost, value: h} }

func suspended(t Tenant) Tenant {
	t.State = Suspended
	return t
}

// at returns t's version at revision rev with the custom domains given.
func at(t Tenant, rev int64, domains ...string) entry {
	return entry{tenant: t, revision: rev, domains: domains}
}

// requireHost requires host to resolve to want from memory.
func requireHost(t *testing.T, c *cache, h string, want Tenant) {
	t.Helper()
	l := c.lookup(host(h), now)
	require.True(t, l.found, "%s does not resolve", h)
	require.Equal(t, want, l.tenant, "%s", h)
}

// requireNoHost requires host to resolve to nothing from memory; unknown
// says whether the cache knows that no tenant has it.
func requireNoHost(t *testing.T, c *cache, h string, unknown bool) {
	t.Helper()
	l := c.lookup(host(h), now)
	require.False(t, l.found, "%s resolves to %q", h, l.tenant.Slug)
	require.Equal(t, unknown, l.unknown || l.snapshotMiss, "whether %s is known to be no tenant's", h)
}

func TestCacheRemember(t *testing.T) {
	t.Parallel()

	t.Run("an answer is served by slug and by every host of the tenant", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.remember(acmeH, at(acme, 3, "login.acme.example"), 5)
		requireHost(t, c, "acme.localhost", acme)
		requireHost(t, c, "login.acme.example", acme)
		require.True(t, c.lookup(acmeS, now).found, "the tenant is known by slug too")

		require.True(t, c.applyUpsert(at(suspended(acme), 6, "login.acme.example"), 6))
		requireHost(t, c, "acme.localhost", suspended(acme))
		requireHost(t, c, "login.acme.example", suspended(acme))
	})

	t.Run("an answer older than the cached tenant is not remembered", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		require.True(t, c.applyUpsert(at(suspended(acme), 6), 6))
		c.remember(host("old.acme.example"), at(acme, 3, "old.acme.example"), 5)
		require.Equal(t, lookup{epoch: 1}, c.lookup(host("old.acme.example"), now))
		require.Equal(t, suspended(acme), c.lookup(acmeS, now).tenant)
	})

	t.Run("an answer newer than the watch replaces the cached tenant", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		require.True(t, c.applyUpsert(at(acme, 3), 3))
		c.remember(acmeH, at(suspended(acme), 7), 7)
		require.Equal(t, suspended(acme), c.lookup(acmeH, now).tenant)
		// The watch catches up with an earlier version: the later one stays.
		require.True(t, c.applyUpsert(at(acme, 5), 5))
		require.Equal(t, suspended(acme), c.lookup(acmeS, now).tenant)
	})

	t.Run("an answer about a tenant the watch does not know is kept only if it is as recent as the watch", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		require.True(t, c.applyUpsert(at(beta, 8), 8))
		// The tenant may have been purged between revisions 5 and 8.
		c.remember(acmeS, at(acme, 3), 5)
		require.False(t, c.lookup(acmeS, now).found)
		c.remember(acmeS, at(acme, 3), 8)
		require.True(t, c.lookup(acmeS, now).found)
	})
}

func TestCacheHosts(t *testing.T) {
	t.Parallel()

	t.Run("hosts resolve by the registry's rules", func(t *testing.T) {
		t.Parallel()
		c := newCache([]string{"localhost", "apps.example.com"})
		c.replaceAll([]entry{at(acme, 1, "login.acme.example", "xn--bcher-kva.example"), at(beta, 2)}, 2)
		tests := []struct {
			host string
			want Tenant
		}{
			{"acme.localhost", acme},
			{"acme.apps.example.com", acme},
			{"beta.apps.example.com", beta},
			{"login.acme.example", acme},
			{"xn--bcher-kva.example", acme},
		}
		for _, tt := range tests {
			requireHost(t, c, tt.host, tt.want)
		}
		for _, h := range []string{
			"localhost", "nobody.localhost", "www.acme.localhost", "acme.example.com",
			"acme.evil.example", "acme", "example", "beta.login.acme.example",
		} {
			requireNoHost(t, c, h, true)
		}
	})

	t.Run("before the snapshot, a host of no cached tenant is asked about", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.remember(acmeS, at(acme, 1), 1)
		requireHost(t, c, "acme.localhost", acme)
		requireNoHost(t, c, "beta.localhost", false)
		requireNoHost(t, c, "login.beta.example", false)
	})

	t.Run("without the base domains, only a known slug under an unlearnt domain is asked about", func(t *testing.T) {
		t.Parallel()
		c := newCache(nil)
		c.replaceAll([]entry{at(acme, 1, "login.acme.example")}, 1)
		requireHost(t, c, "login.acme.example", acme)
		requireNoHost(t, c, "acme.localhost", false)
		requireNoHost(t, c, "nobody.localhost", true)
		requireNoHost(t, c, "other.example", true)

		require.False(t, c.learnBase("localhost"), "learning is expected without the base domains")
		requireHost(t, c, "acme.localhost", acme)
		requireNoHost(t, c, "acme.example.com", false)
	})

	t.Run("a base domain learnt from the registry that identity was not given is reported", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		require.False(t, c.learnBase("localhost"))
		require.True(t, c.learnBase("apps.example.com"))
		require.False(t, c.learnBase("apps.example.com"), "reported once")
		c.replaceAll([]entry{at(acme, 1)}, 1)
		requireHost(t, c, "acme.apps.example.com", acme)
	})

	t.Run("with no base domains, only custom domains resolve", func(t *testing.T) {
		t.Parallel()
		c := newCache([]string{})
		c.replaceAll([]entry{at(acme, 1, "login.acme.example")}, 1)
		requireHost(t, c, "login.acme.example", acme)
		requireNoHost(t, c, "acme.localhost", true)
	})

	t.Run("a removed domain no longer resolves, and an added one does", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.replaceAll([]entry{at(acme, 1, "old.acme.example")}, 1)
		require.True(t, c.applyUpsert(at(acme, 2, "old.acme.example", "new.acme.example"), 2))
		requireHost(t, c, "new.acme.example", acme)
		require.True(t, c.applyUpsert(at(acme, 3, "new.acme.example"), 3))
		requireNoHost(t, c, "old.acme.example", true)
		requireHost(t, c, "new.acme.example", acme)
		requireHost(t, c, "acme.localhost", acme)
	})

	t.Run("a domain moved to another tenant resolves to it", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.replaceAll([]entry{at(acme, 1, "shop.example"), at(beta, 2)}, 2)
		require.True(t, c.applyUpsert(at(acme, 3), 3))
		requireNoHost(t, c, "shop.example", true)
		require.True(t, c.applyUpsert(at(beta, 4, "shop.example"), 4))
		requireHost(t, c, "shop.example", beta)
	})

	t.Run("a domain moved to a tenant answered ahead of the watch stays with it", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.replaceAll([]entry{at(acme, 1, "shop.example"), at(beta, 1)}, 1)
		// The registry answered beta as of revision 4; the watch is behind.
		c.remember(host("shop.example"), at(beta, 4, "shop.example"), 4)
		requireHost(t, c, "shop.example", beta)
		// An event about acme, older than beta's answer, that still lists the
		// domain: acme had it then, but beta has it since.
		require.True(t, c.applyUpsert(at(suspended(acme), 2, "shop.example"), 2))
		requireHost(t, c, "shop.example", beta)
		// Then acme's release of the domain: beta keeps it.
		require.True(t, c.applyUpsert(at(acme, 3), 3))
		requireHost(t, c, "shop.example", beta)
		require.True(t, c.applyUpsert(at(beta, 4, "shop.example"), 4))
		requireHost(t, c, "shop.example", beta)
	})

	t.Run("a purged tenant's hosts resolve to nothing, and its slug and domain to their next owners", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.replaceAll([]entry{at(acme, 1, "shop.example"), at(beta, 2)}, 2)
		require.True(t, c.applyPurge(acme, 3))
		requireNoHost(t, c, "acme.localhost", true)
		requireNoHost(t, c, "shop.example", true)

		reborn := Tenant{UID: "uid-acme-2", Slug: "acme", Schema: "t_acme", State: Active}
		require.True(t, c.applyUpsert(at(reborn, 4), 4))
		require.True(t, c.applyUpsert(at(beta, 5, "shop.example"), 5))
		requireHost(t, c, "acme.localhost", reborn)
		requireHost(t, c, "shop.example", beta)
	})

	t.Run("a deleted tenant's hosts resolve to it, deleted", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.replaceAll([]entry{at(acme, 1, "shop.example")}, 1)
		deleted := acme
		deleted.State = Deleted
		require.True(t, c.applyUpsert(at(deleted, 2, "shop.example"), 2))
		requireHost(t, c, "acme.localhost", deleted)
		requireHost(t, c, "shop.example", deleted)
	})
}

func TestCacheRememberMissing(t *testing.T) {
	t.Parallel()

	t.Run("an unknown key is remembered for the TTL", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		l := c.lookup(acmeS, now)
		c.rememberMissing(acmeS, l.epoch, now, time.Second)
		require.True(t, c.lookup(acmeS, now.Add(999*time.Millisecond)).unknown)
		require.False(t, c.lookup(acmeS, now.Add(time.Second)).unknown)
	})

	t.Run("an unknown key is not remembered when the watch changed something meanwhile", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		l := c.lookup(acmeS, now)
		require.True(t, c.applyUpsert(at(acme, 1), 1))
		c.rememberMissing(host("new.example.com"), l.epoch, now, time.Hour)
		require.False(t, c.lookup(host("new.example.com"), now).unknown)
	})

	t.Run("every event forgets the unknown keys", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.rememberMissing(acmeH, c.lookup(acmeH, now).epoch, now, time.Hour)
		require.True(t, c.lookup(acmeH, now).unknown)
		require.True(t, c.applyUpsert(at(beta, 1), 1))
		require.False(t, c.lookup(acmeH, now).unknown)
	})

	t.Run("unknown keys are bounded", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		for i := range maxMissing + 10 {
			c.rememberMissing(host(fmt.Sprintf("h%d.example.com", i)), 0, now, time.Hour)
		}
		require.LessOrEqual(t, len(c.missing), maxMissing)
	})
}

func TestCacheWatch(t *testing.T) {
	t.Parallel()

	t.Run("a purge forgets the tenant by uid, slug and host", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.remember(acmeH, at(acme, 1, "shop.example"), 1)
		require.True(t, c.applyPurge(acme, 2))
		require.Equal(t, lookup{epoch: 1}, c.lookup(acmeH, now))
		require.Equal(t, lookup{epoch: 1}, c.lookup(acmeS, now))
		require.Empty(t, c.tenants)
		require.Empty(t, c.domains)
		require.False(t, c.applyPurge(acme, 2), "an event is applied once")
	})

	t.Run("a first snapshot reports what it lacks as gone, unless it is newer than the snapshot", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		c.remember(acmeS, at(acme, 3), 4)
		c.remember(key{kind: bySlug, value: "beta"}, at(beta, 12), 12)
		gone := c.replaceAll(nil, 10)
		require.Equal(t, []Tenant{acme}, gone)
		require.False(t, c.lookup(acmeS, now).found)
		require.True(t, c.lookup(key{kind: bySlug, value: "beta"}, now).found)
		require.EqualValues(t, 10, c.watchRevision())
	})

	t.Run("a snapshot after the registry lost its history replaces everything", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		require.True(t, c.applyUpsert(at(acme, 20, "shop.example"), 20))
		gone := c.replaceAll([]entry{at(beta, 2, "shop.example")}, 2)
		require.Equal(t, []Tenant{acme}, gone)
		require.True(t, c.lookup(key{kind: bySlug, value: "beta"}, now).found)
		requireHost(t, c, "shop.example", beta)
		require.EqualValues(t, 2, c.watchRevision())
		// Revisions of the new history apply.
		require.True(t, c.applyUpsert(at(suspended(beta), 3, "shop.example"), 3))
		require.Equal(t, suspended(beta), c.lookup(key{kind: bySlug, value: "beta"}, now).tenant)
		requireHost(t, c, "shop.example", suspended(beta))
	})

	t.Run("a snapshot after the registry lost its history gives domains to their new owners", func(t *testing.T) {
		t.Parallel()
		c := newCache(localhost)
		require.True(t, c.applyUpsert(at(acme, 20, "shop.example"), 20))
		require.True(t, c.applyUpsert(at(beta, 21), 21))
		// In the new history acme is still there (same uid), without the
		// domain, and beta has it at a revision far below acme's old one.
		c.replaceAll([]entry{at(beta, 2, "shop.example"), at(acme, 3)}, 3)
		requireHost(t, c, "shop.example", beta)
	})
}

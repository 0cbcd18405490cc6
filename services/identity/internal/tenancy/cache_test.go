package tenancy

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The cache's rules for answers that race with the watch cannot be staged
// against a real registry reliably, so they are checked here directly.

var (
	now   = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	acme  = Tenant{UID: "uid-acme", Slug: "acme", Schema: "t_acme", State: Active}
	beta  = Tenant{UID: "uid-beta", Slug: "beta", Schema: "t_beta", State: Active}
	acmeH = key{kind: byHost, value: "acme.localhost"}
	acmeS = key{kind: bySlug, value: "acme"}
)

func suspended(t Tenant) Tenant {
	t.State = Suspended
	return t
}

func TestCacheRemember(t *testing.T) {
	t.Parallel()

	t.Run("an answer is served until the tenant changes, then only as a fallback", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		c.remember(acmeH, acme, 3, 5)
		require.Equal(t, lookup{tenant: acme, fresh: true}, c.lookup(acmeH, now))
		require.True(t, c.lookup(acmeS, now).fresh, "the tenant is known by slug too")

		require.True(t, c.applyUpsert(suspended(acme), 6, 6))
		l := c.lookup(acmeH, now)
		require.False(t, l.fresh)
		require.True(t, l.stale)
		require.Equal(t, suspended(acme), l.tenant, "the fallback has the tenant's current state")

		c.remember(acmeH, suspended(acme), 6, 6)
		require.True(t, c.lookup(acmeH, now).fresh)
	})

	t.Run("an answer older than the cached tenant is not remembered", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		require.True(t, c.applyUpsert(suspended(acme), 6, 6))
		c.remember(acmeH, acme, 3, 5)
		require.Equal(t, lookup{epoch: 1}, c.lookup(acmeH, now))
		require.Equal(t, suspended(acme), c.lookup(acmeS, now).tenant)
	})

	t.Run("an answer newer than the watch replaces the cached tenant", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		require.True(t, c.applyUpsert(acme, 3, 3))
		c.remember(acmeH, suspended(acme), 7, 7)
		require.Equal(t, suspended(acme), c.lookup(acmeH, now).tenant)
		// The watch catches up with an earlier version: the later one stays.
		require.True(t, c.applyUpsert(acme, 5, 5))
		require.Equal(t, suspended(acme), c.lookup(acmeS, now).tenant)
	})

	t.Run("an answer about a tenant the watch does not know is kept only if it is as recent as the watch", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		require.True(t, c.applyUpsert(beta, 8, 8))
		// The tenant may have been purged between revisions 5 and 8.
		c.remember(acmeS, acme, 3, 5)
		require.False(t, c.lookup(acmeS, now).fresh)
		c.remember(acmeS, acme, 3, 8)
		require.True(t, c.lookup(acmeS, now).fresh)
	})
}

func TestCacheRememberMissing(t *testing.T) {
	t.Parallel()

	t.Run("an unknown key is remembered for the TTL", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		l := c.lookup(acmeS, now)
		c.rememberMissing(acmeS, l.epoch, now, time.Second)
		require.True(t, c.lookup(acmeS, now.Add(999*time.Millisecond)).unknown)
		require.False(t, c.lookup(acmeS, now.Add(time.Second)).unknown)
	})

	t.Run("an unknown key is not remembered when the watch changed something meanwhile", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		l := c.lookup(acmeS, now)
		require.True(t, c.applyUpsert(acme, 1, 1))
		c.rememberMissing(key{kind: byHost, value: "new.example.com"}, l.epoch, now, time.Hour)
		require.False(t, c.lookup(key{kind: byHost, value: "new.example.com"}, now).unknown)
	})

	t.Run("every event forgets the unknown keys", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		c.rememberMissing(acmeH, c.lookup(acmeH, now).epoch, now, time.Hour)
		require.True(t, c.lookup(acmeH, now).unknown)
		require.True(t, c.applyUpsert(beta, 1, 1))
		require.False(t, c.lookup(acmeH, now).unknown)
	})

	t.Run("a host the registry no longer knows loses its answer", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		c.remember(acmeH, acme, 1, 1)
		require.True(t, c.applyUpsert(acme, 2, 2))
		c.rememberMissing(acmeH, c.lookup(acmeH, now).epoch, now, time.Hour)
		require.Equal(t, lookup{unknown: true, epoch: 1}, c.lookup(acmeH, now))
	})

	t.Run("unknown keys are bounded", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		for i := range maxMissing + 10 {
			c.rememberMissing(key{kind: byHost, value: fmt.Sprintf("h%d.example.com", i)}, 0, now, time.Hour)
		}
		require.LessOrEqual(t, len(c.missing), maxMissing)
	})
}

func TestCacheWatch(t *testing.T) {
	t.Parallel()

	t.Run("a purge forgets the tenant by uid, slug and host", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		c.remember(acmeH, acme, 1, 1)
		require.True(t, c.applyPurge(acme, 2))
		require.Equal(t, lookup{epoch: 1}, c.lookup(acmeH, now))
		require.Equal(t, lookup{epoch: 1}, c.lookup(acmeS, now))
		require.Empty(t, c.tenants)
		require.Empty(t, c.hostsOf)
		require.False(t, c.applyPurge(acme, 2), "an event is applied once")
	})

	t.Run("a first snapshot reports what it lacks as gone, unless it is newer than the snapshot", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		c.remember(acmeS, acme, 3, 4)
		c.remember(key{kind: bySlug, value: "beta"}, beta, 12, 12)
		gone := c.replaceAll(nil, 10)
		require.Equal(t, []Tenant{acme}, gone)
		require.False(t, c.lookup(acmeS, now).fresh)
		require.True(t, c.lookup(key{kind: bySlug, value: "beta"}, now).fresh)
		require.EqualValues(t, 10, c.watchRevision())
	})

	t.Run("a snapshot after the registry lost its history replaces everything", func(t *testing.T) {
		t.Parallel()
		c := newCache()
		require.True(t, c.applyUpsert(acme, 20, 20))
		gone := c.replaceAll([]entry{{tenant: beta, revision: 2}}, 2)
		require.Equal(t, []Tenant{acme}, gone)
		require.True(t, c.lookup(key{kind: bySlug, value: "beta"}, now).fresh)
		require.EqualValues(t, 2, c.watchRevision())
		// Revisions of the new history apply.
		require.True(t, c.applyUpsert(suspended(beta), 3, 3))
		require.Equal(t, suspended(beta), c.lookup(key{kind: bySlug, value: "beta"}, now).tenant)
	})
}

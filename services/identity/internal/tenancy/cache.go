package tenancy

import (
	"sync"
	"time"
)

// maxMissing bounds the remembered unknown keys. Anyone can send a request
// for a made-up host, so without a bound a scan of random hosts would grow
// the cache without limit; past the bound, expired entries are swept, and if
// that is not enough all are forgotten (which only costs RPCs).
const maxMissing = 10_000

// keyKind says whether a key is a slug or a host.
type keyKind int

const (
	bySlug keyKind = iota
	byHost
)

// key is what a tenant is looked up by: a valid slug or a normalised host.
type key struct {
	kind  keyKind
	value string
}

// entry is a cached tenant with the registry revision of its last change,
// which tells a later version of the tenant from an earlier one.
type entry struct {
	tenant   Tenant
	revision int64
}

// hostAnswer is the tenant a host resolved to. A stale answer was given for
// an earlier version of the tenant, whose domains may have changed since: it
// is asked again, and only served when the registry cannot answer.
type hostAnswer struct {
	uid   string
	stale bool
}

// lookup is what the cache knows about one key.
type lookup struct {
	// tenant is the cached answer when fresh or stale is set.
	tenant Tenant
	// fresh means tenant is the answer, with no need to ask the registry.
	fresh bool
	// stale means tenant was the answer and is only to be served when the
	// registry cannot give a current one.
	stale bool
	// unknown means the registry recently said no tenant answers to the key.
	unknown bool
	// epoch is the cache's epoch when it was looked up; see rememberMissing.
	epoch uint64
}

// cache holds what the resolver knows. Every slug and host in it maps to a
// uid in tenants. It knows nothing of gRPC: the resolver converts.
type cache struct {
	mu      sync.RWMutex
	tenants map[string]entry               // uid → tenant
	slugs   map[string]string              // slug → uid
	hosts   map[string]hostAnswer          // normalised host → uid
	hostsOf map[string]map[string]struct{} // uid → its hosts in hosts
	missing map[key]time.Time              // unknown key → when to forget it
	// revision is the registry revision of the last change the watch
	// applied: where a resumed watch starts.
	revision int64
	// epoch counts the changes the watch applied. A "not found" is only
	// remembered if no change came while the registry was being asked,
	// since the change may be the very tenant that was missing.
	epoch uint64
}

// newCache returns an empty cache, which knows no tenant and has seen no
// change.
func newCache() *cache {
	return &cache{
		tenants: make(map[string]entry),
		slugs:   make(map[string]string),
		hosts:   make(map[string]hostAnswer),
		hostsOf: make(map[string]map[string]struct{}),
		missing: make(map[key]time.Time),
	}
}

// lookup returns what the cache knows about k at time now.
func (c *cache) lookup(k key, now time.Time) lookup {
	c.mu.RLock()
	defer c.mu.RUnlock()
	l := lookup{epoch: c.epoch}
	switch k.kind {
	case bySlug:
		if uid, ok := c.slugs[k.value]; ok {
			l.tenant, l.fresh = c.tenants[uid].tenant, true
			return l
		}
	case byHost:
		if a, ok := c.hosts[k.value]; ok {
			l.tenant, l.fresh, l.stale = c.tenants[a.uid].tenant, !a.stale, a.stale
			return l
		}
	}
	if until, ok := c.missing[k]; ok && now.Before(until) {
		l.unknown = true
	}
	return l
}

// remember records the registry's answer t for k. tenantRev is the revision
// of t's last change and answerRev the registry revision the answer was read
// at. An answer older than what the cache knows is not recorded: it may have
// been overtaken by an event the watch already applied.
func (c *cache) remember(k key, t Tenant, tenantRev, answerRev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, known := c.tenants[t.UID]
	switch {
	case known && tenantRev < cur.revision:
		return
	case !known && answerRev < c.revision:
		// The watch is past the answer and does not know the tenant, so it
		// may have been purged in between.
		return
	case !known || tenantRev > cur.revision:
		c.put(t, tenantRev)
	}
	delete(c.missing, k)
	if k.kind == byHost {
		c.setHost(k.value, t.UID)
	}
}

// rememberMissing records that no tenant answers to k, until now+ttl,
// unless the watch changed something since the lookup that gave epoch.
func (c *cache) rememberMissing(k key, epoch uint64, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if k.kind == byHost {
		if a, ok := c.hosts[k.value]; ok {
			c.dropHost(k.value, a.uid)
		}
	}
	if len(c.missing) >= maxMissing {
		for mk, until := range c.missing {
			if !now.Before(until) {
				delete(c.missing, mk)
			}
		}
		if len(c.missing) >= maxMissing {
			clear(c.missing)
		}
	}
	c.missing[k] = now.Add(ttl)
}

// applyUpsert applies a watch event that carries t's new state. It reports
// false for an event the cache has already applied.
func (c *cache) applyUpsert(t Tenant, tenantRev, eventRev int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if eventRev <= c.revision {
		return false
	}
	// An answer from a registry replica ahead of the watch may already have
	// brought this version, or a later one.
	if cur, ok := c.tenants[t.UID]; !ok || tenantRev > cur.revision {
		c.put(t, tenantRev)
	}
	c.changed(eventRev)
	return true
}

// applyPurge applies a watch event that says t is gone. It reports false for
// an event the cache has already applied.
func (c *cache) applyPurge(t Tenant, eventRev int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if eventRev <= c.revision {
		return false
	}
	c.forget(t.UID)
	c.changed(eventRev)
	return true
}

// replaceAll loads a snapshot of every tenant taken at revision rev and
// returns the cached tenants it shows to be gone.
//
// Normally the snapshot is at least as recent as the cache, and a tenant
// missing from it is gone, unless the cache learned of it from an answer
// more recent than the snapshot. A snapshot older than the watch's revision
// means the registry lost its history (its database was replaced): its
// revisions cannot be compared with the cache's, so the snapshot wins.
func (c *cache) replaceAll(snapshot []entry, rev int64) []Tenant {
	c.mu.Lock()
	defer c.mu.Unlock()
	reset := rev < c.revision
	inSnapshot := make(map[string]struct{}, len(snapshot))
	for _, e := range snapshot {
		inSnapshot[e.tenant.UID] = struct{}{}
	}
	var gone []Tenant
	for uid, cur := range c.tenants {
		if _, ok := inSnapshot[uid]; ok || !reset && cur.revision > rev {
			continue
		}
		c.forget(uid)
		gone = append(gone, cur.tenant)
	}
	for _, e := range snapshot {
		if cur, ok := c.tenants[e.tenant.UID]; !ok || reset || e.revision > cur.revision {
			c.put(e.tenant, e.revision)
		}
	}
	c.revision = rev
	c.epoch++
	clear(c.missing)
	return gone
}

// caughtUp records that the watch has seen every change up to rev.
func (c *cache) caughtUp(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revision = max(c.revision, rev)
}

// watchRevision returns the revision a resumed watch starts from.
func (c *cache) watchRevision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.revision
}

// size returns the number of cached tenants, for logs.
func (c *cache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.tenants)
}

// changed records that the watch applied the change at rev: any unknown key
// may now be known.
func (c *cache) changed(rev int64) {
	c.revision = rev
	c.epoch++
	clear(c.missing)
}

// put stores a new version of a tenant. Its host answers become stale,
// because its domains may be what changed.
func (c *cache) put(t Tenant, rev int64) {
	// A slug names one tenant at a time: a different tenant holding it here
	// was purged without the cache seeing it (no watch was running).
	if other, ok := c.slugs[t.Slug]; ok && other != t.UID {
		c.forget(other)
	}
	if old, ok := c.tenants[t.UID]; ok && old.tenant.Slug != t.Slug && c.slugs[old.tenant.Slug] == t.UID {
		delete(c.slugs, old.tenant.Slug)
	}
	c.tenants[t.UID] = entry{tenant: t, revision: rev}
	c.slugs[t.Slug] = t.UID
	for host := range c.hostsOf[t.UID] {
		c.hosts[host] = hostAnswer{uid: t.UID, stale: true}
	}
}

// forget removes a tenant and everything that leads to it.
func (c *cache) forget(uid string) {
	old, ok := c.tenants[uid]
	if !ok {
		return
	}
	delete(c.tenants, uid)
	if c.slugs[old.tenant.Slug] == uid {
		delete(c.slugs, old.tenant.Slug)
	}
	for host := range c.hostsOf[uid] {
		delete(c.hosts, host)
	}
	delete(c.hostsOf, uid)
}

// setHost records a fresh answer: host resolves to uid.
func (c *cache) setHost(host, uid string) {
	if a, ok := c.hosts[host]; ok && a.uid != uid {
		c.dropHost(host, a.uid)
	}
	c.hosts[host] = hostAnswer{uid: uid}
	hosts := c.hostsOf[uid]
	if hosts == nil {
		hosts = make(map[string]struct{})
		c.hostsOf[uid] = hosts
	}
	hosts[host] = struct{}{}
}

// dropHost removes the answer that host resolves to uid.
func (c *cache) dropHost(host, uid string) {
	delete(c.hosts, host)
	delete(c.hostsOf[uid], host)
	if len(c.hostsOf[uid]) == 0 {
		delete(c.hostsOf, uid)
	}
}

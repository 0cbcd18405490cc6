package tenancy

import (
	"strings"
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
// which tells a later version of the tenant from an earlier one, and the
// custom domains it had then (normalised by the registry).
type entry struct {
	tenant   Tenant
	revision int64
	domains  []string
}

// lookup is what the cache knows about one key.
type lookup struct {
	// tenant is the answer when found is set.
	tenant Tenant
	// found means tenant is the answer, with no need to ask the registry.
	found bool
	// unknown means no tenant answers to the key: the registry recently
	// said so.
	unknown bool
	// snapshotMiss means the cache holds every tenant (the watch's
	// snapshot) and none answers to the key. The registry is still asked,
	// so that a tenant created a moment ago (whose event is on its way)
	// works at once; if it cannot be asked, the snapshot's answer stands.
	snapshotMiss bool
	// epoch is the cache's epoch when it was looked up; see rememberMissing.
	epoch uint64
}

// cache holds what the resolver knows. It resolves hosts by the registry's
// own rules (a custom domain first, then "{slug}.{base domain}") from the
// tenants it holds, so a host needs no answer of its own: what changes a
// tenant's domains or state changes its hosts' answers in the same step.
// It knows nothing of gRPC: the resolver converts.
type cache struct {
	mu      sync.RWMutex
	tenants map[string]entry  // uid → tenant
	slugs   map[string]string // slug → uid
	// domains maps each custom domain to the uid of the tenant that has it.
	// A domain moves between tenants, and answers can be newer than the
	// watch, so two cached tenants may both list one domain for a while:
	// the version with the higher revision holds it, because at that
	// revision the other one did not.
	domains map[string]string
	// bases are the base domains under which "{slug}.{base}" resolves:
	// those the resolver was given, and those learnt from the registry's
	// answers.
	bases map[string]struct{}
	// basesComplete means bases holds every base domain of the registry
	// (the resolver was given them), so a host that resolves under none is
	// no tenant's.
	basesComplete bool
	// complete is set once a snapshot of every tenant is loaded: a key that
	// matches no cached tenant is then no tenant's (as of the watch).
	complete bool
	missing  map[key]time.Time // unknown key → when to forget it
	// revision is the registry revision of the last change the watch
	// applied: where a resumed watch starts.
	revision int64
	// epoch counts the changes the watch applied. A "not found" is only
	// remembered if no change came while the registry was being asked,
	// since the change may be the very tenant that was missing.
	epoch uint64
}

// newCache returns an empty cache, which knows no tenant and has seen no
// change. bases are the registry's base domains, normalised; nil means they
// are not known.
func newCache(bases []string) *cache {
	c := &cache{
		tenants:       make(map[string]entry),
		slugs:         make(map[string]string),
		domains:       make(map[string]string),
		bases:         make(map[string]struct{}, len(bases)),
		basesComplete: bases != nil,
		missing:       make(map[key]time.Time),
	}
	for _, b := range bases {
		c.bases[b] = struct{}{}
	}
	return c
}

// lookup returns what the cache knows about k at time now.
func (c *cache) lookup(k key, now time.Time) lookup {
	c.mu.RLock()
	defer c.mu.RUnlock()
	l := lookup{epoch: c.epoch}
	switch k.kind {
	case bySlug:
		if uid, ok := c.slugs[k.value]; ok {
			l.tenant, l.found = c.tenants[uid].tenant, true
			return l
		}
	case byHost:
		if uid, ok := c.hostOwner(k.value); ok {
			l.tenant, l.found = c.tenants[uid].tenant, true
			return l
		}
		if c.complete && !c.mayBeUnlearntSubdomain(k.value) {
			l.snapshotMiss = true
		}
	}
	if until, ok := c.missing[k]; ok && now.Before(until) {
		l.unknown = true
	}
	return l
}

// hostOwner returns the uid of the tenant a normalised host resolves to, by
// the registry's rules: a custom domain wins; otherwise "{slug}.{base}".
// A slug is a single DNS label, so only the base that is the host without
// its first label can match: one map lookup, however many bases there are.
func (c *cache) hostOwner(host string) (string, bool) {
	if uid, ok := c.domains[host]; ok {
		return uid, true
	}
	label, base, ok := strings.Cut(host, ".")
	if !ok {
		return "", false
	}
	if _, ok := c.bases[base]; !ok {
		return "", false
	}
	uid, ok := c.slugs[label]
	return uid, ok
}

// mayBeUnlearntSubdomain reports whether a host the cache does not resolve
// could still be "{slug}.{base}" of a cached tenant under a base domain the
// cache has not learnt. It never is when the cache has every base domain,
// nor when its first label is no tenant's slug.
func (c *cache) mayBeUnlearntSubdomain(host string) bool {
	if c.basesComplete {
		return false
	}
	label, _, ok := strings.Cut(host, ".")
	if !ok {
		return false
	}
	_, ok = c.slugs[label]
	return ok
}

// learnBase records that the registry resolves "{slug}.{base}": it answered
// such a host with MATCH_SUBDOMAIN. It reports whether base is new to a
// cache that was given every base domain, which means the registry and
// this service are not configured alike.
func (c *cache) learnBase(base string) (unexpected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.bases[base]; ok {
		return false
	}
	c.bases[base] = struct{}{}
	return c.basesComplete
}

// remember records the registry's answer e for k. answerRev is the registry
// revision the answer was read at. An answer older than what the cache
// knows is not recorded: it may have been overtaken by an event the watch
// already applied.
func (c *cache) remember(k key, e entry, answerRev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, known := c.tenants[e.tenant.UID]
	switch {
	case known && e.revision < cur.revision:
		return
	case !known && answerRev < c.revision:
		// The watch is past the answer and does not know the tenant, so it
		// may have been purged in between.
		return
	case !known || e.revision > cur.revision:
		c.put(e)
	}
	delete(c.missing, k)
}

// rememberMissing records that no tenant answers to k, until now+ttl,
// unless the watch changed something since the lookup that gave epoch.
func (c *cache) rememberMissing(k key, epoch uint64, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
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

// applyUpsert applies a watch event at eventRev that carries a tenant's new
// state. It reports false for an event the cache has already applied.
func (c *cache) applyUpsert(e entry, eventRev int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if eventRev <= c.revision {
		return false
	}
	// An answer from a registry replica ahead of the watch may already have
	// brought this version, or a later one.
	if cur, ok := c.tenants[e.tenant.UID]; !ok || e.revision > cur.revision {
		c.put(e)
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
// returns the cached tenants it shows to be gone. From then on the cache
// is complete: what it does not hold is no tenant.
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
	if reset {
		// Which version holds a domain is decided by revision, and the lost
		// history's revisions mean nothing now: start from the snapshot alone.
		clear(c.tenants)
		clear(c.slugs)
		clear(c.domains)
	}
	for _, e := range snapshot {
		if cur, ok := c.tenants[e.tenant.UID]; !ok || e.revision > cur.revision {
			c.put(e)
		}
	}
	c.revision = rev
	c.epoch++
	c.complete = true
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

// put stores a new version of a tenant, with its slug and custom domains.
func (c *cache) put(e entry) {
	uid := e.tenant.UID
	// A slug names one tenant at a time: a different tenant holding it here
	// was purged without the cache seeing it (no watch was running).
	if other, ok := c.slugs[e.tenant.Slug]; ok && other != uid {
		c.forget(other)
	}
	if old, ok := c.tenants[uid]; ok {
		if old.tenant.Slug != e.tenant.Slug && c.slugs[old.tenant.Slug] == uid {
			delete(c.slugs, old.tenant.Slug)
		}
		// Domains the new version still has are claimed again below.
		c.release(uid, old.domains)
	}
	c.tenants[uid] = e
	c.slugs[e.tenant.Slug] = uid
	for _, host := range e.domains {
		c.claim(host, uid, e.revision)
	}
}

// claim records that the version at rev of tenant uid has the custom
// domain host, unless a later version of another tenant has it.
func (c *cache) claim(host, uid string, rev int64) {
	if other, ok := c.domains[host]; ok && other != uid && c.tenants[other].revision > rev {
		return
	}
	c.domains[host] = uid
}

// release removes the custom domains hosts of tenant uid, where uid holds
// them.
func (c *cache) release(uid string, hosts []string) {
	for _, host := range hosts {
		if c.domains[host] == uid {
			delete(c.domains, host)
		}
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
	c.release(uid, old.domains)
}

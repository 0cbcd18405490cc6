package tenant

import (
	"strings"
	"sync"
)

// Match says how a tenant was resolved.
type Match int

// The ways a tenant can be found.
const (
	MatchDomain Match = iota + 1
	MatchSubdomain
	MatchSlug
	MatchUID
)

// Index is the in-memory view of every tenant that resolution is served
// from. It is fed, in revision order, by the registry's change log (Load,
// then Apply), so every replica converges on the same state without a
// database round trip per lookup. Subscribers receive every applied event.
type Index struct {
	baseDomains []string

	mu       sync.RWMutex
	revision int64
	byUID    map[string]*Tenant
	bySlug   map[string]*Tenant
	byHost   map[string]*Tenant
	// byPlacement counts the tenants of each placement, for choosing
	// where a new tenant goes without a scan.
	byPlacement map[string]int
	subs        map[*Subscription]struct{}
}

// NewIndex returns an empty index that resolves "{slug}.{base}" for each of
// the (normalised) base domains.
func NewIndex(baseDomains []string) *Index {
	return &Index{
		baseDomains: baseDomains,
		byUID:       map[string]*Tenant{},
		bySlug:      map[string]*Tenant{},
		byHost:      map[string]*Tenant{},
		byPlacement: map[string]int{},
		subs:        map[*Subscription]struct{}{},
	}
}

// BaseDomains returns the base domains under which slugs resolve.
func (x *Index) BaseDomains() []string { return x.baseDomains }

// Revision returns the revision of the last event applied.
func (x *Index) Revision() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.revision
}

// Len returns the number of tenants held.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byUID)
}

// PlacementCounts returns how many tenants (deleted ones until purged) each
// placement holds, by placement name; placements holding none are absent.
func (x *Index) PlacementCounts() map[string]int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	counts := make(map[string]int, len(x.byPlacement))
	for p, n := range x.byPlacement {
		counts[p] = n
	}
	return counts
}

// Load replaces the whole content with a snapshot taken at revision. Events
// at or below revision are ignored afterwards.
func (x *Index) Load(tenants []*Tenant, revision int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byUID = make(map[string]*Tenant, len(tenants))
	x.bySlug = make(map[string]*Tenant, len(tenants))
	x.byHost = make(map[string]*Tenant)
	x.byPlacement = make(map[string]int)
	for _, t := range tenants {
		x.put(t)
	}
	x.revision = revision
}

// Apply applies events in order, skipping those already applied, and hands
// them to subscribers. It returns the number of events applied.
func (x *Index) Apply(events []Event) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, ev := range events {
		if ev.Revision <= x.revision {
			continue
		}
		x.remove(ev.Tenant.UID)
		if ev.Kind == Upsert {
			x.put(ev.Tenant)
		}
		x.revision = ev.Revision
		n++
		for s := range x.subs {
			s.deliver(ev)
		}
	}
	return n
}

func (x *Index) put(t *Tenant) {
	x.byUID[t.UID] = t
	x.bySlug[t.Slug] = t
	x.byPlacement[t.Placement]++
	for _, d := range t.Domains {
		x.byHost[d.Host] = t
	}
}

func (x *Index) remove(uid string) {
	old, ok := x.byUID[uid]
	if !ok {
		return
	}
	delete(x.byUID, uid)
	if x.byPlacement[old.Placement]--; x.byPlacement[old.Placement] == 0 {
		delete(x.byPlacement, old.Placement)
	}
	if x.bySlug[old.Slug] == old {
		delete(x.bySlug, old.Slug)
	}
	for _, d := range old.Domains {
		if x.byHost[d.Host] == old {
			delete(x.byHost, d.Host)
		}
	}
}

// ByHost finds the tenant of a normalised host: a custom domain first, then
// "{slug}.{base domain}".
func (x *Index) ByHost(host string) (*Tenant, Match, int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if t, ok := x.byHost[host]; ok {
		return t, MatchDomain, x.revision, true
	}
	for _, base := range x.baseDomains {
		label, ok := strings.CutSuffix(host, "."+base)
		if !ok || strings.Contains(label, ".") {
			continue
		}
		if t, ok := x.bySlug[label]; ok {
			return t, MatchSubdomain, x.revision, true
		}
	}
	return nil, 0, x.revision, false
}

// BySlug finds a tenant by slug.
func (x *Index) BySlug(slug string) (*Tenant, int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t, ok := x.bySlug[slug]
	return t, x.revision, ok
}

// ByUID finds a tenant by uid.
func (x *Index) ByUID(uid string) (*Tenant, int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t, ok := x.byUID[uid]
	return t, x.revision, ok
}

// Subscribe registers a subscriber that receives every event applied from
// now on and returns, atomically with it, the revision the subscription
// starts after. With snapshot set it also returns every tenant as of that
// revision. A subscriber that falls more than buffer events behind is
// dropped: its channel is closed and Overflowed reports it.
func (x *Index) Subscribe(buffer int, snapshot bool) (*Subscription, []*Tenant, int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := &Subscription{index: x, ch: make(chan Event, buffer)}
	x.subs[s] = struct{}{}
	var all []*Tenant
	if snapshot {
		all = make([]*Tenant, 0, len(x.byUID))
		for _, t := range x.byUID {
			all = append(all, t)
		}
	}
	return s, all, x.revision
}

// Subscription is a live feed of applied events.
type Subscription struct {
	index      *Index
	ch         chan Event
	overflowed bool // guarded by index.mu
	closed     bool // guarded by index.mu
}

// Events returns the channel events arrive on. It is closed when the
// subscriber overflowed or was closed.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Overflowed reports whether the subscriber was dropped for falling behind.
func (s *Subscription) Overflowed() bool {
	s.index.mu.RLock()
	defer s.index.mu.RUnlock()
	return s.overflowed
}

// Close unregisters the subscriber.
func (s *Subscription) Close() {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.index.subs, s)
	close(s.ch)
}

// deliver runs with index.mu held for writing. It never blocks: a slow
// subscriber must not stall resolution for everyone.
func (s *Subscription) deliver(ev Event) {
	select {
	case s.ch <- ev:
	default:
		s.overflowed = true
		s.closeLocked()
	}
}

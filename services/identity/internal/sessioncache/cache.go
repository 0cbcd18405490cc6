// Package sessioncache remembers, per identity replica, which sessions were
// found open and which user they belong to, so that a call carrying an
// access token does not cost a database transaction every time.
//
// The cache is only trusted while it hears about every change: the tenant
// schemas' triggers announce each revoked session and each edited or
// deleted user on a PostgreSQL notification channel (see package store),
// and this replica's own transactions tell the cache as they commit. While
// the notification listener of some placement is down, the cache answers
// nothing and stores nothing; when it comes back, everything cached before
// is dropped, since announcements may have been missed. Entries also expire
// after MaxAge whatever happens, which bounds how stale a field that
// changes without an announcement (a user's last login time) can be.
//
// The cache also keeps each tenant's login configuration (its identity
// settings and sign-in providers: GetAuthConfig, the login page), which the
// same announcements keep current: a change of settings or providers
// announces the schema, and the entry goes.
//
// A load races with the announcements it could miss: the caller takes a
// Ticket before reading the database and Remember stores the result only
// if nothing was forgotten since. So a session revoked while another call
// was reading it is never cached as open.
package sessioncache

import (
	"sync"
	"sync/atomic"
	"time"

	"tenantry.dev/identity/internal/account"
)

// Defaults for Options.
const (
	DefaultMaxEntries = 100_000
	DefaultMaxAge     = 30 * time.Second
)

// Options tune a Cache.
type Options struct {
	// MaxEntries bounds the sessions (and as many users) kept; beyond it
	// some entries are dropped at random. Zero means DefaultMaxEntries.
	MaxEntries int
	// MaxAge is how long an entry is believed without being reloaded.
	// Zero means DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type sessionKey struct{ schema, id string }

type sessionEntry struct {
	session  *account.Session
	loadedAt time.Time
}

type userKey struct{ schema, id string }

type userEntry struct {
	user     *account.User
	loadedAt time.Time
}

type configEntry struct {
	config   account.AuthConfig
	loadedAt time.Time
}

// Cache is safe for concurrent use. The zero value is not usable: call New.
type Cache struct {
	opts Options

	mu       sync.Mutex
	sessions map[sessionKey]sessionEntry
	users    map[userKey]userEntry
	configs  map[string]configEntry // by schema
	// gen counts every forgetting; a Ticket taken before a change carries
	// an older value, and Remember refuses it.
	gen uint64
	// listeners says, per placement, whether its notification listener is
	// listening; the cache works only while all of them are.
	listeners map[string]bool
	online    bool

	// hits and misses count Lookup's answers, for metrics.
	hits, misses atomic.Uint64
}

// New returns a cache that is offline until every placement named has
// reported its listener online with SetOnline. With no placements it is
// online at once (for a single replica whose own commits are the only
// writers, as in tests of the account rules).
func New(placements []string, opts Options) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{
		opts:      opts,
		sessions:  map[sessionKey]sessionEntry{},
		users:     map[userKey]userEntry{},
		configs:   map[string]configEntry{},
		listeners: map[string]bool{},
	}
	for _, p := range placements {
		c.listeners[p] = false
	}
	c.online = len(placements) == 0
	return c
}

// Ticket returns the cache's current generation, to be taken before
// reading what Remember will store.
func (c *Cache) Ticket() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Lookup returns the cached session of a tenant schema and its user, both
// loaded less than MaxAge ago. The user is a copy the caller may keep.
func (c *Cache) Lookup(schema, sessionID string) (*account.Session, *account.User, bool) {
	s, u, ok := c.lookup(schema, sessionID)
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return s, u, ok
}

func (c *Cache) lookup(schema, sessionID string) (*account.Session, *account.User, bool) {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.online {
		return nil, nil, false
	}
	se, ok := c.sessions[sessionKey{schema, sessionID}]
	if !ok || now.Sub(se.loadedAt) >= c.opts.MaxAge {
		return nil, nil, false
	}
	ue, ok := c.users[userKey{schema, se.session.UserID}]
	if !ok || now.Sub(ue.loadedAt) >= c.opts.MaxAge {
		return nil, nil, false
	}
	u := *ue.user
	u.Roles = append([]string(nil), ue.user.Roles...)
	return se.session, &u, true
}

// Remember stores a session and its user as read from the database after
// the ticket was taken, unless something was forgotten since or the cache is
// offline. The password hash is not kept.
func (c *Cache) Remember(ticket uint64, schema string, s *account.Session, u *account.User) {
	if s == nil || u == nil || s.UserID != u.ID {
		return
	}
	now := c.opts.Now()
	sc := *s
	uc := *u
	uc.PasswordHash = ""
	uc.Roles = append([]string(nil), u.Roles...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.online || ticket != c.gen {
		return
	}
	if len(c.sessions) >= c.opts.MaxEntries {
		c.shrinkLocked()
	}
	c.sessions[sessionKey{schema, s.ID}] = sessionEntry{session: &sc, loadedAt: now}
	c.users[userKey{schema, u.ID}] = userEntry{user: &uc, loadedAt: now}
}

// shrinkLocked drops about a tenth of the entries; Go's map iteration
// order makes the choice random enough that no caller can pin entries.
func (c *Cache) shrinkLocked() {
	drop := max(len(c.sessions)/10, 1)
	for k := range c.sessions {
		delete(c.sessions, k)
		if drop--; drop == 0 {
			break
		}
	}
	if len(c.users) > c.opts.MaxEntries {
		drop = max(len(c.users)/10, 1)
		for k := range c.users {
			delete(c.users, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
}

// ForgetSession drops a session (revoked, or its expiry shortened).
func (c *Cache) ForgetSession(schema, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.sessions, sessionKey{schema, id})
}

// ForgetUser drops a user (edited, disabled or deleted); their sessions are
// reloaded on next use.
func (c *Cache) ForgetUser(schema, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.users, userKey{schema, id})
}

// LookupConfig returns a tenant schema's login configuration loaded less
// than MaxAge ago. Its providers are shared: callers must not change them.
func (c *Cache) LookupConfig(schema string) (account.AuthConfig, bool) {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.configs[schema]
	if !c.online || !ok || now.Sub(e.loadedAt) >= c.opts.MaxAge {
		return account.AuthConfig{}, false
	}
	return e.config, true
}

// RememberConfig stores a tenant schema's login configuration as read after
// the ticket was taken, unless something was forgotten since or the cache
// is offline.
func (c *Cache) RememberConfig(ticket uint64, schema string, cfg account.AuthConfig) {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.online || ticket != c.gen {
		return
	}
	if len(c.configs) >= c.opts.MaxEntries {
		clear(c.configs)
	}
	c.configs[schema] = configEntry{config: cfg, loadedAt: now}
}

// ForgetConfig drops a tenant schema's login configuration (its settings
// or providers changed).
func (c *Cache) ForgetConfig(schema string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.configs, schema)
}

// ForgetTenant drops everything of a tenant schema (the tenant was purged).
func (c *Cache) ForgetTenant(schema string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.configs, schema)
	for k := range c.sessions {
		if k.schema == schema {
			delete(c.sessions, k)
		}
	}
	for k := range c.users {
		if k.schema == schema {
			delete(c.users, k)
		}
	}
}

// Reset drops everything.
func (c *Cache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

func (c *Cache) resetLocked() {
	c.gen++
	clear(c.sessions)
	clear(c.users)
	clear(c.configs)
}

// SetOnline records whether a placement's listener is listening. Going
// offline or coming back online drops everything: announcements may have
// been missed in between.
func (c *Cache) SetOnline(placement string, listening bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners[placement] = listening
	c.resetLocked()
	c.online = true
	for _, ok := range c.listeners {
		c.online = c.online && ok
	}
}

// Online reports whether the cache is in use.
func (c *Cache) Online() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.online
}

// Len returns the number of cached sessions and users.
func (c *Cache) Len() (sessions, users int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions), len(c.users)
}

// Stats are a cache's counts, for metrics.
type Stats struct {
	// Hits and Misses count Lookup's answers since the cache was made: a
	// miss (not cached, too old, or the cache offline) costs the caller a
	// database read.
	Hits, Misses uint64
	// Sessions and Users are the entries held now.
	Sessions, Users int
	// Online says whether the cache is in use (see SetOnline).
	Online bool
}

// Stats returns the cache's counts.
func (c *Cache) Stats() Stats {
	st := Stats{Hits: c.hits.Load(), Misses: c.misses.Load()}
	c.mu.Lock()
	defer c.mu.Unlock()
	st.Sessions, st.Users, st.Online = len(c.sessions), len(c.users), c.online
	return st
}

package token

import (
	"strings"
	"sync"
)

// verifiedCacheSize bounds the tokens remembered as genuine: at most about
// this many, a few hundred bytes each.
const verifiedCacheSize = 20_000

// verifiedCache remembers tokens whose signature checked out, so that a
// token presented again (every call of a session, for its lifetime) costs a
// map lookup instead of an ed25519 verification. Only genuine tokens get
// in, so a flood of forgeries cannot push anything out. Everything that
// can change about a genuine token's acceptability, its age and its key
// being published, is checked again on every hit.
//
// Two generations make a cheap LRU: entries live in cur; when cur is full
// it becomes old, and a hit in old moves the entry back to cur.
type verifiedCache struct {
	mu       sync.Mutex
	cur, old map[string]verifiedToken
	max      int
}

type verifiedToken struct {
	claims *accessClaims
	kid    string
	// tenantUID is the canonical form of the claims' tuid: the tenant
	// whose keys kid is looked up among.
	tenantUID string
}

func newVerifiedCache(size int) *verifiedCache {
	return &verifiedCache{cur: map[string]verifiedToken{}, max: max(size/2, 1)}
}

func (c *verifiedCache) get(token string) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[token]; ok {
		return v, true
	}
	v, ok := c.old[token]
	if ok {
		delete(c.old, token)
		c.putLocked(token, v)
	}
	return v, ok
}

func (c *verifiedCache) put(token string, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The token may be a slice of a larger request buffer: keep a copy.
	c.putLocked(strings.Clone(token), v)
}

func (c *verifiedCache) putLocked(token string, v verifiedToken) {
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[string]verifiedToken, c.max)
	}
	c.cur[token] = v
}

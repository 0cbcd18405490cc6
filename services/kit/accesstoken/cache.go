package accesstoken

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
)

// maxVerifiedTokens bounds the tokens a Verifier remembers: about 300
// bytes each, so a few MB at most. Only tokens identity signed get in,
// yet a service with more users than this still must not grow without
// bound; past it, the oldest cost is one more signature check.
const maxVerifiedTokens = 10_000

// verifiedTokens remembers the claims of tokens whose signature and claims
// were checked, by the SHA-256 of the token's text (so the cache holds no
// bearer token), each until its exp and only while the key set it was
// checked with is the one held: a new fetch of identity's keys, which may
// have dropped a key, makes every token be checked again. It is safe for
// concurrent use.
type verifiedTokens struct {
	max int

	// hits and misses count Verify's answers from the cache and the
	// signatures it checked instead (the first token of a tenant's keys
	// too), for metrics.
	hits, misses atomic.Uint64

	mu      sync.Mutex
	entries map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	claims Claims
	keys   *keySet // the key set the signature was checked with
}

func newVerifiedTokens(max int) *verifiedTokens {
	return &verifiedTokens{max: max, entries: map[[sha256.Size]byte]verifiedToken{}}
}

// get returns the claims of the token with digest if it was verified with
// keys and its exp is after now. The claims' Roles are shared: the caller
// copies them before handing them out.
func (c *verifiedTokens) get(digest [sha256.Size]byte, keys *keySet, now time.Time) (Claims, bool) {
	c.mu.Lock()
	e, ok := c.entries[digest]
	c.mu.Unlock()
	if !ok || e.keys != keys || !now.Before(e.claims.ExpiresAt) {
		return Claims{}, false
	}
	return e.claims, true
}

// put remembers claims, checked with keys, under digest, unless the token
// has expired already (Leeway may still accept it: it is then checked in
// full every time). When the cache is full, expired entries and those of
// older key sets go first, then arbitrary ones, down to three quarters of
// the bound, so that the sweep's cost is shared by many puts.
func (c *verifiedTokens) put(digest [sha256.Size]byte, claims Claims, keys *keySet, now time.Time) {
	if keys == nil || !now.Before(claims.ExpiresAt) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[digest]; !ok && len(c.entries) >= c.max {
		for d, e := range c.entries {
			if e.keys != keys || !now.Before(e.claims.ExpiresAt) {
				delete(c.entries, d)
			}
		}
		for d := range c.entries { // map order: arbitrary
			if len(c.entries) < c.max*3/4 {
				break
			}
			delete(c.entries, d)
		}
	}
	c.entries[digest] = verifiedToken{claims: claims, keys: keys}
}

// len reports how many tokens are remembered.
func (c *verifiedTokens) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

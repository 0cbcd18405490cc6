package ratelimit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"regexp"
)

// plainTenant is a tenant part kept readable in keys: a slug, so that an
// operator can see which tenant a row belongs to. Anything else is hashed.
// Slugs are at most 63 characters and a hash is 64, so a hashed tenant can
// never be mistaken for a readable one.
var plainTenant = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// key returns the storage key of a limit for a scope:
// "<name>:<tenant>:<scope hash>", or shorter when parts are missing. The
// scope parts are hashed together so the table never holds what a client
// typed or where it came from; each part is length-prefixed before hashing
// so ("ab", "c") and ("a", "bc") stay distinct.
func key(name string, parts []string) string {
	k := name
	if len(parts) == 0 {
		return k
	}
	if tenant := parts[0]; plainTenant.MatchString(tenant) {
		k += ":" + tenant
	} else {
		k += ":" + digest([]string{tenant})
	}
	if len(parts) > 1 {
		k += ":" + digest(parts[1:])
	}
	return k
}

// digest returns the hex SHA-256 of parts, each prefixed by its length.
func digest(parts []string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// lockSpace is mixed into advisory lock ids so that they are unlikely to
// collide with advisory locks other code takes on the same database; a
// collision would only make unrelated callers wait for each other.
const lockSpace = "tenantry_identity.rate_limits\x00"

// lockID returns the advisory lock id that every writer of key holds. It is
// part of the storage format: replicas that derived it differently would not
// exclude each other.
func lockID(key string) int64 {
	sum := sha256.Sum256([]byte(lockSpace + key))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

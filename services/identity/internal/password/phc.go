package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrInvalidHash is returned, wrapped with the detail, when a stored hash
// is not an argon2id hash in the PHC string format this package writes, or
// its parameters are beyond the limits. A stored hash comes from our own
// database, so this means corrupt data or a hash from another system: an
// internal error, never the user's fault.
var ErrInvalidHash = errors.New("password: invalid stored hash")

// maxEncodedLen bounds the stored string before any parsing. The longest
// valid string is about 200 bytes; anything much longer is not ours.
const maxEncodedLen = 512

// phcPrefix is the algorithm and version this package writes and accepts.
// Argon2 version 0x13 (19) is the only one x/crypto implements; the older
// 0x10 computes different hashes, so a v=16 string could never verify.
var phcPrefix = "$argon2id$v=" + strconv.Itoa(argon2.Version) + "$"

// b64 is the base64 variant of the PHC format: standard alphabet, no
// padding. Strict rejects non-zero trailing bits, so that one hash has one
// spelling.
var b64 = base64.RawStdEncoding.Strict()

// phc is a parsed argon2id hash string.
type phc struct {
	params Params
	salt   []byte
	key    []byte
}

// encodePHC spells a hash as a PHC string.
func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s",
		phcPrefix, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC parses a PHC string strictly: only argon2id version 19, only the
// parameters m, t and p in that order, and only the canonical spelling
// that encodePHC produces. Strictness costs nothing for hashes we wrote
// and keeps odd inputs (leading zeros, line breaks that base64 would skip)
// from reaching argon2. It never panics and does no expensive work, so it
// can run before a hashing slot is taken.
func parsePHC(encoded string) (phc, error) {
	if len(encoded) > maxEncodedLen {
		return phc{}, fmt.Errorf("%w: %d bytes long", ErrInvalidHash, len(encoded))
	}
	rest, ok := strings.CutPrefix(encoded, phcPrefix)
	if !ok {
		return phc{}, fmt.Errorf("%w: not an argon2id version %d hash", ErrInvalidHash, argon2.Version)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return phc{}, fmt.Errorf("%w: want parameters, salt and hash, got %d fields", ErrInvalidHash, len(fields))
	}

	var h phc
	params := strings.Split(fields[0], ",")
	if len(params) != 3 {
		return phc{}, fmt.Errorf("%w: want parameters m, t and p, got %d", ErrInvalidHash, len(params))
	}
	memory, err := parseParam(params[0], "m", MaxMemory)
	if err != nil {
		return phc{}, err
	}
	passes, err := parseParam(params[1], "t", MaxTime)
	if err != nil {
		return phc{}, err
	}
	threads, err := parseParam(params[2], "p", 255)
	if err != nil {
		return phc{}, err
	}
	// Argon2 needs at least one pass, one lane and 8 KiB per lane; x/crypto
	// panics on the first two.
	if passes < 1 || threads < 1 || memory < 8*threads {
		return phc{}, fmt.Errorf("%w: parameters m=%d,t=%d,p=%d are below argon2's minimum", ErrInvalidHash, memory, passes, threads)
	}
	h.params.Memory, h.params.Time, h.params.Threads = memory, passes, uint8(threads)

	if h.salt, err = b64.DecodeString(fields[1]); err != nil {
		return phc{}, fmt.Errorf("%w: salt is not base64: %v", ErrInvalidHash, err)
	}
	if len(h.salt) < minStoredSaltLen || len(h.salt) > MaxSaltLen {
		return phc{}, fmt.Errorf("%w: salt must be %d to %d bytes, not %d", ErrInvalidHash, minStoredSaltLen, MaxSaltLen, len(h.salt))
	}
	if h.key, err = b64.DecodeString(fields[2]); err != nil {
		return phc{}, fmt.Errorf("%w: hash is not base64: %v", ErrInvalidHash, err)
	}
	if len(h.key) < minStoredKeyLen || len(h.key) > MaxKeyLen {
		return phc{}, fmt.Errorf("%w: hash must be %d to %d bytes, not %d", ErrInvalidHash, minStoredKeyLen, MaxKeyLen, len(h.key))
	}
	h.params.SaltLen, h.params.KeyLen = uint32(len(h.salt)), uint32(len(h.key))

	// The checks above let through spellings that decode to the same
	// values (base64 skips line breaks, for one); comparing with the
	// canonical spelling catches them all.
	if encodePHC(h.params, h.salt, h.key) != encoded {
		return phc{}, fmt.Errorf("%w: not in canonical form", ErrInvalidHash)
	}
	return h, nil
}

// parseParam parses one "name=value" parameter whose value is a decimal
// number of at most limit.
func parseParam(s, name string, limit uint32) (uint32, error) {
	value, ok := strings.CutPrefix(s, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: want parameter %s", ErrInvalidHash, name)
	}
	// ParseUint accepts leading zeros and the canonical check would catch
	// them later, but an explicit rule gives a clearer message.
	if len(value) > 1 && value[0] == '0' {
		return 0, fmt.Errorf("%w: parameter %s has leading zeros", ErrInvalidHash, name)
	}
	n, err := strconv.ParseUint(value, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: parameter %s is not a number", ErrInvalidHash, name)
	}
	if n > uint64(limit) {
		return 0, fmt.Errorf("%w: parameter %s=%d is above the limit of %d", ErrInvalidHash, name, n, limit)
	}
	return uint32(n), nil
}

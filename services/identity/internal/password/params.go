package password

import (
	"errors"
	"fmt"
)

// Params are the argon2id cost parameters of a hash. They are stored in
// every hash, so a hash stays verifiable after the defaults change.
type Params struct {
	// Memory is the memory one hash uses, in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism (lanes) of one hash.
	Threads uint8
	// SaltLen is the length of the random salt, in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived hash, in bytes.
	KeyLen uint32
}

// DefaultParams are OWASP's minimum recommendation for argon2id: 19 MiB of
// memory, 2 passes, 1 lane (OWASP Password Storage Cheat Sheet, section
// "Argon2id", https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html),
// with the 16-byte salt and 32-byte hash that RFC 9106 recommends.
//
// They are also the floor: Validate refuses anything weaker. There is
// deliberately no way to hash with cheaper parameters, not even for tests:
// a switch that exists for tests can be turned on in production by a
// configuration mistake, and one hash at these parameters costs tens of
// milliseconds, which tests can afford.
var DefaultParams = Params{Memory: minMemory, Time: minTime, Threads: minThreads, SaltLen: minSaltLen, KeyLen: minKeyLen}

// The floor that Validate enforces, kept apart from DefaultParams so that
// changing the variable cannot lower it.
const (
	minMemory  = 19 * 1024
	minTime    = 2
	minThreads = 1
	minSaltLen = 16
	minKeyLen  = 32
)

// Limits on the parameters this package hashes with or reads from a stored
// hash. The upper limits exist because stored hashes are input too: a hash
// string written by an attacker, or by a broken migration, must not make
// one Verify allocate gigabytes or run for minutes.
const (
	// MaxMemory is the most memory one hash may use, in KiB (1 GiB).
	MaxMemory = 1 << 20
	// MaxTime is the most passes one hash may make.
	MaxTime = 20
	// MaxSaltLen is the longest salt accepted, in bytes.
	MaxSaltLen = 64
	// MaxKeyLen is the longest hash accepted, in bytes.
	MaxKeyLen = 64

	// minStoredSaltLen and minStoredKeyLen are the shortest salt and hash
	// accepted in a stored hash. They are below the floor for new hashes so
	// that hashes imported from another system still verify (and are then
	// re-hashed), but not so short that a match would mean little.
	minStoredSaltLen = 8
	minStoredKeyLen  = 16
)

// Validate reports every way in which p is weaker than DefaultParams or
// beyond the limits above, one error per problem, so that a configuration
// mistake is found at start-up rather than in a breach.
func (p Params) Validate() error {
	var errs []error
	if p.Memory < minMemory || p.Memory > MaxMemory {
		errs = append(errs, fmt.Errorf("password: argon2id memory must be between %d and %d KiB, not %d", minMemory, MaxMemory, p.Memory))
	}
	if p.Time < minTime || p.Time > MaxTime {
		errs = append(errs, fmt.Errorf("password: argon2id time must be between %d and %d passes, not %d", minTime, MaxTime, p.Time))
	}
	if p.Threads < minThreads {
		errs = append(errs, fmt.Errorf("password: argon2id threads must be at least %d, not %d", minThreads, p.Threads))
	}
	if p.SaltLen < minSaltLen || p.SaltLen > MaxSaltLen {
		errs = append(errs, fmt.Errorf("password: salt length must be between %d and %d bytes, not %d", minSaltLen, MaxSaltLen, p.SaltLen))
	}
	if p.KeyLen < minKeyLen || p.KeyLen > MaxKeyLen {
		errs = append(errs, fmt.Errorf("password: hash length must be between %d and %d bytes, not %d", minKeyLen, MaxKeyLen, p.KeyLen))
	}
	return errors.Join(errs...)
}

// ServiceGOGC is the GOGC identity runs with unless GOGC is set. Each
// password check allocates argon2id's 19 MiB, garbage the moment the check
// ends; with identity's small live heap, Go's default target of twice that
// heap made nearly every login start a GC cycle and fault the memory the
// GC had handed back to the kernel in again (2-3 ms of CPU per login,
// measured by make bench). At 400 several logins share a cycle, for a heap
// of up to about five times the live one (some 200 MiB under a login
// flood). identity-bench hashes at the same setting for its baseline.
const ServiceGOGC = 400

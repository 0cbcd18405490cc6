package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Hasher hashes and verifies passwords with argon2id, running at most a
// fixed number of hashes at once. It is safe for concurrent use.
type Hasher struct {
	params Params
	// slots is a semaphore: a hash runs while it holds one of its buffer
	// places. Memory per hash is fixed by the parameters, so bounding the
	// number of hashes bounds the memory they use.
	slots    chan struct{}
	inFlight atomic.Int64
	waiting  atomic.Int64
	// dummy is a hash string with the current parameters that no password
	// matches; VerifyNothing verifies against it.
	dummy string
}

// NewHasher returns a Hasher that hashes with p and runs at most
// maxConcurrent hashes at once. A maxConcurrent of zero or less means
// GOMAXPROCS: argon2id with one lane keeps one CPU busy, so more hashes at
// once would only share the CPUs while holding more memory. (With Threads
// above 1 each hash uses that many CPUs, and a lower limit fits better.)
func NewHasher(p Params, maxConcurrent int) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	// The dummy's salt and hash are random bytes rather than the hash of
	// some password: VerifyNothing must do the same work as Verify, and the
	// work depends only on the parameters and lengths, not on whether the
	// stored bytes came out of argon2. This also saves a hash at start-up.
	salt := make([]byte, p.SaltLen)
	key := make([]byte, p.KeyLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("password: reading random salt: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("password: reading random bytes: %w", err)
	}
	return &Hasher{
		params: p,
		slots:  make(chan struct{}, maxConcurrent),
		dummy:  encodePHC(p, salt, key),
	}, nil
}

// Params returns the parameters the hasher hashes with.
func (h *Hasher) Params() Params { return h.params }

// InFlight returns the number of hashes running now, for metrics.
func (h *Hasher) InFlight() int { return int(h.inFlight.Load()) }

// Waiting returns the number of calls waiting for their turn to hash, for
// metrics. A queue that keeps growing means more logins than the CPUs can
// hash, and the callers' deadlines are what sheds the excess.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// Hash returns the PHC string of password hashed with a new random salt.
// It waits for a free slot first and returns the context's error, wrapped,
// if ctx ends while waiting. Once started, a hash runs to completion:
// argon2 cannot be interrupted, and it takes milliseconds.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading random salt: %w", err)
	}
	key, err := h.derive(ctx, password, h.params, salt)
	if err != nil {
		return "", err
	}
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded,
// recomputing the hash with the parameters stored in encoded.
//
// needsRehash is true when the password matches and the stored parameters
// differ from the hasher's: the caller should then store Hash(password),
// which it can do only now, while it has the password. It is never true for
// a wrong password, so that no caller replaces a hash with the hash of a
// wrong guess.
//
// A malformed or unsupported encoded returns an error wrapping
// ErrInvalidHash before any hashing; a context that ends while waiting for
// a slot returns the context's error, wrapped.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	stored, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	key, err := h.derive(ctx, password, stored.params, stored.salt)
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(key, stored.key) != 1 {
		return false, false, nil
	}
	return true, stored.params != h.params, nil
}

// VerifyNothing does the work of a Verify that fails, against a hash with
// the hasher's current parameters. Login calls it when no account has the
// given email, so that the answer takes as long as for an account that
// exists and an attacker cannot tell registered emails from the time taken.
// It returns an error only if ctx ends while waiting for a slot.
func (h *Hasher) VerifyNothing(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, h.dummy, password)
	return err
}

// derive computes the argon2id key of password with p and salt, holding a
// slot for the duration.
func (h *Hasher) derive(ctx context.Context, password string, p Params, salt []byte) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// acquire takes a hashing slot, waiting until one is free or ctx ends.
func (h *Hasher) acquire(ctx context.Context) error {
	// An abandoned request must not start a hash even when a slot is
	// free: select would pick between a free slot and a done context at
	// random.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("password: not hashing: %w", err)
	}
	select {
	case h.slots <- struct{}{}:
		h.inFlight.Add(1)
		return nil
	default:
	}
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		h.inFlight.Add(1)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("password: waiting for a hashing slot: %w", ctx.Err())
	}
}

// release gives back the slot taken by acquire.
func (h *Hasher) release() {
	h.inFlight.Add(-1)
	<-h.slots
}

package password

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hangGuard bounds how long a test waits for something that should happen
// at once, so that a bug fails the test instead of hanging it. It is a
// deadline, not a timing assertion: nothing here is expected to take long.
const hangGuard = 30 * time.Second

// result is what a Hash call run in the background returned.
type result struct {
	encoded string
	err     error
}

// hashInBackground runs h.Hash in a goroutine and returns where its result
// will arrive.
func hashInBackground(ctx context.Context, h *Hasher, password string) <-chan result {
	done := make(chan result, 1)
	go func() {
		encoded, err := h.Hash(ctx, password)
		done <- result{encoded, err}
	}()
	return done
}

// receive returns the result from done, failing the test if none arrives
// before the hang guard.
func receive(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(hangGuard):
		t.Fatal("the hash neither finished nor gave up")
		return result{}
	}
}

// requireWaiting waits until n calls are waiting for a slot.
func requireWaiting(t *testing.T, h *Hasher, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return h.Waiting() == n }, hangGuard, time.Millisecond,
		"want %d calls waiting for a slot", n)
}

func TestHasherLimitsConcurrentHashes(t *testing.T) {
	t.Parallel()

	// Each case holds the hasher's only slot itself, through acquire, so
	// that the slot is taken for exactly as long as the test says rather
	// than for as long as some hash happens to run.
	t.Run("a hash waits while the only slot is taken and gives up when its context is cancelled", func(t *testing.T) {
		t.Parallel()
		h, err := NewHasher(DefaultParams, 1)
		require.NoError(t, err)
		require.NoError(t, h.acquire(context.Background()))
		defer h.release()

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := hashInBackground(ctx, h, "correct horse battery staple")
		requireWaiting(t, h, 1)
		require.Equal(t, 1, h.InFlight(), "only the slot's holder is in flight")

		cancel()
		r := receive(t, done)
		require.ErrorIs(t, r.err, context.Canceled)
		require.Empty(t, r.encoded)
		require.Zero(t, h.Waiting(), "a call that gave up no longer counts as waiting")
		require.Equal(t, 1, h.InFlight())
	})

	t.Run("a hash waiting past its deadline returns the deadline error", func(t *testing.T) {
		t.Parallel()
		h, err := NewHasher(DefaultParams, 1)
		require.NoError(t, err)
		require.NoError(t, h.acquire(context.Background()))
		defer h.release()

		// The deadline is the event under test, not a guess at how long
		// something takes: the slot stays taken until after it passes.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		r := receive(t, hashInBackground(ctx, h, "correct horse battery staple"))
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
	})

	t.Run("a waiting hash runs once the slot is released", func(t *testing.T) {
		t.Parallel()
		h, err := NewHasher(DefaultParams, 1)
		require.NoError(t, err)
		require.NoError(t, h.acquire(context.Background()))

		done := hashInBackground(context.Background(), h, "correct horse battery staple")
		requireWaiting(t, h, 1)
		h.release()

		r := receive(t, done)
		require.NoError(t, r.err)
		ok, _, err := h.Verify(context.Background(), r.encoded, "correct horse battery staple")
		require.NoError(t, err)
		require.True(t, ok)
		require.Zero(t, h.InFlight())
		require.Zero(t, h.Waiting())
	})

	t.Run("verifying waits for a slot like hashing", func(t *testing.T) {
		t.Parallel()
		h, err := NewHasher(DefaultParams, 1)
		require.NoError(t, err)
		require.NoError(t, h.acquire(context.Background()))
		defer h.release()

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.VerifyNothing(ctx, "correct horse battery staple") }()
		requireWaiting(t, h, 1)
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(hangGuard):
			t.Fatal("the verification neither finished nor gave up")
		}
	})

	t.Run("hashes beyond the limit wait while earlier ones hold every slot", func(t *testing.T) {
		t.Parallel()
		const limit = 3
		h, err := NewHasher(DefaultParams, limit)
		require.NoError(t, err)
		for range limit {
			require.NoError(t, h.acquire(context.Background()))
		}

		done := hashInBackground(context.Background(), h, "correct horse battery staple")
		requireWaiting(t, h, 1)
		require.Equal(t, limit, h.InFlight())

		for range limit {
			h.release()
		}
		require.NoError(t, receive(t, done).err)
		require.Zero(t, h.InFlight())
	})

	t.Run("the default limit is GOMAXPROCS", func(t *testing.T) {
		t.Parallel()
		h, err := NewHasher(DefaultParams, 0)
		require.NoError(t, err)
		require.Equal(t, runtime.GOMAXPROCS(0), cap(h.slots))
	})
}

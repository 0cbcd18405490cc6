package password_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/password"
)

// newHasher returns a hasher with params, failing the test on error.
func newHasher(tb testing.TB, params password.Params, maxConcurrent int) *password.Hasher {
	tb.Helper()
	h, err := password.NewHasher(params, maxConcurrent)
	require.NoError(tb, err)
	return h
}

func TestNewHasher(t *testing.T) {
	t.Parallel()

	t.Run("weak parameters are refused", func(t *testing.T) {
		t.Parallel()
		weak := password.DefaultParams
		weak.Memory = 1024
		_, err := password.NewHasher(weak, 1)
		require.ErrorContains(t, err, "memory")
	})
	t.Run("a hasher reports the parameters it hashes with", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, password.DefaultParams, newHasher(t, password.DefaultParams, 0).Params())
	})
	t.Run("a new hasher has nothing in flight or waiting", func(t *testing.T) {
		t.Parallel()
		h := newHasher(t, password.DefaultParams, 0)
		require.Zero(t, h.InFlight())
		require.Zero(t, h.Waiting())
	})
}

// phcPattern is the shape of a hash with DefaultParams: PHC format, raw
// standard base64 of 16 bytes of salt and 32 of hash.
var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashAndVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 0)

	cases := []struct {
		name     string
		password string
	}{
		{name: "an ASCII password round-trips", password: "correct horse battery staple"},
		{name: "a Unicode password round-trips", password: "пароль-надёжный-✓-パスワード"},
		{name: "an empty password round-trips", password: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			encoded, err := h.Hash(ctx, tc.password)
			require.NoError(t, err)
			require.Regexp(t, phcPattern, encoded)

			ok, needsRehash, err := h.Verify(ctx, encoded, tc.password)
			require.NoError(t, err)
			require.True(t, ok, "the right password verifies")
			require.False(t, needsRehash, "a hash with the current parameters needs no rehash")

			ok, needsRehash, err = h.Verify(ctx, encoded, tc.password+"x")
			require.NoError(t, err)
			require.False(t, ok, "a wrong password does not verify")
			require.False(t, needsRehash, "a wrong password never asks for a rehash")
		})
	}

	t.Run("the same password hashes differently each time", func(t *testing.T) {
		t.Parallel()
		first, err := h.Hash(ctx, "same password twice")
		require.NoError(t, err)
		second, err := h.Hash(ctx, "same password twice")
		require.NoError(t, err)
		require.NotEqual(t, first, second)
	})
	t.Run("a hash made elsewhere with the same password verifies", func(t *testing.T) {
		t.Parallel()
		// The argon2id known answer of the reference implementation
		// (phc-winner-argon2, src/test.c): password "password", salt
		// "somesalt", 64 MiB, 2 passes, 1 lane. Its parameters differ from
		// ours, so it asks for a rehash.
		const encoded = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
		ok, needsRehash, err := h.Verify(ctx, encoded, "password")
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, needsRehash)

		ok, _, err = h.Verify(ctx, encoded, "sassword")
		require.NoError(t, err)
		require.False(t, ok)
	})
}

func TestVerifyAsksForRehashWhenParametersChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	old := newHasher(t, password.DefaultParams, 0)
	encoded, err := old.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)

	change := func(change func(*password.Params)) password.Params {
		p := password.DefaultParams
		change(&p)
		return p
	}
	cases := []struct {
		name   string
		params password.Params
	}{
		{name: "more passes ask for a rehash", params: change(func(p *password.Params) { p.Time = 3 })},
		{name: "more memory asks for a rehash", params: change(func(p *password.Params) { p.Memory = 20 * 1024 })},
		{name: "more threads ask for a rehash", params: change(func(p *password.Params) { p.Threads = 2 })},
		{name: "a longer salt asks for a rehash", params: change(func(p *password.Params) { p.SaltLen = 32 })},
		{name: "a longer hash asks for a rehash", params: change(func(p *password.Params) { p.KeyLen = 64 })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			current := newHasher(t, tc.params, 0)
			ok, needsRehash, err := current.Verify(ctx, encoded, "correct horse battery staple")
			require.NoError(t, err)
			require.True(t, ok, "the stored parameters, not the current ones, verify the hash")
			require.True(t, needsRehash)
		})
	}
}

func TestVerifyRefusesMalformedHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHasher(t, password.DefaultParams, 0)
	good, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)

	// Each case breaks a real hash the way corrupt or hostile database
	// content might; the parser's own tests cover the details.
	cases := []struct {
		name    string
		encoded string
	}{
		{name: "bad base64 is an error", encoded: good[:len(good)-1] + "!"},
		{name: "argon2i is an error", encoded: "$argon2i" + good[len("$argon2id"):]},
		{name: "a missing hash is an error", encoded: good[:len(good)-44]},
		{name: "absurd memory is an error", encoded: "$argon2id$v=19$m=4000000000,t=2,p=1" + good[len("$argon2id$v=19$m=19456,t=2,p=1"):]},
		{name: "absurd passes are an error", encoded: "$argon2id$v=19$m=19456,t=1000,p=1" + good[len("$argon2id$v=19$m=19456,t=2,p=1"):]},
		{name: "an empty string is an error", encoded: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, needsRehash, err := h.Verify(ctx, tc.encoded, "correct horse battery staple")
			require.ErrorIs(t, err, password.ErrInvalidHash)
			require.False(t, ok)
			require.False(t, needsRehash)
			require.NotContains(t, err.Error(), "correct horse", "errors never contain the password")
		})
	}
}

func TestVerifyNothing(t *testing.T) {
	t.Parallel()
	h := newHasher(t, password.DefaultParams, 0)

	t.Run("verifying against no account succeeds without error", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, h.VerifyNothing(context.Background(), "correct horse battery staple"))
	})
	t.Run("verifying against no account honours a cancelled context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, h.VerifyNothing(ctx, "correct horse battery staple"), context.Canceled)
	})
}

func TestHashHonoursACancelledContext(t *testing.T) {
	t.Parallel()
	h := newHasher(t, password.DefaultParams, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := h.Hash(ctx, "correct horse battery staple")
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = h.Verify(ctx, "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password")
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, h.InFlight())
	require.Zero(t, h.Waiting())
}

package token_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/token"
)

func TestRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk)

	before := sign(t, iss)
	oldKID := kidOf(t, before)
	require.NoError(t, iss.Rotate(ctx, acmeUID))
	after := sign(t, iss)
	newKID := kidOf(t, after)
	require.NotEqual(t, oldKID, newKID, "tokens are signed with the new key after a rotation")

	all, current := countKeys(t, pool)
	require.Equal(t, 2, all)
	require.Equal(t, 1, current)

	_, err := iss.Verify(before)
	require.NoError(t, err, "a token signed before the rotation still verifies")
	_, err = iss.Verify(after)
	require.NoError(t, err)
	require.Equal(t, []string{newKID, oldKID}, kids(jwks(t, iss, acmeUID)), "the JWKS lists the current key, then the retired one")

	var deleteAfter time.Time
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT delete_after FROM tenantry_identity.signing_keys WHERE kid = $1`, oldKID).Scan(&deleteAfter))
	require.False(t, deleteAfter.Before(clk.Now().Add(token.DefaultAccessTTL+token.ClockLeeway)),
		"the retired key outlives every token it signed")

	clk.Set(deleteAfter.Add(-time.Second))
	require.Equal(t, []string{newKID, oldKID}, kids(jwks(t, iss, acmeUID)), "the retired key is published until delete_after")
	clk.Set(deleteAfter)
	require.Equal(t, []string{newKID}, kids(jwks(t, iss, acmeUID)), "the retired key disappears at delete_after")
	require.NotContains(t, string(jwksJSON(t, iss, acmeUID)), oldKID)

	_, err = iss.Verify(before)
	requireRefused(t, err, token.ReasonInvalid)

	// Run deletes the row once it is past delete_after.
	runIssuer(t, newIssuer(t, pool, clk, func(c *token.Config) { c.ReloadEvery = 10 * time.Millisecond }))
	eventually(t, "the retired key's row is deleted", func() bool {
		all, _ := countKeys(t, pool)
		return all == 1
	})
	require.NoError(t, iss.Reload(ctx))
	require.Equal(t, []string{newKID}, kids(jwks(t, iss, acmeUID)))
}

func TestKeyPastDeleteAfterVerifiesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	a := newIssuer(t, pool, clk)
	b := newIssuer(t, pool, clk)
	oldKID := currentKID(t, b)
	require.NoError(t, a.Rotate(ctx, acmeUID))
	var deleteAfter time.Time
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT delete_after FROM tenantry_identity.signing_keys WHERE kid = $1`, oldKID).Scan(&deleteAfter))

	// b has not reloaded since, so it still signs with the retired key: a
	// fresh token, unexpired, whose key is past delete_after.
	clk.Set(deleteAfter)
	tok := sign(t, b)
	require.Equal(t, oldKID, kidOf(t, tok))
	_, err := a.Verify(tok)
	requireRefused(t, err, token.ReasonInvalid)

	require.NoError(t, b.Reload(ctx))
	_, err = b.Verify(tok)
	requireRefused(t, err, token.ReasonInvalid)
	require.NotEqual(t, oldKID, currentKID(t, b))
}

func TestRunRotatesOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	clk := newClock()
	fastRun := func(c *token.Config) {
		c.RotateEvery = time.Hour
		c.ReloadEvery = 10 * time.Millisecond
	}
	a := newIssuer(t, pool, clk, fastRun)
	b := newIssuer(t, pool, clk, fastRun)
	oldKID := currentKID(t, a)
	require.Equal(t, oldKID, currentKID(t, b))
	clk.Advance(time.Hour) // the current key is due for rotation
	beforeRotation := sign(t, a)

	runIssuer(t, a)
	runIssuer(t, b)

	eventually(t, "both replicas sign with a new key", func() bool {
		ka, kb := currentKID(t, a), currentKID(t, b)
		return ka != oldKID && ka == kb
	})
	all, current := countKeys(t, pool)
	require.Equal(t, 2, all, "one replica rotated, once: the old key and one new key")
	require.Equal(t, 1, current)
	for _, iss := range []*token.Issuer{a, b} {
		_, err := iss.Verify(beforeRotation)
		require.NoError(t, err, "a token signed before the rotation still verifies")
	}
}

func TestRotationOnOneReplicaReachesTheOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	a := newIssuer(t, pool, clk)
	b := newIssuer(t, pool, clk)
	oldKID := currentKID(t, b)

	require.NoError(t, a.Rotate(ctx, acmeUID))
	fromA := sign(t, a)
	require.NotEqual(t, oldKID, kidOf(t, fromA))

	_, err := b.Verify(fromA)
	require.NoError(t, err, "b reloads when it meets the new kid")
	require.Equal(t, kidOf(t, fromA), currentKID(t, b), "and signs with the new key from then on")

	// A second rotation within a second: b's reload for unknown kids is
	// rate-limited, so b refuses until its clock moves on or it reloads.
	require.NoError(t, a.Rotate(ctx, acmeUID))
	fromA = sign(t, a)
	_, err = b.Verify(fromA)
	requireRefused(t, err, token.ReasonInvalid)
	clk.Advance(2 * time.Second)
	_, err = b.Verify(fromA)
	require.NoError(t, err, "b reloads again once the rate limit allows")

	require.NoError(t, a.Rotate(ctx, acmeUID))
	require.NoError(t, b.Reload(ctx))
	require.Equal(t, currentKID(t, a), currentKID(t, b), "an explicit reload picks up a rotation")
	require.Equal(t, kids(jwks(t, a, acmeUID)), kids(jwks(t, b, acmeUID)))
}

func TestReplicasUsingATenantTogetherShareOneKeyPerAlgorithm(t *testing.T) {
	t.Parallel()
	pool := newPool(t) // a fresh database: not even the table exists
	clk := newClock()
	const replicas = 6

	issuers := make([]*token.Issuer, replicas)
	errs := make([]error, replicas)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for n := range replicas {
		wg.Go(func() {
			<-start
			issuers[n], errs[n] = token.NewIssuer(context.Background(), pool, testConfig(t, clk))
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	all, _ := countKeysOf(t, pool, token.AlgEdDSA)
	require.Zero(t, all, "no key is made before a tenant needs one")

	// Every replica's first token of the tenant, and its first RS256 key,
	// at once, twice each: the replicas and the calls within one race.
	start = make(chan struct{})
	tokens := make([][]string, replicas)
	rsaKIDs := make([][]string, replicas)
	signErrs, keyErrs := make([][]error, replicas), make([][]error, replicas)
	for n, iss := range issuers {
		tokens[n], rsaKIDs[n] = make([]string, 2), make([]string, 2)
		signErrs[n], keyErrs[n] = make([]error, 2), make([]error, 2)
		for m := range 2 {
			wg.Go(func() {
				<-start
				tokens[n][m], _, signErrs[n][m] = iss.Sign(context.Background(), "user-1", "acme", acmeUID, "session-1", nil)
			})
			wg.Go(func() {
				<-start
				rsaKIDs[n][m], _, keyErrs[n][m] = iss.SigningKey(context.Background(), acmeUID, token.AlgRS256)
			})
		}
	}
	close(start)
	wg.Wait()
	for n := range replicas {
		require.NoError(t, errors.Join(append(signErrs[n], keyErrs[n]...)...))
	}

	for _, alg := range []string{token.AlgEdDSA, token.AlgRS256} {
		all, current := countTenantKeys(t, pool, acmeUID, alg)
		require.Equal(t, 1, all, alg)
		require.Equal(t, 1, current, alg)
	}
	for n := range replicas {
		for m := range 2 {
			require.Equal(t, rsaKIDs[0][0], rsaKIDs[n][m], "every replica signs OpenID tokens with the one RSA key")
			require.Equal(t, kidOf(t, tokens[0][0]), kidOf(t, tokens[n][m]), "every replica signs with the one Ed25519 key")
			for _, verifier := range issuers {
				_, err := verifier.VerifyForTenant(tokens[n][m], acmeUID)
				require.NoError(t, err)
			}
		}
	}
}

func TestWrongKeyEncryptionKeyFailsStartUp(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	clk := newClock()
	good := newIssuer(t, pool, clk)
	tok := sign(t, good) // the tenant's first key

	_, err := token.NewIssuer(context.Background(), pool, token.Config{
		Issuer:           testIssuerName,
		KeyEncryptionKey: "another-key-encryption-key-0123456789",
		Now:              clk.Now,
	})
	require.ErrorIs(t, err, token.ErrKeysUndecryptable)
	require.ErrorContains(t, err, "signing keys cannot be decrypted: check TENANTRY_KEY_ENCRYPTION_KEY")

	all, _ := countKeysOf(t, pool, token.AlgEdDSA)
	require.Equal(t, 1, all, "no key was generated in place of the one that could not be opened")
	_, err = good.Verify(tok)
	require.NoError(t, err, "the replicas with the right key carry on")
}

func TestPrivateKeysAreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk)
	seed, err := iss.CurrentSeed(ctx, acmeUID)
	require.NoError(t, err)
	private := ed25519.NewKeyFromSeed(seed)

	var stored, public []byte
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT private_key, public_key FROM tenantry_identity.signing_keys WHERE retire_time IS NULL`,
	).Scan(&stored, &public))
	require.NotEmpty(t, stored)
	require.False(t, bytes.Contains(stored, seed), "the seed is not stored in the clear")
	require.False(t, bytes.Contains(stored, private), "the private key is not stored in the clear")
	require.Equal(t, []byte(private.Public().(ed25519.PublicKey)), public)
	x, err := base64.RawURLEncoding.DecodeString(jwks(t, iss, acmeUID)[0].X)
	require.NoError(t, err)
	require.Equal(t, public, x, "the JWKS publishes the stored public key")

	// Retiring a key erases its private half: it never signs again.
	kid := jwks(t, iss, acmeUID)[0].Kid
	require.NoError(t, iss.Rotate(ctx, acmeUID))
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT private_key FROM tenantry_identity.signing_keys WHERE kid = $1`, kid).Scan(&stored))
	require.Nil(t, stored)
}

func TestNewIssuerRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	tests := []struct {
		name   string
		adjust func(*token.Config)
		want   string
	}{
		{"an empty issuer", func(c *token.Config) { c.Issuer = "" }, "issuer (iss) is empty"},
		{"a missing key-encryption key", func(c *token.Config) { c.KeyEncryptionKey = "" },
			"key-encryption key (TENANTRY_KEY_ENCRYPTION_KEY) has 0 bytes, needs at least 32"},
		{"a short key-encryption key", func(c *token.Config) { c.KeyEncryptionKey = "secret" },
			"has 6 bytes, needs at least 32"},
		{"a negative lifetime", func(c *token.Config) { c.AccessTTL = -time.Minute }, "access token TTL is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, newClock())
			tt.adjust(&cfg)
			_, err := token.NewIssuer(context.Background(), pool, cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}

	t.Run("every problem is reported at once", func(t *testing.T) {
		t.Parallel()
		_, err := token.NewIssuer(context.Background(), pool, token.Config{})
		require.ErrorContains(t, err, "issuer (iss) is empty")
		require.ErrorContains(t, err, "TENANTRY_KEY_ENCRYPTION_KEY")
	})

	t.Run("a nil pool", func(t *testing.T) {
		t.Parallel()
		_, err := token.NewIssuer(context.Background(), nil, testConfig(t, newClock()))
		require.ErrorContains(t, err, "nil pool")
	})
}

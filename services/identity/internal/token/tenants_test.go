package token_test

import (
	"context"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/token"
)

func TestEachTenantSignsWithItsOwnKeys(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk)
	other := newIssuer(t, pool, clk) // another replica

	acme, globex := sign(t, iss), signFor(t, iss, globexUID)
	for _, alg := range []string{token.AlgEdDSA, token.AlgRS256} {
		require.NotEqual(t, signingKID(t, iss, acmeUID, alg), signingKID(t, iss, globexUID, alg), "two tenants share a %s key", alg)
	}
	require.Equal(t, signingKID(t, iss, acmeUID, token.AlgEdDSA), kidOf(t, acme))
	require.Equal(t, signingKID(t, iss, globexUID, token.AlgEdDSA), kidOf(t, globex))

	tests := []struct {
		name   string
		token  string
		tenant string // "" for Verify
		want   string // reason, "" for accepted
	}{
		{"acme's token verifies", acme, "", ""},
		{"globex's token verifies", globex, "", ""},
		{"acme's token verifies for acme", acme, acmeUID, ""},
		{"acme's token is refused for globex", acme, globexUID, token.ReasonWrongTenant},
		{"globex's token is refused for acme", globex, acmeUID, token.ReasonWrongTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, verifier := range []*token.Issuer{iss, other} {
				var err error
				if tt.tenant == "" {
					_, err = verifier.Verify(tt.token)
				} else {
					_, err = verifier.VerifyForTenant(tt.token, tt.tenant)
				}
				if tt.want == "" {
					require.NoError(t, err)
				} else {
					requireRefused(t, err, tt.want)
				}
			}
		})
	}

	t.Run("each tenant's JWKS and public keys list its own keys only", func(t *testing.T) {
		t.Parallel()
		acmeKeys, globexKeys := publishedAlgs(t, other, acmeUID), publishedAlgs(t, other, globexUID)
		require.Len(t, acmeKeys, 2)
		require.Len(t, globexKeys, 2)
		for kid := range acmeKeys {
			require.NotContains(t, globexKeys, kid)
		}
		require.Equal(t, []string{kidOf(t, acme)}, kids(jwks(t, other, acmeUID)))
		require.Equal(t, []string{kidOf(t, globex)}, kids(jwks(t, other, globexUID)))
	})

	t.Run("a verifier holding only globex's JWKS refuses acme's token by its key", func(t *testing.T) {
		t.Parallel()
		_, err := verifyWithJWKS(jwksJSON(t, other, globexUID), acme)
		require.ErrorContains(t, err, "unknown kid")
		_, err = verifyWithJWKS(jwksJSON(t, other, acmeUID), acme)
		require.Error(t, err, "only the test clock's expiry") // the clock is 2030's
		require.NotContains(t, err.Error(), "unknown kid")
	})
}

func TestKeysAreMadeWhenFirstNeeded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		use  func(t *testing.T, iss *token.Issuer)
		// the keys the tenant then has
		eddsa, rs256 int
	}{
		{"nothing is made before a tenant is used", func(*testing.T, *token.Issuer) {}, 0, 0},
		{"a token makes the Ed25519 key only", func(t *testing.T, iss *token.Issuer) { sign(t, iss) }, 1, 0},
		{"the JWKS makes the Ed25519 key only", func(t *testing.T, iss *token.Issuer) { jwks(t, iss, acmeUID) }, 1, 0},
		{"the OpenID Provider's keys make the Ed25519 key only", func(t *testing.T, iss *token.Issuer) { publishedAlgs(t, iss, acmeUID) }, 1, 0},
		{"verifying makes nothing", func(t *testing.T, iss *token.Issuer) {
			_, err := iss.VerifyForTenant(sign(t, newIssuer(t, newPool(t), newClock())), acmeUID)
			requireRefused(t, err, token.ReasonInvalid)
		}, 0, 0},
		{"an EdDSA OpenID key is the access tokens' key", func(t *testing.T, iss *token.Issuer) {
			require.Equal(t, signingKID(t, iss, acmeUID, token.AlgEdDSA), currentKID(t, iss))
		}, 1, 0},
		{"the first RS256 OpenID key makes the RSA key", func(t *testing.T, iss *token.Issuer) {
			_, key, err := iss.SigningKey(ctx, acmeUID, token.AlgRS256)
			require.NoError(t, err)
			require.IsType(t, &rsa.PrivateKey{}, key)
		}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t)
			iss := newIssuer(t, pool, newClock())
			tt.use(t, iss)
			for alg, want := range map[string]int{token.AlgEdDSA: tt.eddsa, token.AlgRS256: tt.rs256} {
				all, current := countTenantKeys(t, pool, acmeUID, alg)
				require.Equal(t, want, all, alg)
				require.Equal(t, want, current, alg)
			}
			all, _ := countKeysOf(t, pool, token.AlgEdDSA)
			rsa, _ := countKeysOf(t, pool, token.AlgRS256)
			require.Equal(t, tt.eddsa+tt.rs256, all+rsa, "keys of no other tenant")
		})
	}

	t.Run("a tenant uid that is no uuid is refused before any key is made", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t)
		iss := newIssuer(t, pool, newClock())
		_, _, err := iss.SigningKey(ctx, "acme", token.AlgRS256)
		require.ErrorContains(t, err, "not a uuid")
		_, err = iss.JWKS(ctx, "acme")
		require.ErrorContains(t, err, "not a uuid")
		_, err = iss.PublicKeys(ctx, "")
		require.ErrorContains(t, err, "not a uuid")
		all, _ := countKeysOf(t, pool, token.AlgEdDSA)
		require.Zero(t, all)
	})

	t.Run("a tenant uid in capitals names the same tenant", func(t *testing.T) {
		t.Parallel()
		iss := newIssuer(t, newPool(t), newClock())
		upper := "0190A6B2-4A7E-7C3D-9A51-3F0E2B6D8C11"
		require.Equal(t, currentKID(t, iss), signingKID(t, iss, upper, token.AlgEdDSA))
	})
}

func TestRotationIsPerTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk, func(c *token.Config) { c.RotateEvery = time.Hour })

	acmeBefore, globexBefore := sign(t, iss), signFor(t, iss, globexUID)
	acmeRSA := signingKID(t, iss, acmeUID, token.AlgRS256)
	require.NoError(t, iss.Rotate(ctx, acmeUID))
	require.NotEqual(t, kidOf(t, acmeBefore), currentKID(t, iss), "acme signs with a new key")
	require.NotEqual(t, acmeRSA, signingKID(t, iss, acmeUID, token.AlgRS256), "and its RSA key was rotated too")
	require.Equal(t, kidOf(t, globexBefore), kidOf(t, signFor(t, iss, globexUID)), "globex's key is untouched")
	all, _ := countTenantKeys(t, pool, globexUID, token.AlgRS256)
	require.Zero(t, all, "rotating makes no key of an algorithm the tenant never used")
	_, err := iss.VerifyForTenant(acmeBefore, acmeUID)
	require.NoError(t, err, "acme's retired key verifies")

	// Run rotates the keys of every tenant once due, even of tenants the
	// replica running it never used: no other replica may run.
	clk.Advance(time.Hour)
	runner := newIssuer(t, pool, clk, func(c *token.Config) {
		c.RotateEvery = time.Hour
		c.ReloadEvery = 10 * time.Millisecond
	})
	globexKID := kidOf(t, globexBefore)
	runIssuer(t, runner)
	eventually(t, "globex's key is rotated", func() bool {
		_, current := countTenantKeys(t, pool, globexUID, token.AlgEdDSA)
		all, _ := countTenantKeys(t, pool, globexUID, token.AlgEdDSA)
		return current == 1 && all == 2
	})
	require.Zero(t, runner.LoadedTenants(), "the runner loaded no tenant to rotate it")
	require.NoError(t, iss.Reload(ctx))
	require.NotEqual(t, globexKID, kidOf(t, signFor(t, iss, globexUID)), "the replica using globex picks the new key up at its reload")
	require.Contains(t, kids(jwks(t, iss, globexUID)), globexKID, "globex's retired key is still published")
}

func TestReloadReusesTheKeysItHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk)
	other := newIssuer(t, pool, clk)

	_, before, err := iss.SigningKey(ctx, acmeUID, token.AlgRS256)
	require.NoError(t, err)
	require.NoError(t, iss.Reload(ctx))
	_, after, err := iss.SigningKey(ctx, acmeUID, token.AlgRS256)
	require.NoError(t, err)
	require.Same(t, before, after, "an unchanged key is not decoded again")

	publicOf := func(kid string) *rsa.PublicKey {
		keys, err := iss.PublicKeys(ctx, acmeUID)
		require.NoError(t, err)
		for _, k := range keys {
			if k.KID == kid {
				return k.Key.(*rsa.PublicKey)
			}
		}
		t.Fatalf("kid %s is not published", kid)
		return nil
	}
	oldKID := signingKID(t, iss, acmeUID, token.AlgRS256)
	oldPublic := publicOf(oldKID)
	require.NoError(t, other.Rotate(ctx, acmeUID))
	require.NoError(t, iss.Reload(ctx))
	require.NotEqual(t, oldKID, signingKID(t, iss, acmeUID, token.AlgRS256), "the reload picked the rotation up")
	require.Same(t, oldPublic, publicOf(oldKID), "the key retired elsewhere is the one held, not decoded again")
}

func TestUpgradeFromKeysSharedByEveryTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()

	// The table and keys as the code of before made them: no tenant, one
	// current key of each algorithm for every tenant, sealed with the kid
	// alone.
	_, err := pool.Exec(ctx, `
		CREATE SCHEMA tenantry_identity;
		CREATE TABLE tenantry_identity.signing_keys (
			kid           text        PRIMARY KEY,
			private_key   bytea,
			public_key    bytea       NOT NULL,
			create_time   timestamptz NOT NULL,
			activate_time timestamptz NOT NULL,
			retire_time   timestamptz,
			delete_after  timestamptz,
			CHECK ((retire_time IS NULL) = (delete_after IS NULL)),
			CHECK (retire_time IS NOT NULL OR private_key IS NOT NULL),
			alg text NOT NULL DEFAULT 'EdDSA' CHECK (alg IN ('EdDSA', 'RS256'))
		);
		CREATE UNIQUE INDEX signing_keys_one_current_per_alg ON tenantry_identity.signing_keys (alg) WHERE retire_time IS NULL`)
	require.NoError(t, err)
	shared := map[string]token.SharedKey{}
	for _, alg := range []string{token.AlgEdDSA, token.AlgRS256} {
		k, err := token.NewSharedKey(testKEK, alg)
		require.NoError(t, err)
		shared[alg] = k
		_, err = pool.Exec(ctx, `
			INSERT INTO tenantry_identity.signing_keys (kid, alg, private_key, public_key, create_time, activate_time)
			VALUES ($1, $2, $3, $4, $5, $5)`, k.KID, alg, k.Sealed, k.Public, clk.Now().Add(-time.Hour))
		require.NoError(t, err)
	}
	// A token the code of before signed for acme, still alive.
	old := jwt.NewWithClaims(jwt.SigningMethodEdDSA, forgery{clk: clk}.claims())
	old.Header["kid"], old.Header["typ"] = shared[token.AlgEdDSA].KID, "at+jwt"
	oldToken, err := old.SignedString(shared[token.AlgEdDSA].Private)
	require.NoError(t, err)

	_, err = token.NewIssuer(ctx, pool, token.Config{Issuer: testIssuerName, KeyEncryptionKey: "another-key-encryption-key-0123456789", Now: clk.Now})
	require.ErrorIs(t, err, token.ErrKeysUndecryptable, "a replica that cannot open the shared keys")
	var upgraded bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = 'tenantry_identity' AND table_name = 'signing_keys' AND column_name = 'tenant_uid')`).Scan(&upgraded))
	require.False(t, upgraded, "and it changed nothing")

	iss := newIssuer(t, pool, clk)
	upgradeTime := clk.Now()
	for _, k := range shared {
		var (
			retire, deleteAfter *time.Time
			private             []byte
		)
		require.NoError(t, pool.QueryRow(ctx, `SELECT retire_time, delete_after, private_key FROM tenantry_identity.signing_keys WHERE kid = $1`, k.KID).
			Scan(&retire, &deleteAfter, &private))
		require.NotNil(t, retire, "the shared %s key is retired", k.Alg)
		require.True(t, upgradeTime.Equal(*retire))
		require.True(t, deleteAfter.After(upgradeTime.Add(token.DefaultAccessTTL)), "and published until its tokens have expired")
		require.Nil(t, private, "its private half is erased")
	}
	// Another replica starting after the upgrade changes nothing more.
	clk.Advance(time.Minute)
	second := newIssuer(t, pool, clk)
	var retire time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT retire_time FROM tenantry_identity.signing_keys WHERE kid = $1`, shared[token.AlgEdDSA].KID).Scan(&retire))
	require.True(t, upgradeTime.Equal(retire), "the upgrade ran once")

	for _, verifier := range []*token.Issuer{iss, second} {
		_, err := verifier.VerifyForTenant(oldToken, acmeUID)
		require.NoError(t, err, "a token the shared key signed verifies until it expires")
		require.Contains(t, kids(jwks(t, verifier, globexUID)), shared[token.AlgEdDSA].KID, "every tenant publishes the shared key meanwhile")
		require.Contains(t, publishedAlgs(t, verifier, globexUID), shared[token.AlgRS256].KID)
	}
	newToken := sign(t, iss)
	require.NotEqual(t, shared[token.AlgEdDSA].KID, kidOf(t, newToken), "the shared key never signs again")
	require.NotEqual(t, shared[token.AlgRS256].KID, signingKID(t, iss, acmeUID, token.AlgRS256))

	_, err = pool.Exec(ctx, `INSERT INTO tenantry_identity.signing_keys (kid, alg, private_key, public_key, create_time, activate_time)
		VALUES ('made-by-a-replica-of-before', 'EdDSA', '\x01', '\x00', now(), now())`)
	require.ErrorContains(t, err, "signing_keys_shared_keys_retired", "no key without a tenant can be current again")

	var deleteAfter time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT delete_after FROM tenantry_identity.signing_keys WHERE kid = $1`, shared[token.AlgEdDSA].KID).Scan(&deleteAfter))
	clk.Set(deleteAfter)
	_, err = iss.VerifyForTenant(oldToken, acmeUID)
	requireRefused(t, err, token.ReasonInvalid)
	require.NotContains(t, kids(jwks(t, iss, globexUID)), shared[token.AlgEdDSA].KID)
	runIssuer(t, newIssuer(t, pool, clk, func(c *token.Config) { c.ReloadEvery = 10 * time.Millisecond }))
	eventually(t, "the shared keys are deleted", func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM tenantry_identity.signing_keys WHERE tenant_uid IS NULL`).Scan(&n))
		return n == 0
	})
}

func TestPurgedTenantsKeysAreDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk, func(c *token.Config) { c.ReloadEvery = 10 * time.Millisecond })
	other := newIssuer(t, pool, clk, func(c *token.Config) { c.ReloadEvery = 10 * time.Millisecond })
	acme, globex := sign(t, iss), signFor(t, iss, globexUID)
	signingKID(t, iss, acmeUID, token.AlgRS256)
	for _, verifier := range []*token.Issuer{iss, other} {
		for _, tok := range []string{acme, globex} {
			_, err := verifier.Verify(tok)
			require.NoError(t, err)
		}
	}

	iss.ForgetTenant(acmeUID)
	_, err := iss.Verify(acme)
	require.NoError(t, err, "the keys are still in the database until Run's next tick")
	runIssuer(t, iss)
	// Run deletes the rows, commits, then drops the keys it holds: wait
	// for both, not for the rows alone.
	eventually(t, "acme's keys are deleted", func() bool {
		all, _ := countTenantKeys(t, pool, acmeUID, token.AlgEdDSA)
		rsa, _ := countTenantKeys(t, pool, acmeUID, token.AlgRS256)
		_, err := iss.Verify(acme)
		return all+rsa == 0 && err != nil
	})
	_, err = iss.Verify(acme)
	requireRefused(t, err, token.ReasonInvalid)
	require.NoError(t, other.Reload(ctx))
	_, err = other.Verify(acme)
	requireRefused(t, err, token.ReasonInvalid)
	require.Equal(t, 1, other.LoadedTenants(), "a replica forgets a tenant whose keys are gone at its next reload")
	_, err = iss.VerifyForTenant(globex, globexUID)
	require.NoError(t, err, "other tenants keep their keys")
}

func TestASealedKeyOpensOnlyInItsTenantsRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	clk := newClock()
	sign(t, newIssuer(t, pool, clk))
	running := newIssuer(t, pool, clk)

	// Someone who can write the table, but not read the key-encryption
	// key, makes acme's key globex's.
	_, err := pool.Exec(ctx, `UPDATE tenantry_identity.signing_keys SET tenant_uid = $1 WHERE tenant_uid = $2`, globexUID, acmeUID)
	require.NoError(t, err)
	_, _, err = running.Sign(ctx, "user-1", "globex", globexUID, "session-1", nil)
	require.ErrorIs(t, err, token.ErrKeysUndecryptable, "a replica refuses to sign for globex with it")
	_, err = token.NewIssuer(ctx, pool, testConfig(t, clk))
	require.ErrorIs(t, err, token.ErrKeysUndecryptable, "and a replica starting refuses to start")
}

// A relying party or a service fetches a tenant's keys right after it got
// a token, maybe from another replica than the one that signed it: the
// first key of a tenant, or its first RSA key, made on one replica is
// published by every other at once, without waiting for their reload
// (for the RSA key, unless the tenant was read for a request within the
// last second).
func TestAKeyMadeOnOneReplicaIsPublishedByTheOthersAtOnce(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	clk := newClock()
	a, b := newIssuer(t, pool, clk), newIssuer(t, pool, clk)

	// a meets acme before acme has any key: it holds acme without keys.
	_, err := a.VerifyForTenant(sign(t, newIssuer(t, newPool(t), clk)), acmeUID)
	requireRefused(t, err, token.ReasonInvalid)
	require.Equal(t, 1, a.LoadedTenants())

	tok := sign(t, b)
	require.Equal(t, []string{kidOf(t, tok)}, kids(jwks(t, a, acmeUID)), "a's JWKS has the key b made")
	rsaKID := signingKID(t, b, acmeUID, token.AlgRS256)
	// a reloaded acme for the unknown kid above: a tenant is read again
	// at most once a second for what a request misses.
	clk.Advance(time.Second)
	require.Contains(t, publishedAlgs(t, a, acmeUID), rsaKID, "a's public keys have the RSA key b made")
	_, err = a.VerifyForTenant(tok, acmeUID)
	require.NoError(t, err)
}

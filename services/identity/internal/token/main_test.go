package token_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/token"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

func TestMain(m *testing.M) {
	pgtest.Main(m)
}

// testKEK is the key-encryption key of the tests' issuers.
const testKEK = "test-key-encryption-key-0123456789abcdef"

// testIssuerName is the iss of the tests' issuers.
const testIssuerName = "tenantry-identity"

// Tenant uids of the tests, as the registry makes them. acme is the tenant
// tests sign for unless they say otherwise.
const (
	acmeUID   = "0190a6b2-4a7e-7c3d-9a51-3f0e2b6d8c11"
	globexUID = "0190a6b2-5b1c-7e2a-8f44-6d2c9e0a7b35"
	// acme2UID is the tenant that took acme's slug after acme was purged.
	acme2UID = "0190a6b2-6c2d-7f3b-9055-7e3dae1b8c46"
)

// clock is a settable clock shared by the issuers of a test, standing for
// the time all replicas agree on.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// newClock returns a clock at a fixed, whole-second time.
func newClock() *clock {
	return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// newPool opens a pool on a fresh database, closed when the test ends.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := tenantdb.NewPool(context.Background(), pgtest.NewDatabase(t), tenantdb.PoolOptions{})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// testConfig returns the configuration of a test issuer on clk, logging to
// the test's output (shown when it fails or runs verbosely).
func testConfig(t testing.TB, clk *clock) token.Config {
	return token.Config{
		Issuer:           testIssuerName,
		KeyEncryptionKey: testKEK,
		Logger:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:              clk.Now,
	}
}

// newIssuer starts an issuer on pool with testConfig changed by adjust, if
// given.
func newIssuer(t testing.TB, pool *pgxpool.Pool, clk *clock, adjust ...func(*token.Config)) *token.Issuer {
	t.Helper()
	cfg := testConfig(t, clk)
	for _, f := range adjust {
		f(&cfg)
	}
	iss, err := token.NewIssuer(context.Background(), pool, cfg)
	require.NoError(t, err)
	return iss
}

// sign signs a token for a fixed user of acme, or fails the test.
func sign(t testing.TB, iss *token.Issuer) string {
	t.Helper()
	return signFor(t, iss, acmeUID)
}

// signFor signs a token for a fixed user of the tenant with tenantUID.
func signFor(t testing.TB, iss *token.Issuer, tenantUID string) string {
	t.Helper()
	tok, _, err := iss.Sign(context.Background(), "user-1", "acme", tenantUID, "session-1", []string{"member"})
	require.NoError(t, err)
	return tok
}

// jwks returns a tenant's JWKS, or fails the test.
func jwks(t testing.TB, iss *token.Issuer, tenantUID string) []token.JWK {
	t.Helper()
	keys, err := iss.JWKS(context.Background(), tenantUID)
	require.NoError(t, err)
	return keys
}

// jwksJSON returns a tenant's JWKS document, or fails the test.
func jwksJSON(t testing.TB, iss *token.Issuer, tenantUID string) []byte {
	t.Helper()
	doc, err := iss.JWKSJSON(context.Background(), tenantUID)
	require.NoError(t, err)
	return doc
}

// signingKID returns the kid of a tenant's current key of alg, made if
// missing, or fails the test.
func signingKID(t testing.TB, iss *token.Issuer, tenantUID, alg string) string {
	t.Helper()
	kid, _, err := iss.SigningKey(context.Background(), tenantUID, alg)
	require.NoError(t, err)
	return kid
}

// publishedAlgs returns a tenant's public keys as kid → alg, or fails the
// test.
func publishedAlgs(t testing.TB, iss *token.Issuer, tenantUID string) map[string]string {
	t.Helper()
	keys, err := iss.PublicKeys(context.Background(), tenantUID)
	require.NoError(t, err)
	out := map[string]string{}
	for _, k := range keys {
		out[k.KID] = k.Alg
	}
	return out
}

// kidOf returns the kid in a token's header, without verifying anything.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

// currentKID returns the kid the issuer signs acme's tokens with.
func currentKID(t testing.TB, iss *token.Issuer) string {
	t.Helper()
	return kidOf(t, sign(t, iss))
}

// kids returns the kids of a JWKS, in order.
func kids(jwks []token.JWK) []string {
	out := make([]string, 0, len(jwks))
	for _, k := range jwks {
		out = append(out, k.Kid)
	}
	return out
}

// requireRefused checks that err is an Unauthenticated fault with reason.
func requireRefused(t testing.TB, err error, reason string) {
	t.Helper()
	require.Error(t, err)
	f, ok := fault.As(err)
	require.True(t, ok, "want a fault, got %v", err)
	require.Equal(t, fault.Unauthenticated, f.Kind, "kind of %v", err)
	require.Equal(t, reason, f.Reason, "reason of %v", err)
}

// countKeys returns how many Ed25519 keys (those of identity's access
// tokens), and how many current ones, are stored, of every tenant.
func countKeys(t testing.TB, pool *pgxpool.Pool) (all, current int) {
	t.Helper()
	return countKeysOf(t, pool, token.AlgEdDSA)
}

// countKeysOf is countKeys for the keys of one algorithm.
func countKeysOf(t testing.TB, pool *pgxpool.Pool, alg string) (all, current int) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `
		SELECT count(*), count(*) FILTER (WHERE retire_time IS NULL)
		FROM tenantry_identity.signing_keys WHERE alg = $1`, alg).Scan(&all, &current)
	require.NoError(t, err)
	return all, current
}

// countTenantKeys is countKeysOf for the keys of one tenant.
func countTenantKeys(t testing.TB, pool *pgxpool.Pool, tenantUID, alg string) (all, current int) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `
		SELECT count(*), count(*) FILTER (WHERE retire_time IS NULL)
		FROM tenantry_identity.signing_keys WHERE alg = $1 AND tenant_uid = $2`, alg, tenantUID).Scan(&all, &current)
	require.NoError(t, err)
	return all, current
}

// eventually polls cond until it holds, failing the test if it does not
// within a generous deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting until %s", what)
		case <-poll.C:
		}
	}
}

// runIssuer runs iss.Run until the test ends.
func runIssuer(t testing.TB, iss *token.Issuer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		iss.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// segments splits a token into its three parts.
func segments(t testing.TB, tok string) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	return parts
}

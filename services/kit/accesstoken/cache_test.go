package accesstoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
)

func TestVerifiedTokensGet(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	held, other := &keySet{}, &keySet{}
	digest := sha256.Sum256([]byte("token"))
	tests := []struct {
		name   string
		digest [sha256.Size]byte
		keys   *keySet
		at     time.Time
		hit    bool
	}{
		{"a token checked with the keys held and not expired is remembered", digest, held, now, true},
		{"a token is remembered up to just before its exp", digest, held, now.Add(time.Minute - time.Nanosecond), true},
		{"a token is forgotten at its exp, although Leeway may accept it", digest, held, now.Add(time.Minute), false},
		{"a token is forgotten after its exp", digest, held, now.Add(time.Hour), false},
		{"a token checked with keys fetched before the ones held is checked again", digest, other, now, false},
		{"another token is not taken for this one", sha256.Sum256([]byte("token2")), held, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newVerifiedTokens(10)
			c.put(digest, Claims{Subject: "u1", TenantUID: "t1", ExpiresAt: now.Add(time.Minute)}, held, now)
			got, ok := c.get(tt.digest, tt.keys, tt.at)
			require.Equal(t, tt.hit, ok)
			if tt.hit {
				require.Equal(t, "u1", got.Subject)
			}
		})
	}
}

func TestVerifiedTokensPut(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	keys := &keySet{}
	valid := Claims{Subject: "u1", ExpiresAt: now.Add(time.Minute)}
	tests := []struct {
		name    string
		claims  Claims
		keys    *keySet
		puts    int // distinct tokens put
		max     int
		wantLen int
	}{
		{"a valid token is remembered", valid, keys, 1, 10, 1},
		{"a token past its exp is not remembered", Claims{ExpiresAt: now.Add(-time.Second)}, keys, 1, 10, 0},
		{"a token at its exp is not remembered", Claims{ExpiresAt: now}, keys, 1, 10, 0},
		{"a token without the key set it was checked with is not remembered", valid, nil, 1, 10, 0},
		{"up to the bound, every token is remembered", valid, keys, 10, 10, 10},
		{"past the bound, the cache drops below three quarters of it, then takes the new token", valid, keys, 11, 10, 7},
		{"many more tokens than the bound never exceed it", valid, keys, 1000, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newVerifiedTokens(tt.max)
			for i := range tt.puts {
				c.put(sha256.Sum256(fmt.Appendf(nil, "token %d", i)), tt.claims, tt.keys, now)
				require.LessOrEqual(t, c.len(), tt.max)
			}
			if tt.puts < 1000 {
				require.Equal(t, tt.wantLen, c.len())
			}
		})
	}

	t.Run("a full cache drops expired tokens and those of older key sets first", func(t *testing.T) {
		t.Parallel()
		c := newVerifiedTokens(4)
		old := &keySet{}
		c.put(sha256.Sum256([]byte("expiring")), Claims{ExpiresAt: now.Add(time.Second)}, keys, now)
		c.put(sha256.Sum256([]byte("old keys")), valid, old, now)
		c.put(sha256.Sum256([]byte("a")), valid, keys, now)
		c.put(sha256.Sum256([]byte("b")), valid, keys, now)
		later := now.Add(2 * time.Second)
		c.put(sha256.Sum256([]byte("c")), valid, keys, later)
		require.Equal(t, 3, c.len())
		for _, tok := range []string{"a", "b", "c"} {
			_, ok := c.get(sha256.Sum256([]byte(tok)), keys, later)
			require.True(t, ok, tok)
		}
	})
}

// jwksClient is identity's TokenService as far as a Verifier uses it: the
// keys each tenant publishes now, by the slug the call names (x-tenant).
type jwksClient struct {
	identityv1.TokenServiceClient

	mu      sync.Mutex
	keys    map[string]map[string]ed25519.PublicKey
	fetches map[string]int
}

// newJWKSClient returns a client where the tenant with slug publishes keys.
func newJWKSClient(slug string, keys map[string]ed25519.PublicKey) *jwksClient {
	return &jwksClient{keys: map[string]map[string]ed25519.PublicKey{slug: keys}, fetches: map[string]int{}}
}

func (c *jwksClient) publish(slug string, keys map[string]ed25519.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[slug] = keys
}

func (c *jwksClient) fetchesOf(slug string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches[slug]
}

func (c *jwksClient) GetJwks(ctx context.Context, _ *identityv1.GetJwksRequest, _ ...grpc.CallOption) (*identityv1.GetJwksResponse, error) {
	md, _ := metadata.FromOutgoingContext(ctx)
	slugs := md.Get("x-tenant")
	if len(slugs) != 1 {
		return nil, fmt.Errorf("the call names %d tenants", len(slugs))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetches[slugs[0]]++
	keys, ok := c.keys[slugs[0]]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such tenant")
	}
	resp := &identityv1.GetJwksResponse{}
	for kid, pub := range keys {
		resp.Keys = append(resp.Keys, &identityv1.Jwk{Kty: "OKP", Crv: "Ed25519", Alg: "EdDSA", Kid: kid, Use: "sig",
			X: base64.RawURLEncoding.EncodeToString(pub)})
	}
	return resp, nil
}

// The tenants of the tests.
var (
	alpha = tenancy.Tenant{UID: "t-alpha", Slug: "alpha"}
	beta  = tenancy.Tenant{UID: "t-beta", Slug: "beta"}
)

func sign(t *testing.T, priv ed25519.PrivateKey, kid string, c tokenClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
	s, err := tok.SignedString(priv)
	require.NoError(t, err)
	return s
}

// The Verifier with its cache: a token used again is taken from the cache,
// yet its tenant, its exp and the keys identity publishes are honoured as
// without one.
func TestVerifierRemembersVerifiedTokensWithinTheirBounds(t *testing.T) {
	t.Parallel()
	issued := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	newPub, newPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	claims := func(tenantUID string) tokenClaims {
		return tokenClaims{
			RegisteredClaims: jwt.RegisteredClaims{Issuer: "tenantry-identity", Subject: "user-1",
				IssuedAt: jwt.NewNumericDate(issued), ExpiresAt: jwt.NewNumericDate(issued.Add(15 * time.Minute))},
			Tenant: "alpha", TenantUID: tenantUID, Session: "s1", Roles: []string{"member"},
		}
	}
	reason := func(t *testing.T, err error) string {
		t.Helper()
		if err == nil {
			return ""
		}
		f, ok := fault.As(err)
		require.True(t, ok, "%v", err)
		return f.Reason
	}

	tests := []struct {
		name string
		// second is the second Verify of the token, after a first at issue
		// time that succeeded for tenant t-alpha.
		at        time.Duration // after issue
		tenant    tenancy.Tenant
		rotate    bool // identity publishes only a new key before the second Verify
		want      string
		fromCache bool // the second Verify needed no signature check
	}{
		{"the same token for the same tenant is taken from the cache", time.Minute, alpha, false, "", true},
		{"a remembered token is still refused to another tenant", time.Minute, beta, false, ReasonWrongTenant, true},
		{"a remembered token is still refused without a tenant", time.Minute, tenancy.Tenant{}, false, ReasonWrongTenant, true},
		{"past its exp, within Leeway, the token is checked again and accepted", 15*time.Minute + Leeway/2, alpha, false, "", false},
		{"past its exp and Leeway, a remembered token is refused as expired", 15*time.Minute + Leeway + time.Second, alpha, false, ReasonExpired, false},
		{"once identity no longer publishes its key, a remembered token is refused", time.Minute, alpha, true, ReasonInvalid, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := newJWKSClient("alpha", map[string]ed25519.PublicKey{"k1": pub})
			v := NewVerifier(client, "tenantry-identity")
			now := issued
			v.now = func() time.Time { return now }
			token := sign(t, priv, "k1", claims("t-alpha"))

			first, err := v.Verify(context.Background(), token, alpha)
			require.NoError(t, err)
			require.Equal(t, "user-1", first.Subject)
			require.Equal(t, 1, v.verified.len())
			first.Roles[0] = "changed by the caller"

			now = issued.Add(tt.at)
			if tt.rotate {
				client.publish("alpha", map[string]ed25519.PublicKey{"k2": newPub})
				require.NoError(t, v.Refresh(context.Background(), alpha))
				// A token of the new key is accepted meanwhile.
				_, err := v.Verify(context.Background(), sign(t, newPriv, "k2", claims("t-alpha")), alpha)
				require.NoError(t, err)
			}
			keysBefore := v.tenants.get(alpha.UID).keys.Load()
			_, hit := v.verified.get(sha256.Sum256([]byte(token)), keysBefore, now)
			require.Equal(t, tt.fromCache, hit)

			second, err := v.Verify(context.Background(), token, tt.tenant)
			require.Equal(t, tt.want, reason(t, err), "%v", err)
			if tt.want == "" {
				require.Equal(t, "user-1", second.Subject)
				require.Equal(t, "t-alpha", second.TenantUID)
				require.Equal(t, []string{"member"}, second.Roles, "a caller's change to its claims reached the cache")
				require.True(t, issued.Add(15*time.Minute).Equal(second.ExpiresAt), "exp %v", second.ExpiresAt)
			}
		})
	}

	t.Run("tampered or forged tokens are never taken for a remembered one", func(t *testing.T) {
		t.Parallel()
		client := newJWKSClient("alpha", map[string]ed25519.PublicKey{"k1": pub})
		v := NewVerifier(client, "tenantry-identity")
		v.now = func() time.Time { return issued }
		token := sign(t, priv, "k1", claims("t-alpha"))
		_, err := v.Verify(context.Background(), token, alpha)
		require.NoError(t, err)

		_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		forged := sign(t, otherPriv, "k1", claims("t-alpha"))
		_, err = v.Verify(context.Background(), forged, alpha)
		require.Equal(t, ReasonInvalid, reason(t, err))
		tampered := []byte(token)
		if i := len(tampered) - 10; tampered[i] == 'A' {
			tampered[i] = 'B'
		} else {
			tampered[i] = 'A'
		}
		_, err = v.Verify(context.Background(), string(tampered), alpha)
		require.Equal(t, ReasonInvalid, reason(t, err))
		require.Equal(t, 1, v.verified.len(), "a refused token was remembered")
	})
}

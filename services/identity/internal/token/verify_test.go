package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/token"
)

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk)

	t.Run("a signed token verifies with every claim intact", func(t *testing.T) {
		t.Parallel()
		tok, signed, err := iss.Sign(context.Background(), "user-42", "acme", acmeUID, "session-7", []string{"admin", "member"})
		require.NoError(t, err)

		got, err := iss.Verify(tok)
		require.NoError(t, err)
		require.Equal(t, signed, got)
		require.Equal(t, token.Claims{
			Subject:   "user-42",
			Tenant:    "acme",
			TenantUID: acmeUID,
			Session:   "session-7",
			Roles:     []string{"admin", "member"},
			IssuedAt:  clk.Now(),
			ExpiresAt: clk.Now().Add(token.DefaultAccessTTL),
			ID:        signed.ID,
			Issuer:    testIssuerName,
		}, got)
		require.NotEmpty(t, got.ID)
	})

	t.Run("the header names EdDSA, the access-token type and the published key", func(t *testing.T) {
		t.Parallel()
		parsed, _, err := jwt.NewParser().ParseUnverified(sign(t, iss), jwt.MapClaims{})
		require.NoError(t, err)
		require.Equal(t, "EdDSA", parsed.Header["alg"])
		require.Equal(t, "at+jwt", parsed.Header["typ"])
		require.Equal(t, jwks(t, iss, acmeUID)[0].Kid, parsed.Header["kid"])
	})

	t.Run("every token has its own id", func(t *testing.T) {
		t.Parallel()
		_, a, err := iss.Sign(context.Background(), "user-1", "acme", acmeUID, "session-1", nil)
		require.NoError(t, err)
		_, b, err := iss.Sign(context.Background(), "user-1", "acme", acmeUID, "session-1", nil)
		require.NoError(t, err)
		require.NotEqual(t, a.ID, b.ID)
	})

	t.Run("no roles verify as an empty list", func(t *testing.T) {
		t.Parallel()
		tok, _, err := iss.Sign(context.Background(), "user-1", "acme", acmeUID, "session-1", nil)
		require.NoError(t, err)
		got, err := iss.Verify(tok)
		require.NoError(t, err)
		require.Equal(t, []string{}, got.Roles)
	})

	t.Run("Issue returns the token and its expiry", func(t *testing.T) {
		t.Parallel()
		tok, expires, err := iss.Issue(context.Background(), "user-1", "acme", acmeUID, "session-1", []string{"member"})
		require.NoError(t, err)
		got, err := iss.Verify(tok)
		require.NoError(t, err)
		require.Equal(t, got.ExpiresAt, expires)
	})

	t.Run("signing without subject, tenant, tenant uid or session, or with a tenant uid that is no uuid, fails", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][4]string{{"", "acme", acmeUID, "s"}, {"u", "", acmeUID, "s"}, {"u", "acme", "", "s"}, {"u", "acme", acmeUID, ""}} {
			_, _, err := iss.Sign(context.Background(), args[0], args[1], args[2], args[3], nil)
			require.Error(t, err, "Sign%q", args)
		}
	})

	t.Run("the configured lifetime sets exp", func(t *testing.T) {
		t.Parallel()
		short := newIssuer(t, pool, clk, func(c *token.Config) { c.AccessTTL = 5 * time.Minute })
		_, claims, err := short.Sign(context.Background(), "user-1", "acme", acmeUID, "session-1", nil)
		require.NoError(t, err)
		require.Equal(t, 5*time.Minute, claims.ExpiresAt.Sub(claims.IssuedAt))
	})
}

func TestVerifyToleratesClockSkew(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	tests := []struct {
		name string
		// signerAhead is how far the signing replica's clock is ahead.
		signerAhead time.Duration
		// verifyAfter is how long after signing (on the signer's clock) the
		// token is verified.
		verifyAfter time.Duration
	}{
		{name: "a token just within the leeway after exp is accepted",
			verifyAfter: token.DefaultAccessTTL + token.ClockLeeway - time.Second},
		{name: "a token from a replica whose clock is ahead within the leeway is accepted",
			signerAhead: token.ClockLeeway - time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			verifierClock, signerClock := newClock(), newClock()
			signerClock.Advance(tt.signerAhead)
			signer := newIssuer(t, pool, signerClock)
			verifier := newIssuer(t, pool, verifierClock)
			tok := sign(t, signer)
			verifierClock.Advance(tt.verifyAfter)
			_, err := verifier.Verify(tok)
			require.NoError(t, err)
		})
	}
}

// forgery is what a refusal test case gets to forge a token with.
type forgery struct {
	pool *pgxpool.Pool
	clk  *clock
	// iss verifies the token; its key signs the genuine parts.
	iss *token.Issuer
}

// claims returns the claims Sign would produce now.
func (f forgery) claims() jwt.MapClaims {
	now := f.clk.Now()
	return jwt.MapClaims{
		"iss":   testIssuerName,
		"sub":   "user-1",
		"tid":   "acme",
		"tuid":  acmeUID,
		"sid":   "session-1",
		"roles": []string{"member"},
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(token.DefaultAccessTTL).Unix(),
		"jti":   "jti-1",
	}
}

// without returns the claims with one left out.
func (f forgery) without(claim string) jwt.MapClaims {
	c := f.claims()
	delete(c, claim)
	return c
}

// with returns the claims with one changed.
func (f forgery) with(claim string, value any) jwt.MapClaims {
	c := f.claims()
	c[claim] = value
	return c
}

// signRaw signs header and claims with the real current key.
func (f forgery) signRaw(t *testing.T, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := f.iss.SignRaw(context.Background(), acmeUID, header, claims)
	require.NoError(t, err)
	return tok
}

// signWith signs claims with method and key under the real kid.
func (f forgery) signWith(t *testing.T, method jwt.SigningMethod, key any) string {
	t.Helper()
	forged := jwt.NewWithClaims(method, f.claims())
	forged.Header["kid"] = jwks(t, f.iss, acmeUID)[0].Kid
	forged.Header["typ"] = "at+jwt"
	tok, err := forged.SignedString(key)
	require.NoError(t, err)
	return tok
}

// publicKey returns the current public key as published.
func (f forgery) publicKey(t *testing.T) []byte {
	t.Helper()
	x, err := base64.RawURLEncoding.DecodeString(jwks(t, f.iss, acmeUID)[0].X)
	require.NoError(t, err)
	return x
}

// alterPayload re-encodes a genuine token's payload after edit, keeping the
// signature.
func alterPayload(t *testing.T, tok string, edit func(map[string]any)) string {
	t.Helper()
	parts := segments(t, tok)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(raw, &payload))
	edit(payload)
	raw, err = json.Marshal(payload)
	require.NoError(t, err)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// alterSignature flips one bit of a token's signature.
func alterSignature(t *testing.T, tok string) string {
	t.Helper()
	parts := segments(t, tok)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	sig[10] ^= 0x01
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	elsewhere := newPool(t) // another deployment, with keys of its own

	tests := []struct {
		name  string
		forge func(t *testing.T, f forgery) string
		want  string
	}{
		{
			name: "a token past exp and the leeway, as expired",
			forge: func(t *testing.T, f forgery) string {
				tok := sign(t, f.iss)
				f.clk.Advance(token.DefaultAccessTTL + token.ClockLeeway)
				return tok
			},
			want: token.ReasonExpired,
		},
		{
			name: "an expired token with a bad signature, as invalid rather than expired",
			forge: func(t *testing.T, f forgery) string {
				tok := alterSignature(t, sign(t, f.iss))
				f.clk.Advance(time.Hour)
				return tok
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token of another issuer sharing the keys",
			forge: func(t *testing.T, f forgery) string {
				other := newIssuer(t, f.pool, f.clk, func(c *token.Config) { c.Issuer = "someone-else" })
				return sign(t, other)
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token whose payload was altered",
			forge: func(t *testing.T, f forgery) string {
				return alterPayload(t, sign(t, f.iss), func(p map[string]any) { p["roles"] = []string{"admin"} })
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token whose tenant was altered",
			forge: func(t *testing.T, f forgery) string {
				return alterPayload(t, sign(t, f.iss), func(p map[string]any) { p["tid"] = "globex" })
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token whose tenant uid was altered",
			forge: func(t *testing.T, f forgery) string {
				return alterPayload(t, sign(t, f.iss), func(p map[string]any) { p["tuid"] = globexUID })
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token whose signature was altered",
			forge: func(t *testing.T, f forgery) string {
				return alterSignature(t, sign(t, f.iss))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token without its signature",
			forge: func(t *testing.T, f forgery) string {
				parts := segments(t, sign(t, f.iss))
				return parts[0] + "." + parts[1] + "."
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token with alg none",
			forge: func(t *testing.T, f forgery) string {
				return f.signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType)
			},
			want: token.ReasonInvalid,
		},
		{
			name: "an HS256 token keyed with the raw public key",
			forge: func(t *testing.T, f forgery) string {
				return f.signWith(t, jwt.SigningMethodHS256, f.publicKey(t))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "an HS256 token keyed with the published x",
			forge: func(t *testing.T, f forgery) string {
				return f.signWith(t, jwt.SigningMethodHS256, []byte(jwks(t, f.iss, acmeUID)[0].X))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "an HS256 token keyed with the JWKS document",
			forge: func(t *testing.T, f forgery) string {
				return f.signWith(t, jwt.SigningMethodHS256, jwksJSON(t, f.iss, acmeUID))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "an EdDSA token signed by another key under our kid",
			forge: func(t *testing.T, f forgery) string {
				_, private, err := ed25519.GenerateKey(rand.Reader)
				require.NoError(t, err)
				return f.signWith(t, jwt.SigningMethodEdDSA, private)
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token signed by a key we do not know",
			forge: func(t *testing.T, f forgery) string {
				return sign(t, newIssuer(t, elsewhere, f.clk))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token signed by another tenant's key, naming this tenant",
			forge: func(t *testing.T, f forgery) string {
				tok, err := f.iss.SignRaw(context.Background(), globexUID, nil, f.claims())
				require.NoError(t, err)
				return tok
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token signed by this tenant's key, naming another tenant",
			forge: func(t *testing.T, f forgery) string {
				signFor(t, f.iss, globexUID) // globex has keys too
				return f.signRaw(t, nil, f.with("tuid", globexUID))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token naming a tenant uid that is no uuid",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, nil, f.with("tuid", "uid-acme"))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token without kid",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, map[string]any{"kid": nil}, f.claims())
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token typed as a plain JWT",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, map[string]any{"typ": "JWT"}, f.claims())
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token with critical header extensions",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, map[string]any{"crit": []string{"exp"}}, f.claims())
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token issued in the future beyond the leeway",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, nil, f.with("iat", f.clk.Now().Add(time.Minute).Unix()))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token not valid before a time beyond the leeway",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, nil, f.with("nbf", f.clk.Now().Add(time.Minute).Unix()))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token expiring before it was issued",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, nil, f.with("exp", f.clk.Now().Add(-time.Second).Unix()))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a token whose roles are not a list",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, nil, f.with("roles", "admin"))
			},
			want: token.ReasonInvalid,
		},
		{
			name: "a genuine token too large to be ours",
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, nil, f.with("roles", []string{strings.Repeat("r", 10<<10)}))
			},
			want: token.ReasonInvalid,
		},
		{name: "an empty string", forge: func(*testing.T, forgery) string { return "" }, want: token.ReasonInvalid},
		{name: "text that is no JWT", forge: func(*testing.T, forgery) string { return "Bearer xyz" }, want: token.ReasonInvalid},
		{name: "three garbage segments", forge: func(*testing.T, forgery) string { return "a.b.c" }, want: token.ReasonInvalid},
	}
	for _, claim := range []string{"iss", "sub", "tid", "tuid", "sid", "jti", "iat", "nbf", "exp"} {
		tests = append(tests, struct {
			name  string
			forge func(t *testing.T, f forgery) string
			want  string
		}{
			name: "a token without " + claim,
			forge: func(t *testing.T, f forgery) string {
				return f.signRaw(t, nil, f.without(claim))
			},
			want: token.ReasonInvalid,
		})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A replica of its own, so moving its clock affects no other case.
			clk := newClock()
			f := forgery{pool: pool, clk: clk, iss: newIssuer(t, pool, clk)}
			tok := tt.forge(t, f)
			claims, err := f.iss.Verify(tok)
			t.Log("refused:", err) // the cause says which check caught it
			requireRefused(t, err, tt.want)
			require.Zero(t, claims)
		})
	}
}

func TestVerifyForTenant(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	clk := newClock()
	iss := newIssuer(t, pool, clk)
	acme := sign(t, iss) // issued in tenant acme
	globex := signFor(t, iss, globexUID)

	tests := []struct {
		name   string
		token  string
		tenant string
		want   string // reason, "" for accepted
	}{
		{name: "a token of the request's tenant is accepted", token: acme, tenant: acmeUID},
		{name: "a token of another tenant is refused", token: acme, tenant: globexUID, want: token.ReasonWrongTenant},
		{name: "a token of a purged tenant is refused in the tenant that took its slug", token: acme, tenant: acme2UID, want: token.ReasonWrongTenant},
		{name: "a token with no tenant to match is refused", token: acme, tenant: "", want: token.ReasonWrongTenant},
		{name: "the slug does not stand for the uid", token: acme, tenant: "acme", want: token.ReasonWrongTenant},
		{name: "an invalid token is invalid whatever the tenant", token: alterSignature(t, acme), tenant: acmeUID,
			want: token.ReasonInvalid},
		{name: "a token of another tenant is refused before its signature is checked", token: alterSignature(t, acme), tenant: globexUID,
			want: token.ReasonWrongTenant},
		{name: "a token of a tenant with keys of its own is refused for another tenant", token: globex, tenant: acmeUID,
			want: token.ReasonWrongTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			claims, err := iss.VerifyForTenant(tt.token, tt.tenant)
			if tt.want == "" {
				require.NoError(t, err)
				require.Equal(t, tt.tenant, claims.TenantUID)
				return
			}
			requireRefused(t, err, tt.want)
			require.Zero(t, claims)
		})
	}
}

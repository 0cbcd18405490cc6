package accesstoken

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/fault"
)

// Reasons of the faults Verify returns; identity uses the same ones.
const (
	ReasonInvalid     = "ACCESS_TOKEN_INVALID"
	ReasonExpired     = "ACCESS_TOKEN_EXPIRED"
	ReasonWrongTenant = "ACCESS_TOKEN_WRONG_TENANT"
)

// Leeway tolerates clock skew between identity and this service.
const Leeway = 30 * time.Second

// refreshEvery bounds how often an unknown kid makes the verifier fetch the
// keys again: anyone can send a token with a made-up kid.
const refreshEvery = time.Second

// Claims are what a verified access token says.
type Claims struct {
	Subject   string   // the user's id
	Tenant    string   // the tenant's slug, for people and logs
	TenantUID string   // the tenant's immutable uid, which the token is bound to
	Session   string   // the session's id
	Roles     []string // the user's roles when the token was signed
	ExpiresAt time.Time
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Tenant    string   `json:"tid"`
	TenantUID string   `json:"tuid"`
	Session   string   `json:"sid"`
	Roles     []string `json:"roles"`
}

// keySet is identity's keys by kid, as one fetch returned them.
type keySet = map[string]ed25519.PublicKey

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	client identityv1.TokenServiceClient
	issuer string
	parser *jwt.Parser
	now    func() time.Time // the parser's and the cache's clock

	keys     atomic.Pointer[keySet]
	verified *verifiedTokens

	mu          sync.Mutex // serialises refreshes
	lastRefresh time.Time
}

// NewVerifier returns a Verifier that fetches identity's keys through
// client and accepts tokens of issuer (identity's TENANTRY_ISSUER,
// "tenantry-identity" by default). Call Refresh once at start-up to fail
// early if identity cannot be reached; Verify fetches on demand otherwise.
func NewVerifier(client identityv1.TokenServiceClient, issuer string) *Verifier {
	v := &Verifier{
		client:   client,
		issuer:   issuer,
		now:      time.Now,
		verified: newVerifiedTokens(maxVerifiedTokens),
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	empty := keySet{}
	v.keys.Store(&empty)
	return v
}

// Refresh fetches identity's published keys now.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.refreshLocked(ctx)
}

func (v *Verifier) refreshLocked(ctx context.Context) error {
	resp, err := v.client.GetJwks(ctx, &identityv1.GetJwksRequest{})
	if err != nil {
		return fmt.Errorf("accesstoken: fetch identity's keys: %w", err)
	}
	keys := make(keySet, len(resp.GetKeys()))
	for _, k := range resp.GetKeys() {
		if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetAlg() != "EdDSA" || k.GetKid() == "" {
			continue // not a key this package can use
		}
		pub, err := base64.RawURLEncoding.DecodeString(k.GetX())
		if err != nil || len(pub) != ed25519.PublicKeySize {
			continue
		}
		keys[k.GetKid()] = ed25519.PublicKey(pub)
	}
	v.keys.Store(&keys)
	v.lastRefresh = time.Now()
	return nil
}

// keyFor returns the public key a token's kid names and the key set it is
// in, fetching the keys again (at most once per refreshEvery) when the kid
// is unknown: identity may have rotated its key.
func (v *Verifier) keyFor(ctx context.Context, kid string) (ed25519.PublicKey, *keySet, error) {
	if keys := v.keys.Load(); (*keys)[kid] != nil {
		return (*keys)[kid], keys, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if keys := v.keys.Load(); (*keys)[kid] != nil {
		return (*keys)[kid], keys, nil
	}
	if time.Since(v.lastRefresh) < refreshEvery {
		return nil, nil, fmt.Errorf("kid %q is not one of identity's keys", kid)
	}
	if err := v.refreshLocked(ctx); err != nil {
		return nil, nil, fetchError{err}
	}
	if keys := v.keys.Load(); (*keys)[kid] != nil {
		return (*keys)[kid], keys, nil
	}
	return nil, nil, fmt.Errorf("kid %q is not one of identity's keys", kid)
}

// fetchError is a failure to fetch the keys: an outage, not a bad token.
type fetchError struct{ err error }

func (e fetchError) Error() string { return e.err.Error() }
func (e fetchError) Unwrap() error { return e.err }

// Verify checks token for the tenant whose uid is tenantUID and returns its
// claims. Every refusal is a fault.Unauthenticated with one of this
// package's reasons; a failure to fetch the keys is an Unavailable fault.
// A token verified before, with the keys held now, and not yet expired is
// taken from the cache of verified tokens; the tenant binding is checked
// on every call.
func (v *Verifier) Verify(ctx context.Context, token, tenantUID string) (Claims, error) {
	digest := sha256.Sum256([]byte(token))
	c, ok := v.verified.get(digest, v.keys.Load(), v.now())
	if !ok {
		var err error
		if c, err = v.verify(ctx, token, digest); err != nil {
			return Claims{}, err
		}
	}
	if tenantUID == "" || c.TenantUID != tenantUID {
		return Claims{}, fault.New(fault.Unauthenticated, ReasonWrongTenant, "this access token belongs to another tenant; log in to this one")
	}
	c.Roles = append([]string{}, c.Roles...) // the caller's own copy
	return c, nil
}

// verify checks token's signature and claims, and remembers it when they
// pass, under digest, the SHA-256 of its text.
func (v *Verifier) verify(ctx context.Context, token string, digest [sha256.Size]byte) (Claims, error) {
	var (
		c    tokenClaims
		keys *keySet // the key set the signature was checked with
	)
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "at+jwt" {
			return nil, fmt.Errorf("typ %q is not at+jwt", typ)
		}
		kid, _ := t.Header["kid"].(string)
		key, set, err := v.keyFor(ctx, kid)
		keys = set
		return key, err
	})
	var fetchErr fetchError
	switch {
	case errors.As(err, &fetchErr):
		return Claims{}, fault.New(fault.Unavailable, "IDENTITY_UNAVAILABLE", "cannot fetch identity's keys to check the access token; retry").WithCause(fetchErr)
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fault.New(fault.Unauthenticated, ReasonExpired, "the access token has expired; refresh it").WithCause(err)
	case err != nil:
		return Claims{}, fault.New(fault.Unauthenticated, ReasonInvalid, "the access token is not valid").WithCause(err)
	case c.Subject == "" || c.TenantUID == "" || c.Session == "":
		return Claims{}, fault.New(fault.Unauthenticated, ReasonInvalid, "the access token is not valid").
			WithCause(errors.New("sub, tuid or sid is missing"))
	}
	claims := Claims{
		Subject: c.Subject, Tenant: c.Tenant, TenantUID: c.TenantUID, Session: c.Session,
		Roles: c.Roles, ExpiresAt: c.ExpiresAt.Time,
	}
	v.verified.put(digest, claims, keys, v.now())
	return claims, nil
}

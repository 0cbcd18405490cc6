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
	"google.golang.org/grpc/metadata"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/tenancy"
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

// refreshEvery bounds how often an unknown kid makes the verifier fetch a
// tenant's keys again: anyone can send a token with a made-up kid.
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

// keySet is one tenant's keys by kid, as one fetch returned them.
type keySet = map[string]ed25519.PublicKey

// maxTenants bounds the tenants whose keys a Verifier holds: a service
// serving more tenants than this fetches again the keys of one it had let
// go, at its next token.
const maxTenants = 1000

// tenantKeys is what a Verifier holds of one tenant's keys.
type tenantKeys struct {
	// keys is nil until the first fetch.
	keys atomic.Pointer[keySet]
	// mu serialises the tenant's fetches and guards lastFetch.
	mu        sync.Mutex
	lastFetch time.Time
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	client identityv1.TokenServiceClient
	issuer string
	parser *jwt.Parser
	now    func() time.Time // the parser's and the cache's clock

	tenants  *tenantKeySets
	verified *verifiedTokens
}

// NewVerifier returns a Verifier that fetches each tenant's keys from
// identity through client and accepts tokens of issuer (identity's
// TENANTRY_ISSUER, "tenantry-identity" by default). A tenant's keys are
// fetched at its first token; call Refresh to fetch them ahead.
func NewVerifier(client identityv1.TokenServiceClient, issuer string) *Verifier {
	v := &Verifier{
		client:   client,
		issuer:   issuer,
		now:      time.Now,
		tenants:  newTenantKeySets(maxTenants),
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
	return v
}

// Refresh fetches a tenant's published keys now.
func (v *Verifier) Refresh(ctx context.Context, tenant tenancy.Tenant) error {
	if tenant.UID == "" || tenant.Slug == "" {
		return errors.New("accesstoken: refresh: the tenant has no uid or slug")
	}
	tk := v.tenants.getOrAdd(tenant.UID)
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return v.fetchLocked(ctx, tenant, tk)
}

// Forget drops what the Verifier holds of a tenant's keys, for a tenant
// the registry has purged (tenancy.Resolver.OnPurge).
func (v *Verifier) Forget(tenantUID string) { v.tenants.forget(tenantUID) }

// fetchLocked fetches a tenant's keys, naming the tenant by its slug as
// every call to identity does; the caller holds tk.mu. Keys fetched for a
// slug that meanwhile names another tenant (a purged tenant's, taken
// again) would verify only tokens of that other tenant, whose tuid Verify
// refuses before looking at a key.
func (v *Verifier) fetchLocked(ctx context.Context, tenant tenancy.Tenant, tk *tenantKeys) error {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Set(tenancy.MetadataTenant, tenant.Slug)
	resp, err := v.client.GetJwks(metadata.NewOutgoingContext(ctx, md), &identityv1.GetJwksRequest{})
	if err != nil {
		return fmt.Errorf("accesstoken: fetch the keys of tenant %s from identity: %w", tenant.Slug, err)
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
	tk.keys.Store(&keys)
	tk.lastFetch = time.Now()
	return nil
}

// keyFor returns the public key a token's kid names among a tenant's keys
// and the key set it is in, fetching the tenant's keys at its first token
// and again (at most once per refreshEvery) when the kid is unknown:
// identity may have rotated the tenant's key.
func (v *Verifier) keyFor(ctx context.Context, tenant tenancy.Tenant, kid string) (ed25519.PublicKey, *keySet, error) {
	tk := v.tenants.getOrAdd(tenant.UID)
	if keys := tk.keys.Load(); keys != nil && (*keys)[kid] != nil {
		return (*keys)[kid], keys, nil
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	keys := tk.keys.Load()
	if keys != nil && (*keys)[kid] != nil {
		return (*keys)[kid], keys, nil
	}
	if keys != nil && time.Since(tk.lastFetch) < refreshEvery {
		return nil, nil, fmt.Errorf("kid %q is not one of the tenant's keys", kid)
	}
	if err := v.fetchLocked(ctx, tenant, tk); err != nil {
		return nil, nil, fetchError{err}
	}
	if keys := tk.keys.Load(); (*keys)[kid] != nil {
		return (*keys)[kid], keys, nil
	}
	return nil, nil, fmt.Errorf("kid %q is not one of the tenant's keys", kid)
}

// fetchError is a failure to fetch the keys: an outage, not a bad token.
type fetchError struct{ err error }

func (e fetchError) Error() string { return e.err.Error() }
func (e fetchError) Unwrap() error { return e.err }

// errOtherTenant is the cause of refusing a token whose tuid names another
// tenant than the request's.
var errOtherTenant = errors.New("the token names another tenant")

// Verify checks token for tenant, the tenant the request is for, and
// returns its claims. Every refusal is a fault.Unauthenticated with one of
// this package's reasons; a failure to fetch the keys is an Unavailable
// fault. A token whose tuid is not the tenant's uid is refused with
// ReasonWrongTenant before any key is looked at (each tenant signs with
// its own keys, so its signature could not be checked with this tenant's
// anyway, and another tenant's token fetches nothing); any other token is
// checked with the tenant's keys only. A token verified before, with the
// keys held now, and not yet expired is taken from the cache of verified
// tokens; the tenant binding is checked on every call.
func (v *Verifier) Verify(ctx context.Context, token string, tenant tenancy.Tenant) (Claims, error) {
	if tenant.UID == "" {
		return Claims{}, wrongTenant()
	}
	digest := sha256.Sum256([]byte(token))
	var (
		c  Claims
		ok bool
	)
	if tk := v.tenants.get(tenant.UID); tk != nil {
		if keys := tk.keys.Load(); keys != nil {
			c, ok = v.verified.get(digest, keys, v.now())
		}
	}
	if ok {
		v.verified.hits.Add(1)
	} else {
		v.verified.misses.Add(1)
		var err error
		if c, err = v.verify(ctx, token, tenant, digest); err != nil {
			return Claims{}, err
		}
	}
	if c.TenantUID != tenant.UID {
		return Claims{}, wrongTenant()
	}
	c.Roles = append([]string{}, c.Roles...) // the caller's own copy
	return c, nil
}

func wrongTenant() error {
	return fault.New(fault.Unauthenticated, ReasonWrongTenant, "this access token belongs to another tenant; log in to this one")
}

// verify checks token's signature and claims with tenant's keys, and
// remembers it when they pass, under digest, the SHA-256 of its text.
func (v *Verifier) verify(ctx context.Context, token string, tenant tenancy.Tenant, digest [sha256.Size]byte) (Claims, error) {
	var (
		c    tokenClaims
		keys *keySet // the key set the signature was checked with
	)
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "at+jwt" {
			return nil, fmt.Errorf("typ %q is not at+jwt", typ)
		}
		if c.TenantUID != "" && c.TenantUID != tenant.UID {
			return nil, errOtherTenant // a token without tuid is invalid, below
		}
		kid, _ := t.Header["kid"].(string)
		key, set, err := v.keyFor(ctx, tenant, kid)
		keys = set
		return key, err
	})
	var fetchErr fetchError
	switch {
	case errors.Is(err, errOtherTenant):
		return Claims{}, wrongTenant()
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

// tenantKeySets holds the keys of at most max tenants, by uid.
type tenantKeySets struct {
	max int

	mu sync.RWMutex
	m  map[string]*tenantKeys
}

func newTenantKeySets(max int) *tenantKeySets {
	return &tenantKeySets{max: max, m: map[string]*tenantKeys{}}
}

// get returns the tenant's keys, or nil.
func (s *tenantKeySets) get(uid string) *tenantKeys {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[uid]
}

// getOrAdd returns the tenant's keys, adding an empty entry if there is
// none. When max tenants are held, an arbitrary one goes first: its tokens
// cost a fetch and a signature check again, nothing else.
func (s *tenantKeySets) getOrAdd(uid string) *tenantKeys {
	if tk := s.get(uid); tk != nil {
		return tk
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tk := s.m[uid]; tk != nil {
		return tk
	}
	if len(s.m) >= s.max {
		for other := range s.m { // map order: arbitrary
			delete(s.m, other)
			break
		}
	}
	tk := &tenantKeys{}
	s.m[uid] = tk
	return tk
}

// forget drops the tenant's keys.
func (s *tenantKeySets) forget(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, uid)
}

// len reports how many tenants' keys are held.
func (s *tenantKeySets) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

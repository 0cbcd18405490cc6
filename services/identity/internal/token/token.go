package token

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tokenType is the typ header of access tokens (RFC 9068).
const tokenType = "at+jwt"

// Bounds of the reload Verify triggers for an unknown kid: it waits for the
// database on a request's path, so it is short, and anyone can send a token
// with a made-up kid, so it is rare.
const (
	unknownKeyReloadEvery   = time.Second
	unknownKeyReloadTimeout = 2 * time.Second
)

// Claims are what an access token says.
type Claims struct {
	// Subject is the user id (sub).
	Subject string
	// Tenant is the slug of the tenant the user belongs to (tid), for
	// people and logs: a slug is reused when a purged tenant's slug is taken
	// again, so it never decides anything.
	Tenant string
	// TenantUID is the immutable id of that tenant (tuid), never reused:
	// what a token is bound to.
	TenantUID string
	// Session is the id of the session the token was issued for (sid).
	Session string
	// Roles are the user's roles in the tenant when the token was issued.
	Roles []string
	// IssuedAt is when the token was signed (iat, and also nbf).
	IssuedAt time.Time
	// ExpiresAt is when the token stops being accepted (exp), give or take
	// ClockLeeway.
	ExpiresAt time.Time
	// ID is the token's unique random id (jti).
	ID string
	// Issuer is the configured issuer (iss).
	Issuer string
}

// accessClaims is the JSON form of Claims.
type accessClaims struct {
	jwt.RegisteredClaims
	Tenant    string   `json:"tid"`
	TenantUID string   `json:"tuid"`
	Session   string   `json:"sid"`
	Roles     []string `json:"roles"`
}

// Issuer signs and verifies access tokens and keeps the signing keys. It is
// safe for concurrent use; Sign and Verify never wait for each other.
type Issuer struct {
	pool   *pgxpool.Pool
	cfg    Config
	log    *slog.Logger
	sealer *keySealer
	parser *jwt.Parser

	keys atomic.Pointer[keySet]
	// verified remembers genuine tokens (see verifiedCache).
	verified *verifiedCache

	// reloadMu serialises reloads, so an older snapshot never replaces a
	// newer one, and lets concurrent Verify calls for the same new kid wait
	// for one reload instead of each running their own.
	reloadMu sync.Mutex
	// lastUnknownKeyReload rate-limits reloads for unknown kids; guarded by
	// reloadMu.
	lastUnknownKeyReload time.Time
}

// NewIssuer prepares the signing keys in the database behind pool: it
// creates tenantry_identity.signing_keys if missing, loads the keys and, if
// none is current, creates one, so that replicas starting together end up
// sharing one. It fails with ErrKeysUndecryptable when cfg.KeyEncryptionKey
// cannot open the stored keys. Call Run to keep the keys fresh.
func NewIssuer(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Issuer, error) {
	if pool == nil {
		return nil, errors.New("token: new issuer: nil pool")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sealer, err := newKeySealer(cfg.KeyEncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	i := &Issuer{
		pool:   pool,
		cfg:    cfg,
		log:    cfg.Logger,
		sealer: sealer,
		parser: jwt.NewParser(
			// Checked before any key is looked up: this is what stops "none"
			// and HS256 signed with the public key as the HMAC secret.
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			// One encoding per token: no padding, no stray bits.
			jwt.WithStrictDecoding(),
			// Claims are checked by checkClaims, which needs to tell an
			// expired token from a bad one.
			jwt.WithoutClaimsValidation(),
		),
	}
	i.keys.Store(emptyKeySet)
	i.verified = newVerifiedCache(verifiedCacheSize)

	if err := createSchema(ctx, pool); err != nil {
		return nil, fmt.Errorf("token: set up signing keys: %w", err)
	}
	if err := i.Reload(ctx); err != nil {
		return nil, err
	}
	for _, alg := range algs {
		if i.keys.Load().currentByAlg[alg] == nil {
			if err := i.changeKeys(ctx, alg, createIfMissing); err != nil {
				return nil, err
			}
		}
	}
	return i, nil
}

// Sign issues an access token for a user's session in a tenant (its slug
// and its uid), signed with the current key, and returns it with the claims
// it carries.
func (i *Issuer) Sign(sub, tenant, tenantUID, session string, roles []string) (token string, claims Claims, err error) {
	if sub == "" || tenant == "" || tenantUID == "" || session == "" {
		return "", Claims{}, fmt.Errorf("token: sign: subject %q, tenant %q, tenant uid %q and session %q must all be set",
			sub, tenant, tenantUID, session)
	}
	key := i.keys.Load().current
	if key == nil {
		return "", Claims{}, errors.New("token: sign: no current signing key")
	}
	// Seconds, as NumericDate carries, so the claims returned here equal
	// those Verify returns.
	now := time.Unix(i.cfg.Now().Unix(), 0).UTC()
	claims = Claims{
		Subject:   sub,
		Tenant:    tenant,
		TenantUID: tenantUID,
		Session:   session,
		Roles:     append([]string{}, roles...), // a copy, and [] rather than null
		IssuedAt:  now,
		ExpiresAt: now.Add(i.cfg.AccessTTL),
		ID:        rand.Text(),
		Issuer:    i.cfg.Issuer,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    claims.Issuer,
			Subject:   claims.Subject,
			IssuedAt:  jwt.NewNumericDate(claims.IssuedAt),
			NotBefore: jwt.NewNumericDate(claims.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(claims.ExpiresAt),
			ID:        claims.ID,
		},
		Tenant:    claims.Tenant,
		TenantUID: claims.TenantUID,
		Session:   claims.Session,
		Roles:     claims.Roles,
	})
	t.Header["kid"] = key.kid
	t.Header["typ"] = tokenType
	token, err = t.SignedString(key.private)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: sign with key %s: %w", key.kid, err)
	}
	return token, claims, nil
}

// Issue is Sign for callers that need only the token and its expiry, such
// as the account rules' AccessTokens.
func (i *Issuer) Issue(userID, tenant, tenantUID, sessionID string, roles []string) (token string, expires time.Time, err error) {
	token, claims, err := i.Sign(userID, tenant, tenantUID, sessionID, roles)
	return token, claims.ExpiresAt, err
}

// Rotate makes a new key current and retires the current one, of every
// algorithm, each in one transaction. The retired key keeps verifying,
// and stays in the JWKS, until every token it signed has expired. Other
// replicas start signing with the new key at their next reload.
func (i *Issuer) Rotate(ctx context.Context) error {
	for _, alg := range algs {
		if err := i.changeKeys(ctx, alg, rotateNow); err != nil {
			return err
		}
	}
	return nil
}

// Reload reads the keys from the database, picking up rotations made by
// other replicas. The keys in use stay as they were if it fails.
func (i *Issuer) Reload(ctx context.Context) error {
	i.reloadMu.Lock()
	defer i.reloadMu.Unlock()
	return i.reloadLocked(ctx)
}

// Run keeps the keys fresh until ctx is done: every cfg.ReloadEvery it
// reloads them, rotates the current key once it is older than
// cfg.RotateEvery, and deletes keys past delete_after. Failures are logged
// and retried at the next tick; the keys in use stay valid meanwhile.
func (i *Issuer) Run(ctx context.Context) {
	ticker := time.NewTicker(i.cfg.ReloadEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := i.maintain(ctx); err != nil && ctx.Err() == nil {
			i.log.ErrorContext(ctx, "signing key maintenance failed; retrying at the next reload",
				slog.Any("error", err))
		}
	}
}

// maintain is one tick of Run. It goes to the lock only when the fresh
// snapshot shows work to do, so most ticks cost one SELECT per replica.
func (i *Issuer) maintain(ctx context.Context) error {
	if err := i.Reload(ctx); err != nil {
		return err
	}
	set, now := i.keys.Load(), i.cfg.Now()
	rotated := false
	for _, alg := range algs {
		if cur := set.currentByAlg[alg]; cur == nil || !now.Before(cur.activateTime.Add(i.cfg.RotateEvery)) {
			// changeKeys re-checks under the lock, so only the first
			// replica to get there rotates, and it deletes expired keys
			// too.
			if err := i.changeKeys(ctx, alg, rotateIfDue); err != nil {
				return err
			}
			rotated = true
		}
	}
	if !rotated && set.stale > 0 {
		n, err := deleteExpiredKeys(ctx, i.pool, now)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		if n > 0 {
			i.log.InfoContext(ctx, "deleted expired signing keys", slog.Int64("count", n))
		}
	}
	return nil
}

// changeKeys applies a change of alg's key in the database, then reloads.
func (i *Issuer) changeKeys(ctx context.Context, alg string, change keyChange) error {
	now := i.cfg.Now()
	next, err := newSigningKey(alg, now)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	res, err := changeKeys(ctx, i.pool, change, next, i.sealer.sealKey(next),
		now, i.cfg.RotateEvery, i.cfg.deleteGrace())
	if err != nil {
		return fmt.Errorf("token: change signing keys: %w", err)
	}
	switch {
	case res.created != "" && res.retired != "":
		i.log.InfoContext(ctx, "rotated signing key", slog.String("alg", alg),
			slog.String("kid", res.created), slog.String("retired_kid", res.retired),
			slog.Time("retired_key_published_until", now.Add(i.cfg.deleteGrace())))
	case res.created != "":
		i.log.InfoContext(ctx, "created signing key", slog.String("alg", alg), slog.String("kid", res.created))
	}
	if res.deleted > 0 {
		i.log.InfoContext(ctx, "deleted expired signing keys", slog.Int64("count", res.deleted))
	}
	return i.Reload(ctx)
}

// reloadLocked does Reload's work; the caller holds reloadMu.
func (i *Issuer) reloadLocked(ctx context.Context) error {
	rows, err := loadKeys(ctx, i.pool)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	set, err := i.buildKeySet(rows, i.cfg.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if old := i.keys.Load().current; set.current != nil && (old == nil || old.kid != set.current.kid) {
		i.log.InfoContext(ctx, "signing with key", slog.String("kid", set.current.kid))
	}
	i.keys.Store(set)
	return nil
}

// buildKeySet turns rows into a key set, opening the current keys' private
// halves. Failing to open one is fatal to the load: it means the configured
// key-encryption key is not the one the keys were sealed with.
func (i *Issuer) buildKeySet(rows []storedKey, now time.Time) (*keySet, error) {
	set := &keySet{byKID: make(map[string]*signingKey, len(rows)), currentByAlg: map[string]*signingKey{}}
	for _, row := range rows {
		k, err := i.openStoredKey(row)
		if err != nil {
			return nil, err
		}
		if row.retireTime == nil {
			set.currentByAlg[k.alg] = k
			if k.alg == AlgEdDSA {
				set.current = k
			}
		} else {
			k.retireTime, k.deleteAfter = *row.retireTime, *row.deleteAfter
			if !k.publishedAt(now) {
				set.stale++
				continue
			}
		}
		set.byKID[k.kid] = k
		set.published = append(set.published, k)
	}
	// Current first (zero retire time), then the most recently retired.
	slices.SortFunc(set.published, func(a, b *signingKey) int {
		if a.retireTime.IsZero() != b.retireTime.IsZero() {
			if a.retireTime.IsZero() {
				return -1
			}
			return 1
		}
		return cmp.Or(b.retireTime.Compare(a.retireTime), cmp.Compare(a.alg, b.alg), cmp.Compare(a.kid, b.kid))
	})
	return set, nil
}

// openStoredKey decodes a row's public key and, for a current key, opens
// its private half.
func (i *Issuer) openStoredKey(row storedKey) (*signingKey, error) {
	k := &signingKey{kid: row.kid, alg: row.alg, activateTime: row.activateTime}
	switch row.alg {
	case AlgEdDSA:
		if len(row.public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("signing key %s: public key has %d bytes, want %d",
				row.kid, len(row.public), ed25519.PublicKeySize)
		}
		k.public = ed25519.PublicKey(row.public)
	case AlgRS256:
		parsed, err := x509.ParsePKIXPublicKey(row.public)
		pub, ok := parsed.(*rsa.PublicKey)
		if err != nil || !ok {
			return nil, fmt.Errorf("signing key %s: public key is not an RSA key in PKIX form", row.kid)
		}
		k.rsaPublic = pub
	default:
		return nil, fmt.Errorf("signing key %s: unknown algorithm %q", row.kid, row.alg)
	}
	if row.retireTime != nil {
		return k, nil
	}
	var err error
	if k.alg == AlgRS256 {
		k.rsaPrivate, err = i.sealer.openRSA(row.kid, row.sealed, k.rsaPublic)
	} else {
		k.private, err = i.sealer.open(row.kid, row.sealed, k.public)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (signing key %s: %v)", ErrKeysUndecryptable, row.kid, err)
	}
	return k, nil
}

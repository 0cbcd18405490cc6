package token

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tokenType is the typ header of access tokens (RFC 9068).
const tokenType = "at+jwt"

// Bounds of the reload of a tenant's keys that a request triggers (Verify
// for an unknown kid, PublicKeys for a missing RSA key): it waits for the
// database on a request's path, so it is short, and anyone can send a
// token with a made-up kid, so it is rare, at most once a second per
// tenant.
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

// Issuer signs and verifies access tokens and keeps the signing keys of
// every tenant. It is safe for concurrent use; Sign and Verify never wait
// for each other.
type Issuer struct {
	pool   *pgxpool.Pool
	cfg    Config
	log    *slog.Logger
	sealer *keySealer
	parser *jwt.Parser

	// tenants holds, by tenant uid, the keys of the tenants this replica
	// has used: a *tenantKeys each.
	tenants sync.Map
	// shared holds the keys that signed for every tenant before keys were
	// per tenant: all retired, they verify the tokens they signed, of any
	// tenant, until their delete_after.
	shared atomic.Pointer[keySet]
	// verified remembers genuine tokens (see verifiedCache).
	verified *verifiedCache

	// forgetMu guards forgotten: the purged tenants whose keys Run has
	// still to delete.
	forgetMu  sync.Mutex
	forgotten map[string]struct{}
}

// NewIssuer prepares the signing keys in the database behind pool: it
// creates tenantry_identity.signing_keys if missing, or upgrades it from
// keys shared by every tenant to keys per tenant (retiring the shared
// ones), and loads the shared keys that still verify. A tenant's keys are
// loaded, or made, when first needed. It fails with ErrKeysUndecryptable
// when cfg.KeyEncryptionKey cannot open the newest stored key. Call Run to
// keep the keys fresh.
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
		forgotten: map[string]struct{}{},
	}
	i.shared.Store(emptyKeySet)
	i.verified = newVerifiedCache(verifiedCacheSize)

	// Before any change to the table: a replica with the wrong
	// key-encryption key must not upgrade it, nor ever make a key.
	shape, err := inspectTable(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if shape.exists {
		if err := i.checkKeyEncryptionKey(ctx, shape); err != nil {
			return nil, err
		}
	}
	now := cfg.Now()
	retired, err := createSchema(ctx, pool, now, cfg.deleteGrace())
	if err != nil {
		return nil, fmt.Errorf("token: set up signing keys: %w", err)
	}
	if retired > 0 {
		i.log.InfoContext(ctx, "retired the signing keys shared by every tenant: each tenant signs with keys of its own from now on",
			slog.Int64("count", retired), slog.Time("retired_keys_published_until", now.Add(cfg.deleteGrace())))
	}
	rows, err := loadSharedKeys(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	shared, err := i.buildKeySet(rows, nil, now)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	i.shared.Store(shared)
	return i, nil
}

// checkKeyEncryptionKey opens the newest key that has a private half, of
// whatever tenant or format, and fails with ErrKeysUndecryptable if the
// configured key-encryption key cannot: it is not the one the other
// replicas use, and keys this replica made would lock them out.
func (i *Issuer) checkKeyEncryptionKey(ctx context.Context, shape tableShape) error {
	row, ok, err := newestSealedKey(ctx, i.pool, shape)
	if err != nil || !ok {
		return err
	}
	row.retireTime, row.deleteAfter = nil, nil // opened as a current key
	_, err = i.openStoredKey(row)
	if err != nil && !errors.Is(err, ErrKeysUndecryptable) {
		return fmt.Errorf("token: %w", err)
	}
	return err
}

// Sign issues an access token for a user's session in a tenant (its slug
// and its uid), signed with the tenant's current key, and returns it with
// the claims it carries. The tenant's first token on this replica waits
// for its keys to be read, and its first token ever for its key to be
// made; every other signature is made in memory.
func (i *Issuer) Sign(ctx context.Context, sub, tenant, tenantUID, session string, roles []string) (token string, claims Claims, err error) {
	if sub == "" || tenant == "" || tenantUID == "" || session == "" {
		return "", Claims{}, fmt.Errorf("token: sign: subject %q, tenant %q, tenant uid %q and session %q must all be set",
			sub, tenant, tenantUID, session)
	}
	uid, ok := canonicalTenantUID(tenantUID)
	if !ok {
		return "", Claims{}, fmt.Errorf("token: sign: tenant uid %q is not a uuid", tenantUID)
	}
	key, err := i.ensureKey(ctx, uid, AlgEdDSA)
	if err != nil {
		return "", Claims{}, err
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
func (i *Issuer) Issue(ctx context.Context, userID, tenant, tenantUID, sessionID string, roles []string) (token string, expires time.Time, err error) {
	token, claims, err := i.Sign(ctx, userID, tenant, tenantUID, sessionID, roles)
	return token, claims.ExpiresAt, err
}

// Rotate makes a new key current and retires the current one, for every
// algorithm the tenant has a key of, each in one transaction. The retired
// key keeps verifying, and stays in the tenant's JWKS, until every token it
// signed has expired. Other replicas start signing with the new key at
// their next reload.
func (i *Issuer) Rotate(ctx context.Context, tenantUID string) error {
	uid, ok := canonicalTenantUID(tenantUID)
	if !ok {
		return fmt.Errorf("token: rotate: tenant uid %q is not a uuid", tenantUID)
	}
	for _, alg := range algs {
		if err := i.changeKeys(ctx, uid, alg, rotateNow); err != nil {
			return err
		}
	}
	return i.reloadIfLoaded(ctx, uid)
}

// ForgetTenant drops the keys of a tenant the registry has purged: at
// once from memory, and from the database at Run's next tick (so that the
// caller, the registry watch's OnPurge hook, is never held up by the
// database). Its tokens stop verifying; it could not use them anyway.
func (i *Issuer) ForgetTenant(tenantUID string) {
	uid, ok := canonicalTenantUID(tenantUID)
	if !ok {
		return
	}
	i.tenants.Delete(uid)
	i.forgetMu.Lock()
	defer i.forgetMu.Unlock()
	i.forgotten[uid] = struct{}{}
}

// Run keeps the keys fresh until ctx is done: every cfg.ReloadEvery it
// deletes the keys of purged tenants, reloads the keys of the tenants this
// replica holds, rotates the current keys of every tenant once older than
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

// rotationsPerTick bounds the rotations of one tick of Run, so that a tick
// stays short (an RSA key takes about 100 ms to make) even when many
// tenants' keys fall due together, as after the upgrade to keys per
// tenant: the rest wait for the next ticks, a few minutes late at most.
const rotationsPerTick = 64

// maintain is one tick of Run. The reload comes first, so that a replica
// signs with a key retired elsewhere for at most about ReloadEvery, as
// deleteGrace assumes.
func (i *Issuer) maintain(ctx context.Context) error {
	var errs []error
	if err := i.deleteForgotten(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := i.Reload(ctx); err != nil {
		errs = append(errs, err)
	}
	now := i.cfg.Now()
	// Replicas find the same keys due; changeKeys re-checks under the
	// tenant's lock, so only the first to get there rotates.
	due, err := loadDueKeys(ctx, i.pool, now.Add(-i.cfg.RotateEvery), rotationsPerTick)
	if err != nil {
		errs = append(errs, fmt.Errorf("token: %w", err))
	}
	for _, d := range due {
		if err := i.changeKeys(ctx, d.tenantUID, d.alg, rotateIfDue); err != nil {
			errs = append(errs, err)
			break
		}
		if err := i.reloadIfLoaded(ctx, d.tenantUID); err != nil {
			errs = append(errs, err)
		}
	}
	n, err := deleteExpiredKeys(ctx, i.pool, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("token: %w", err))
	}
	if n > 0 {
		i.log.InfoContext(ctx, "deleted expired signing keys", slog.Int64("count", n))
	}
	return errors.Join(errs...)
}

// deleteForgotten deletes the keys of the tenants ForgetTenant was told
// of; those it cannot delete now wait for the next tick.
func (i *Issuer) deleteForgotten(ctx context.Context) error {
	i.forgetMu.Lock()
	uids := make([]string, 0, len(i.forgotten))
	for uid := range i.forgotten {
		uids = append(uids, uid)
	}
	i.forgetMu.Unlock()
	for _, uid := range uids {
		n, err := deleteTenantKeys(ctx, i.pool, uid)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		// A token of the tenant verified since ForgetTenant may have loaded
		// the keys again.
		i.tenants.Delete(uid)
		i.forgetMu.Lock()
		delete(i.forgotten, uid)
		i.forgetMu.Unlock()
		i.log.InfoContext(ctx, "deleted the signing keys of a purged tenant",
			slog.String("tenant_uid", uid), slog.Int64("count", n))
	}
	return nil
}

// changeKeys applies a change of a tenant's key of alg in the database;
// the caller reloads.
func (i *Issuer) changeKeys(ctx context.Context, tenantUID, alg string, change keyChange) error {
	now := i.cfg.Now()
	newKey := func() (*signingKey, []byte, error) {
		next, err := newSigningKey(alg, now)
		if err != nil {
			return nil, nil, err
		}
		return next, i.sealer.seal(next, tenantUID), nil
	}
	res, err := changeKeys(ctx, i.pool, tenantUID, alg, change, newKey, now, i.cfg.RotateEvery, i.cfg.deleteGrace())
	if err != nil {
		return fmt.Errorf("token: change signing keys: %w", err)
	}
	switch {
	case res.created != "" && res.retired != "":
		i.log.InfoContext(ctx, "rotated signing key", slog.String("tenant_uid", tenantUID), slog.String("alg", alg),
			slog.String("kid", res.created), slog.String("retired_kid", res.retired),
			slog.Time("retired_key_published_until", now.Add(i.cfg.deleteGrace())))
	case res.created != "":
		i.log.InfoContext(ctx, "created signing key", slog.String("tenant_uid", tenantUID), slog.String("alg", alg),
			slog.String("kid", res.created))
	}
	return nil
}

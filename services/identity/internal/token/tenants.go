package token

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tenantKeys is one tenant's keys as this replica holds them. The map
// Issuer.tenants holds one per tenant loaded; an entry whose keys are nil
// is being loaded, by whoever holds its mu.
type tenantKeys struct {
	uid  string
	keys atomic.Pointer[keySet]
	// mu serialises this tenant's loads and key changes on this replica,
	// so that an older snapshot never replaces a newer one and concurrent
	// callers needing the tenant's first key wait for one creation instead
	// of each running their own.
	mu sync.Mutex
	// lastRequestedReload is when a request last reloaded the tenant's
	// keys (unix nanoseconds; see mayReloadLocked): written under mu, read
	// without it to turn callers away without waiting.
	lastRequestedReload atomic.Int64
}

// canonicalTenantUID returns uid as PostgreSQL prints a uuid (lower case,
// hyphenated), which keys the tenant's keys everywhere (the map, the
// table, the additional data of sealed keys, the advisory lock); false if
// uid is not a uuid. Registry uids are canonical already, so the common
// case allocates nothing.
func canonicalTenantUID(uid string) (string, bool) {
	if len(uid) != 36 {
		return "", false
	}
	upper := false
	for n := 0; n < len(uid); n++ {
		c := uid[n]
		switch {
		case n == 8 || n == 13 || n == 18 || n == 23:
			if c != '-' {
				return "", false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		return strings.ToLower(uid), true
	}
	return uid, true
}

// loaded returns a tenant's keys if this replica holds them: the hot path,
// without locks or the database.
func (i *Issuer) loaded(tenantUID string) *keySet {
	v, ok := i.tenants.Load(tenantUID)
	if !ok {
		return nil
	}
	return v.(*tenantKeys).keys.Load()
}

// lockTenant returns the entry of a tenant, made if missing, with its mu
// held. Release it with unlockTenant.
func (i *Issuer) lockTenant(tenantUID string) *tenantKeys {
	for {
		v, ok := i.tenants.Load(tenantUID)
		if !ok {
			v, _ = i.tenants.LoadOrStore(tenantUID, &tenantKeys{uid: tenantUID})
		}
		tk := v.(*tenantKeys)
		tk.mu.Lock()
		if cur, ok := i.tenants.Load(tenantUID); ok && cur == tk {
			return tk
		}
		// Dropped while this caller waited (unlockTenant, ForgetTenant):
		// start again with the tenant's entry now.
		tk.mu.Unlock()
	}
}

// unlockTenant releases an entry of lockTenant, dropping it if it holds no
// keys: a load that found nothing for a tenant that only an unverified
// token named leaves nothing behind.
func (i *Issuer) unlockTenant(tk *tenantKeys) {
	if tk.keys.Load() == nil {
		i.tenants.CompareAndDelete(tk.uid, tk)
	}
	tk.mu.Unlock()
}

// reloadLocked reads a tenant's keys from the database and makes them the
// ones in use. A tenant without keys is kept as such only with keepEmpty:
// callers that know the tenant exists (it signs, or it is the tenant of
// the request) keep it, so that its next use needs no query; one named by
// an unverified token is not kept. The caller holds tk.mu.
func (i *Issuer) reloadLocked(ctx context.Context, tk *tenantKeys, keepEmpty bool) error {
	rows, err := loadTenantKeys(ctx, i.pool, tk.uid)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	old := tk.keys.Load()
	if len(rows) == 0 && old == nil && !keepEmpty {
		return nil
	}
	set, err := i.buildKeySet(rows, old, i.cfg.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	i.swapKeys(ctx, tk, old, set)
	return nil
}

// swapKeys makes set the tenant's keys in place of old; the caller holds
// tk.mu. A new key (a rotation, maybe on another replica) is logged; a
// tenant's first load, one per tenant and replica, only at debug level.
func (i *Issuer) swapKeys(ctx context.Context, tk *tenantKeys, old, set *keySet) {
	switch {
	case set.current == nil:
	case old == nil || old.current == nil:
		i.log.DebugContext(ctx, "signing with key", slog.String("tenant_uid", tk.uid), slog.String("kid", set.current.kid))
	case old.current.kid != set.current.kid:
		i.log.InfoContext(ctx, "signing with key", slog.String("tenant_uid", tk.uid), slog.String("kid", set.current.kid))
	}
	tk.keys.Store(set)
}

// ensureKey returns the current key of alg of a tenant, loading the
// tenant's keys on its first use on this replica and creating the key if
// the tenant has none yet. Only that first time waits for the database.
func (i *Issuer) ensureKey(ctx context.Context, tenantUID, alg string) (*signingKey, error) {
	if set := i.loaded(tenantUID); set != nil {
		if k := set.currentByAlg[alg]; k != nil {
			return k, nil
		}
	}
	tk := i.lockTenant(tenantUID)
	defer i.unlockTenant(tk)
	// Another caller may have made it while this one waited; another
	// replica may have made it before: read before writing.
	if set := tk.keys.Load(); set != nil && set.currentByAlg[alg] != nil {
		return set.currentByAlg[alg], nil
	}
	if err := i.reloadLocked(ctx, tk, true); err != nil {
		return nil, err
	}
	if k := tk.keys.Load().currentByAlg[alg]; k != nil {
		return k, nil
	}
	if err := i.changeKeys(ctx, tenantUID, alg, createIfMissing); err != nil {
		return nil, err
	}
	if err := i.reloadLocked(ctx, tk, true); err != nil {
		return nil, err
	}
	if k := tk.keys.Load().currentByAlg[alg]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("token: tenant %s has no %s key even after creating one", tenantUID, alg)
}

// keysForVerify returns a tenant's keys to verify a token with, loading
// them on the tenant's first use on this replica, or nil when it has none
// or they cannot be read now (the refusal is logged). trusted says whether
// the tenant is known to exist (see reloadLocked's keepEmpty).
func (i *Issuer) keysForVerify(tenantUID string, trusted bool) *keySet {
	if set := i.loaded(tenantUID); set != nil {
		return set
	}
	ctx, cancel := context.WithTimeout(context.Background(), unknownKeyReloadTimeout)
	defer cancel()
	tk := i.lockTenant(tenantUID)
	defer i.unlockTenant(tk)
	if set := tk.keys.Load(); set != nil {
		return set
	}
	if err := i.reloadLocked(ctx, tk, trusted); err != nil {
		i.log.WarnContext(ctx, "loading a tenant's signing keys to verify a token failed",
			slog.String("tenant_uid", tenantUID), slog.Any("error", err))
		return nil
	}
	return tk.keys.Load()
}

// reloadForUnknownKey reloads a tenant's keys to find kid, which another
// replica may have just created, and returns it if it is there. It
// reloads a tenant at most once per unknownKeyReloadEvery however many
// made-up kids arrive, and callers arriving during a reload wait for it
// rather than start another. A tenant this replica does not hold is not
// reloaded: the caller has just tried to load it.
func (i *Issuer) reloadForUnknownKey(tenantUID, kid string) *signingKey {
	v, ok := i.tenants.Load(tenantUID)
	if !ok {
		return nil
	}
	tk := v.(*tenantKeys)
	tk.mu.Lock()
	defer tk.mu.Unlock()
	set := tk.keys.Load()
	if set == nil {
		return nil
	}
	// Someone else's reload, which we may have waited for, may have found it.
	if key := set.byKID[kid]; key != nil {
		return key
	}
	if !i.mayReloadLocked(tk) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), unknownKeyReloadTimeout)
	defer cancel()
	if err := i.reloadLocked(ctx, tk, true); err != nil {
		i.log.WarnContext(ctx, "reloading signing keys for an unknown kid failed",
			slog.String("tenant_uid", tenantUID), slog.Any("error", err))
		return nil
	}
	return tk.keys.Load().byKID[kid]
}

// reloadForMissingKey reloads a tenant's keys when it has no current key
// of alg, which another replica may have just made, under the same rate
// limit as reloadForUnknownKey; callers within the limit are turned away
// without a lock.
func (i *Issuer) reloadForMissingKey(ctx context.Context, tenantUID, alg string) error {
	if v, ok := i.tenants.Load(tenantUID); ok && i.reloadedRecently(v.(*tenantKeys)) {
		return nil
	}
	tk := i.lockTenant(tenantUID)
	defer i.unlockTenant(tk)
	if set := tk.keys.Load(); set != nil && (set.currentByAlg[alg] != nil || !i.mayReloadLocked(tk)) {
		return nil
	}
	return i.reloadLocked(ctx, tk, true)
}

// reloadedRecently reports whether a request reloaded the tenant's keys
// less than unknownKeyReloadEvery ago.
func (i *Issuer) reloadedRecently(tk *tenantKeys) bool {
	last := tk.lastRequestedReload.Load()
	return last != 0 && i.cfg.Now().Sub(time.Unix(0, last)) < unknownKeyReloadEvery
}

// mayReloadLocked applies the rate limit of reloads that requests trigger
// (for an unknown kid, for a missing key), and counts this one; the caller
// holds tk.mu.
func (i *Issuer) mayReloadLocked(tk *tenantKeys) bool {
	if i.reloadedRecently(tk) {
		return false
	}
	tk.lastRequestedReload.Store(i.cfg.Now().UnixNano())
	return true
}

// reloadIfLoaded reloads a tenant's keys after a change, if this replica
// holds them.
func (i *Issuer) reloadIfLoaded(ctx context.Context, tenantUID string) error {
	v, ok := i.tenants.Load(tenantUID)
	if !ok {
		return nil
	}
	tk := v.(*tenantKeys)
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.keys.Load() == nil {
		return nil
	}
	return i.reloadLocked(ctx, tk, true)
}

// buildKeySet turns rows into a key set. A key that prev holds is reused
// as it is, or copied when it has been retired since, instead of decoded
// again: RSA keys cost real time to parse, and most reloads change
// nothing or retire one key. The other rows must carry their halves; a
// current key's private half is opened, and failing to open it fails the
// load: the configured key-encryption key is not the one the key was
// sealed with.
func (i *Issuer) buildKeySet(rows []storedKey, prev *keySet, now time.Time) (*keySet, error) {
	set := &keySet{byKID: make(map[string]*signingKey, len(rows)), currentByAlg: map[string]*signingKey{}}
	for _, row := range rows {
		if row.deleteAfter != nil && !now.Before(*row.deleteAfter) {
			continue // as good as deleted: Run deletes the row
		}
		var k *signingKey
		if prev != nil {
			k = reuseKey(prev.byKID[row.kid], row)
		}
		if k == nil {
			var err error
			if k, err = i.openStoredKey(row); err != nil {
				return nil, err
			}
		}
		if row.retireTime == nil {
			set.currentByAlg[k.alg] = k
			if k.alg == AlgEdDSA {
				set.current = k
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

// reuseKey returns old for row when it is the same key in the same state,
// a copy of it when row retired it since, and nil when old is nil or
// cannot stand for row.
func reuseKey(old *signingKey, row storedKey) *signingKey {
	switch {
	case old == nil || old.alg != row.alg:
		return nil
	case row.retireTime == nil:
		if old.retireTime.IsZero() {
			return old
		}
		return nil // a retired key is never current again
	case !old.retireTime.IsZero() && old.retireTime.Equal(*row.retireTime) && old.deleteAfter.Equal(*row.deleteAfter):
		return old
	}
	k := *old
	k.private, k.rsaPrivate = nil, nil // a retired key only verifies
	k.retireTime, k.deleteAfter = *row.retireTime, *row.deleteAfter
	return &k
}

// sameKeys reports whether rows, as loadKeyStates read them, are the keys
// set holds, in the same states: then a reload has nothing to change.
func sameKeys(set *keySet, rows []storedKey, now time.Time) bool {
	published := 0
	for _, row := range rows {
		if row.deleteAfter != nil && !now.Before(*row.deleteAfter) {
			continue
		}
		if k := reuseKey(set.byKID[row.kid], row); k == nil || k != set.byKID[row.kid] {
			return false
		}
		published++
	}
	held := 0
	for _, k := range set.byKID {
		if k.publishedAt(now) {
			held++
		}
	}
	return published == held
}

// openStoredKey decodes a row's public key and, for a current key, opens
// its private half.
func (i *Issuer) openStoredKey(row storedKey) (*signingKey, error) {
	k := &signingKey{kid: row.kid, alg: row.alg, activateTime: row.activateTime}
	if row.retireTime != nil {
		k.retireTime, k.deleteAfter = *row.retireTime, *row.deleteAfter
	}
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
	if err := i.sealer.open(k, row.tenantUID, row.sealed); err != nil {
		return nil, fmt.Errorf("%w (signing key %s: %v)", ErrKeysUndecryptable, row.kid, err)
	}
	return k, nil
}

// Reload reads again the keys of every tenant this replica holds, picking
// up rotations made by other replicas. One query reads the states of
// their keys; only the tenants whose keys changed are rebuilt, and only
// keys this replica does not hold yet are read in full and decoded. A
// tenant whose keys are all gone (deleted with the tenant) is forgotten.
// The keys in use stay as they were for a tenant whose reload fails.
func (i *Issuer) Reload(ctx context.Context) error {
	type held struct {
		tk  *tenantKeys
		set *keySet
	}
	var (
		tenants []held
		uids    []string
	)
	i.tenants.Range(func(_, v any) bool {
		tk := v.(*tenantKeys)
		if set := tk.keys.Load(); set != nil {
			tenants = append(tenants, held{tk: tk, set: set})
			uids = append(uids, tk.uid)
		}
		return true
	})
	if len(uids) == 0 {
		return nil
	}
	states, err := loadKeyStates(ctx, i.pool, uids)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	now := i.cfg.Now()
	var missing []string
	for _, h := range tenants {
		for _, row := range states[h.tk.uid] {
			if h.set.byKID[row.kid] == nil && (row.deleteAfter == nil || now.Before(*row.deleteAfter)) {
				missing = append(missing, row.kid)
			}
		}
	}
	var halves map[string]storedKey
	if len(missing) > 0 {
		if halves, err = loadKeyHalves(ctx, i.pool, missing); err != nil {
			return fmt.Errorf("token: %w", err)
		}
	}
	var errs []error
	for _, h := range tenants {
		rows := states[h.tk.uid]
		if sameKeys(h.set, rows, now) {
			continue
		}
		for n, row := range rows {
			if full, ok := halves[row.kid]; ok {
				rows[n] = full
			}
		}
		set, err := i.buildKeySet(rows, h.set, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("token: tenant %s: %w", h.tk.uid, err))
			continue
		}
		h.tk.mu.Lock()
		// A load under the lock since the query read newer keys: keep them.
		if h.tk.keys.Load() == h.set {
			if len(rows) == 0 {
				h.tk.keys.Store(nil)
				i.tenants.CompareAndDelete(h.tk.uid, h.tk)
			} else {
				i.swapKeys(ctx, h.tk, h.set, set)
			}
		}
		h.tk.mu.Unlock()
	}
	return errors.Join(errs...)
}

package token

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaSQL creates the key table as it first was. It lives in a schema of
// its own, outside every tenant: the keys of every tenant are in one table,
// each row naming its tenant by uid (added by tenantSQL), so that rotation
// and cleanup work across tenants in one place and a tenant's schema holds
// nothing that could sign.
//
// The checks keep rows consistent: a retired key has a delete_after, and
// only a retired key may lose its private half.
const schemaSQL = `
CREATE SCHEMA IF NOT EXISTS tenantry_identity;
CREATE TABLE IF NOT EXISTS tenantry_identity.signing_keys (
	kid           text        PRIMARY KEY,
	private_key   bytea,
	public_key    bytea       NOT NULL,
	create_time   timestamptz NOT NULL,
	activate_time timestamptz NOT NULL,
	retire_time   timestamptz,
	delete_after  timestamptz,
	CHECK ((retire_time IS NULL) = (delete_after IS NULL)),
	CHECK (retire_time IS NOT NULL OR private_key IS NOT NULL)
);
`

// algSQL adds the keys' algorithm to a table made before RS256 keys
// existed (its keys are Ed25519), and allows one current key per
// algorithm instead of one in all. Run under lockSQL, once: createSchema
// runs it when the column is missing.
const algSQL = `
ALTER TABLE tenantry_identity.signing_keys
	ADD COLUMN IF NOT EXISTS alg text NOT NULL DEFAULT 'EdDSA' CHECK (alg IN ('EdDSA', 'RS256'));
DROP INDEX IF EXISTS tenantry_identity.signing_keys_one_current;
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_current_per_alg
	ON tenantry_identity.signing_keys (alg) WHERE retire_time IS NULL;`

// tenantColumnSQL, retireSharedSQL and tenantSQL upgrade a table made when
// one key set signed for every tenant: each key now belongs to a tenant
// (tenant_uid, the tenant's immutable uid, never its slug, which a purged
// tenant leaves to be taken again). The keys of before have no tenant and
// never sign again: retireSharedSQL retires them as a rotation would
// (private half erased, published until every token they signed has
// expired). The check then refuses any current key without a tenant, so
// that a replica still running the code of before cannot make a shared
// key again, and the unique index allows one current key per tenant and
// algorithm whatever the code does; the other indexes serve the reads of
// one tenant's keys and Run's search for keys due for rotation. Run under
// lockSQL, in one transaction, once: createSchema runs them when the
// column is missing.
const (
	tenantColumnSQL = `ALTER TABLE tenantry_identity.signing_keys ADD COLUMN tenant_uid uuid`
	retireSharedSQL = `
UPDATE tenantry_identity.signing_keys SET retire_time = $1, delete_after = $2, private_key = NULL
WHERE tenant_uid IS NULL AND retire_time IS NULL`
	tenantSQL = `
ALTER TABLE tenantry_identity.signing_keys
	ADD CONSTRAINT signing_keys_shared_keys_retired CHECK (tenant_uid IS NOT NULL OR retire_time IS NOT NULL);
DROP INDEX IF EXISTS tenantry_identity.signing_keys_one_current_per_alg;
CREATE UNIQUE INDEX signing_keys_one_current_per_tenant
	ON tenantry_identity.signing_keys (tenant_uid, alg) WHERE retire_time IS NULL;
CREATE INDEX signing_keys_by_tenant ON tenantry_identity.signing_keys (tenant_uid);
CREATE INDEX signing_keys_current_by_age ON tenantry_identity.signing_keys (activate_time) WHERE retire_time IS NULL;`
)

// lockSQL serialises changes of the table itself across replicas. The
// one-bigint form keeps it apart from tenantdb's two-int migration locks.
const lockSQL = `SELECT pg_advisory_xact_lock(hashtext('tenantry_identity.signing_keys'))`

// tenantLockSQL serialises the changes of one tenant's keys across
// replicas; its argument is tenantLockID.
const tenantLockSQL = `SELECT pg_advisory_xact_lock($1::bigint)`

// tenantLockSpace is mixed into tenantLockID so that it is unlikely to
// collide with advisory locks other code takes on the same database; a
// collision would only make unrelated callers wait for each other.
const tenantLockSpace = "tenantry_identity.signing_keys\x00"

// tenantLockID returns the advisory lock every change of a tenant's keys
// holds: one bigint, derived from the tenant's uid. A single bigint is a
// key space of its own in PostgreSQL, apart from the two-int form that
// tenantdb's migrations (hashtext(component), hashtext(schema)) and the
// registry use, so it never waits for a migration. It is part of the
// storage format: replicas that derived it differently would not exclude
// each other.
func tenantLockID(tenantUID string) int64 {
	sum := sha256.Sum256([]byte(tenantLockSpace + tenantUID))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// storedKey is one row of signing_keys. public and sealed are nil when the
// row was read without them (loadKeyStates).
type storedKey struct {
	kid          string
	tenantUID    string // "" for a key of before keys were per tenant
	alg          string
	sealed       []byte // nil once retired
	public       []byte
	activateTime time.Time
	retireTime   *time.Time
	deleteAfter  *time.Time
}

// tableShape is what createSchema found of the table.
type tableShape struct {
	exists, hasAlg, hasTenant bool
}

// upToDate reports whether the table needs no DDL.
func (s tableShape) upToDate() bool { return s.exists && s.hasAlg && s.hasTenant }

// inspectTable reports which generation of the table q sees.
func inspectTable(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (tableShape, error) {
	var s tableShape
	err := q.QueryRow(ctx, `
		SELECT to_regclass('tenantry_identity.signing_keys') IS NOT NULL,
			EXISTS (SELECT 1 FROM information_schema.columns
				WHERE table_schema = 'tenantry_identity' AND table_name = 'signing_keys' AND column_name = 'alg'),
			EXISTS (SELECT 1 FROM information_schema.columns
				WHERE table_schema = 'tenantry_identity' AND table_name = 'signing_keys' AND column_name = 'tenant_uid')`,
	).Scan(&s.exists, &s.hasAlg, &s.hasTenant)
	if err != nil {
		return s, fmt.Errorf("look for tenantry_identity.signing_keys: %w", err)
	}
	return s, nil
}

// createSchema creates the key table if it is missing and upgrades an
// older one in place, retiring the keys it had at now with delete_after
// now + deleteGrace. It is idempotent and safe from several replicas at
// once: concurrent CREATE ... IF NOT EXISTS can still fail on a catalog
// unique-index race, so the DDL runs under the advisory lock, deciding on
// the table as seen under it. When the table is up to date, as on every
// start but the first of a version, it runs no DDL, so the service's role
// needs no CREATE privilege then. It returns how many shared keys it
// retired.
func createSchema(ctx context.Context, pool *pgxpool.Pool, now time.Time, deleteGrace time.Duration) (int64, error) {
	shape, err := inspectTable(ctx, pool)
	if err != nil || shape.upToDate() {
		return 0, err
	}
	var retired int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockSQL); err != nil {
			return fmt.Errorf("take signing key lock: %w", err)
		}
		// Another replica may have done it while this one waited.
		shape, err := inspectTable(ctx, tx)
		if err != nil || shape.upToDate() {
			return err
		}
		if _, err := tx.Exec(ctx, schemaSQL); err != nil {
			return fmt.Errorf("create tenantry_identity.signing_keys: %w", err)
		}
		if !shape.hasAlg {
			if _, err := tx.Exec(ctx, algSQL); err != nil {
				return fmt.Errorf("add the algorithm to tenantry_identity.signing_keys: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, tenantColumnSQL); err != nil {
			return fmt.Errorf("add the tenant to tenantry_identity.signing_keys: %w", err)
		}
		tag, err := tx.Exec(ctx, retireSharedSQL, now, now.Add(deleteGrace))
		if err != nil {
			return fmt.Errorf("retire the keys shared by every tenant: %w", err)
		}
		retired = tag.RowsAffected()
		if _, err := tx.Exec(ctx, tenantSQL); err != nil {
			return fmt.Errorf("key tenantry_identity.signing_keys by tenant: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return retired, nil
}

// newestSealedKey returns the most recently created key that still has
// its private half, whatever the generation of the table (see
// inspectTable), for the start-up check of the key-encryption key; false
// when there is none.
func newestSealedKey(ctx context.Context, pool *pgxpool.Pool, shape tableShape) (storedKey, bool, error) {
	alg, tenant := "alg", "tenant_uid::text"
	if !shape.hasAlg {
		alg = "'EdDSA'"
	}
	if !shape.hasTenant {
		tenant = "NULL::text"
	}
	var (
		k   storedKey
		uid *string
	)
	err := pool.QueryRow(ctx, `
		SELECT kid, `+alg+`, `+tenant+`, private_key, public_key, activate_time
		FROM tenantry_identity.signing_keys
		WHERE private_key IS NOT NULL
		ORDER BY create_time DESC, kid
		LIMIT 1`).Scan(&k.kid, &k.alg, &uid, &k.sealed, &k.public, &k.activateTime)
	if errors.Is(err, pgx.ErrNoRows) {
		return storedKey{}, false, nil
	}
	if err != nil {
		return storedKey{}, false, fmt.Errorf("read the newest signing key: %w", err)
	}
	if uid != nil {
		k.tenantUID = *uid
	}
	return k, true, nil
}

// keyColumns are the columns loadKeys and loadTenantKeys read, in
// scanKey's order.
const keyColumns = `kid, tenant_uid::text, alg, private_key, public_key, activate_time, retire_time, delete_after`

// scanKey scans a row of keyColumns.
func scanKey(row pgx.CollectableRow) (storedKey, error) {
	var (
		k   storedKey
		uid *string
	)
	err := row.Scan(&k.kid, &uid, &k.alg, &k.sealed, &k.public, &k.activateTime, &k.retireTime, &k.deleteAfter)
	if uid != nil {
		k.tenantUID = *uid
	}
	return k, err
}

// loadTenantKeys reads every key of a tenant, including those past
// delete_after, which the caller leaves out of the key set.
func loadTenantKeys(ctx context.Context, pool *pgxpool.Pool, tenantUID string) ([]storedKey, error) {
	rows, err := pool.Query(ctx, `SELECT `+keyColumns+` FROM tenantry_identity.signing_keys WHERE tenant_uid = $1`, tenantUID)
	if err != nil {
		return nil, fmt.Errorf("read the signing keys of tenant %s: %w", tenantUID, err)
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("read the signing keys of tenant %s: %w", tenantUID, err)
	}
	return keys, nil
}

// loadSharedKeys reads the keys of before keys were per tenant, without
// their private halves, which they no longer have or need: they are all
// retired.
func loadSharedKeys(ctx context.Context, pool *pgxpool.Pool) ([]storedKey, error) {
	rows, err := pool.Query(ctx, `
		SELECT kid, NULL::text, alg, NULL::bytea, public_key, activate_time, retire_time, delete_after
		FROM tenantry_identity.signing_keys WHERE tenant_uid IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("read the shared signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("read the shared signing keys: %w", err)
	}
	return keys, nil
}

// loadKeyStates reads the keys of several tenants without their public
// and private halves: what Reload compares with the keys it holds, so that
// an unchanged tenant costs a few small rows and no parsing.
func loadKeyStates(ctx context.Context, pool *pgxpool.Pool, tenantUIDs []string) (map[string][]storedKey, error) {
	rows, err := pool.Query(ctx, `
		SELECT kid, tenant_uid::text, alg, NULL::bytea, NULL::bytea, activate_time, retire_time, delete_after
		FROM tenantry_identity.signing_keys WHERE tenant_uid = ANY($1::uuid[])`, tenantUIDs)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	byTenant := make(map[string][]storedKey, len(tenantUIDs))
	for _, k := range keys {
		byTenant[k.tenantUID] = append(byTenant[k.tenantUID], k)
	}
	return byTenant, nil
}

// loadKeyHalves reads the public and sealed private halves of the keys
// named, by kid: those loadKeyStates found that the replica does not hold
// yet.
func loadKeyHalves(ctx context.Context, pool *pgxpool.Pool, kids []string) (map[string]storedKey, error) {
	rows, err := pool.Query(ctx, `SELECT `+keyColumns+` FROM tenantry_identity.signing_keys WHERE kid = ANY($1)`, kids)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	byKID := make(map[string]storedKey, len(keys))
	for _, k := range keys {
		byKID[k.kid] = k
	}
	return byKID, nil
}

// dueKey names a current key due for rotation.
type dueKey struct {
	tenantUID, alg string
}

// loadDueKeys returns the current keys of every tenant activated at or
// before cutoff, the oldest first, at most limit of them.
func loadDueKeys(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time, limit int) ([]dueKey, error) {
	rows, err := pool.Query(ctx, `
		SELECT tenant_uid::text, alg FROM tenantry_identity.signing_keys
		WHERE retire_time IS NULL AND activate_time <= $1
		ORDER BY activate_time, kid
		LIMIT $2`, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("read signing keys due for rotation: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dueKey, error) {
		var d dueKey
		err := row.Scan(&d.tenantUID, &d.alg)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("read signing keys due for rotation: %w", err)
	}
	return due, nil
}

// keyChange says what changeKeys does to a tenant's current key.
type keyChange int

const (
	// createIfMissing adds a current key only if there is none.
	createIfMissing keyChange = iota
	// rotateIfDue replaces the current key only if it is older than the
	// rotation interval. A tenant without a key gets none: its keys may
	// have just been deleted with the tenant.
	rotateIfDue
	// rotateNow replaces the current key, if there is one.
	rotateNow
)

// keyChangeResult says what changeKeys did; empty kids mean nothing.
type keyChangeResult struct {
	retired, created string
}

// changeKeys applies change to the current key of alg of a tenant in one
// transaction under the tenant's advisory lock, deciding on the current key
// as read under the lock: replicas racing to create or rotate queue on the
// lock, and all but the first find the work done. newKey makes the key to
// add and seals it; it runs under the lock, only when a key is added, so
// that replicas which find the work done do not each generate an RSA key
// for nothing, and it holds up only changes of the same tenant's keys.
func changeKeys(ctx context.Context, pool *pgxpool.Pool, tenantUID, alg string, change keyChange,
	newKey func() (*signingKey, []byte, error), now time.Time, rotateEvery, deleteGrace time.Duration,
) (keyChangeResult, error) {
	var res keyChangeResult
	// Read committed, whatever the server default: the read after the lock
	// must see what the previous holder committed, which a snapshot taken
	// before the lock (repeatable read) would hide.
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	// A no-op after Commit; on every other path it undoes the whole change.
	defer func() { _ = tx.Rollback(ctx) }()

	if _, err := tx.Exec(ctx, tenantLockSQL, tenantLockID(tenantUID)); err != nil {
		return res, fmt.Errorf("take the signing key lock of tenant %s: %w", tenantUID, err)
	}
	var (
		currentKID      string
		currentActivate time.Time
	)
	err = tx.QueryRow(ctx, `
		SELECT kid, activate_time FROM tenantry_identity.signing_keys
		WHERE tenant_uid = $1 AND alg = $2 AND retire_time IS NULL`, tenantUID, alg,
	).Scan(&currentKID, &currentActivate)
	haveCurrent := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return res, fmt.Errorf("read the current signing key of tenant %s: %w", tenantUID, err)
	}

	var replace bool
	switch change {
	case createIfMissing:
		replace = !haveCurrent
	case rotateIfDue:
		replace = haveCurrent && !now.Before(currentActivate.Add(rotateEvery))
	case rotateNow:
		replace = haveCurrent
	}
	if !replace {
		return res, nil
	}
	next, sealed, err := newKey()
	if err != nil {
		return res, err
	}
	if haveCurrent {
		// The private half goes: a retired key never signs again, and a key
		// that no longer exists cannot leak.
		if _, err := tx.Exec(ctx, `
			UPDATE tenantry_identity.signing_keys
			SET retire_time = $2, delete_after = $3, private_key = NULL
			WHERE kid = $1`,
			currentKID, now, now.Add(deleteGrace)); err != nil {
			return res, fmt.Errorf("retire signing key %s: %w", currentKID, err)
		}
		res.retired = currentKID
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenantry_identity.signing_keys (kid, tenant_uid, alg, private_key, public_key, create_time, activate_time)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		next.kid, tenantUID, next.alg, sealed, next.storedPublic(), now); err != nil {
		return res, fmt.Errorf("store signing key %s: %w", next.kid, err)
	}
	res.created = next.kid
	if err := tx.Commit(ctx); err != nil {
		return keyChangeResult{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// deleteExpiredKeys deletes keys past delete_after, of every tenant and
// the shared ones. It needs no lock: any number of replicas deleting the
// same rows agree on the outcome.
func deleteExpiredKeys(ctx context.Context, pool *pgxpool.Pool, now time.Time) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM tenantry_identity.signing_keys WHERE delete_after <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired signing keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// deleteTenantKeys deletes every key of a tenant the registry has purged.
// It holds the tenant's lock, so that a rotation running at the same time
// cannot leave a new key behind.
func deleteTenantKeys(ctx context.Context, pool *pgxpool.Pool, tenantUID string) (int64, error) {
	var deleted int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, tenantLockSQL, tenantLockID(tenantUID)); err != nil {
			return fmt.Errorf("take the signing key lock of tenant %s: %w", tenantUID, err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tenantry_identity.signing_keys WHERE tenant_uid = $1`, tenantUID)
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete the signing keys of purged tenant %s: %w", tenantUID, err)
	}
	return deleted, nil
}

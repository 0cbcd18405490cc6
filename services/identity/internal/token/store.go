package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaSQL creates the key table. It lives in a schema of its own, outside
// every tenant: one key set signs for all tenants, and the tid claim says
// which tenant a token belongs to.
//
// The unique index over the rows still current (added by algSQL) allows at
// most one current key per algorithm whatever the code does; the checks
// keep rows consistent: a retired key has a delete_after, and only a
// retired key may lose its private half.
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

// lockSQL serialises every change of keys across replicas. The one-bigint
// form keeps it apart from tenantdb's two-int migration locks.
const lockSQL = `SELECT pg_advisory_xact_lock(hashtext('tenantry_identity.signing_keys'))`

// storedKey is one row of signing_keys.
type storedKey struct {
	kid          string
	alg          string
	sealed       []byte // nil once retired
	public       []byte
	activateTime time.Time
	retireTime   *time.Time
	deleteAfter  *time.Time
}

// createSchema creates the key table if it is missing. It is idempotent and
// safe from several replicas at once: concurrent CREATE ... IF NOT EXISTS
// can still fail on a catalog unique-index race, so the DDL runs under the
// advisory lock. When the table exists, as on every start but the first, it
// runs no DDL, so the service's role needs no CREATE privilege then.
func createSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var exists, hasAlg bool
	if err := pool.QueryRow(ctx, `
		SELECT to_regclass('tenantry_identity.signing_keys') IS NOT NULL,
			EXISTS (SELECT 1 FROM information_schema.columns
				WHERE table_schema = 'tenantry_identity' AND table_name = 'signing_keys' AND column_name = 'alg')`,
	).Scan(&exists, &hasAlg); err != nil {
		return fmt.Errorf("look for tenantry_identity.signing_keys: %w", err)
	}
	if exists && hasAlg {
		return nil
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockSQL); err != nil {
			return fmt.Errorf("take signing key lock: %w", err)
		}
		if _, err := tx.Exec(ctx, schemaSQL); err != nil {
			return fmt.Errorf("create tenantry_identity.signing_keys: %w", err)
		}
		if _, err := tx.Exec(ctx, algSQL); err != nil {
			return fmt.Errorf("add the algorithm to tenantry_identity.signing_keys: %w", err)
		}
		return nil
	})
	return err
}

// loadKeys reads every key, including those past delete_after, which the
// caller leaves out of the key set and counts for deletion.
func loadKeys(ctx context.Context, pool *pgxpool.Pool) ([]storedKey, error) {
	rows, err := pool.Query(ctx, `
		SELECT kid, alg, private_key, public_key, activate_time, retire_time, delete_after
		FROM tenantry_identity.signing_keys`)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storedKey, error) {
		var k storedKey
		err := row.Scan(&k.kid, &k.alg, &k.sealed, &k.public, &k.activateTime, &k.retireTime, &k.deleteAfter)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	return keys, nil
}

// keyChange says what changeKeys does to the current key.
type keyChange int

const (
	// createIfMissing adds a current key only if there is none.
	createIfMissing keyChange = iota
	// rotateIfDue replaces the current key only if it is older than the
	// rotation interval (or missing).
	rotateIfDue
	// rotateNow replaces the current key unconditionally.
	rotateNow
)

// keyChangeResult says what changeKeys did; empty kids mean nothing.
type keyChangeResult struct {
	retired, created string
	deleted          int64
}

// changeKeys applies change to the current key of next's algorithm in one
// transaction under the advisory lock, deciding on the current key as read
// under the lock: replicas racing to create or rotate queue on the lock,
// and all but the first find the work done. Keys past delete_after are
// deleted on the way. sealed is the new key, prepared outside the lock to
// keep it short.
func changeKeys(ctx context.Context, pool *pgxpool.Pool, change keyChange, next *signingKey, sealed []byte,
	now time.Time, rotateEvery, deleteGrace time.Duration,
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

	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		return res, fmt.Errorf("take signing key lock: %w", err)
	}
	var (
		currentKID      string
		currentActivate time.Time
	)
	err = tx.QueryRow(ctx, `
		SELECT kid, activate_time FROM tenantry_identity.signing_keys WHERE retire_time IS NULL AND alg = $1`, next.alg,
	).Scan(&currentKID, &currentActivate)
	haveCurrent := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return res, fmt.Errorf("read current signing key: %w", err)
	}

	replace := !haveCurrent ||
		change == rotateNow ||
		change == rotateIfDue && !now.Before(currentActivate.Add(rotateEvery))
	if replace {
		if haveCurrent {
			// The private half goes: a retired key never signs again, and a
			// key that no longer exists cannot leak.
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
			INSERT INTO tenantry_identity.signing_keys (kid, alg, private_key, public_key, create_time, activate_time)
			VALUES ($1, $2, $3, $4, $5, $5)`,
			next.kid, next.alg, sealed, next.storedPublic(), now); err != nil {
			return res, fmt.Errorf("store signing key %s: %w", next.kid, err)
		}
		res.created = next.kid
	}
	tag, err := tx.Exec(ctx, `DELETE FROM tenantry_identity.signing_keys WHERE delete_after <= $1`, now)
	if err != nil {
		return res, fmt.Errorf("delete expired signing keys: %w", err)
	}
	res.deleted = tag.RowsAffected()
	if err := tx.Commit(ctx); err != nil {
		return keyChangeResult{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// deleteExpiredKeys deletes keys past delete_after. It needs no lock: any
// number of replicas deleting the same rows agree on the outcome.
func deleteExpiredKeys(ctx context.Context, pool *pgxpool.Pool, now time.Time) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM tenantry_identity.signing_keys WHERE delete_after <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired signing keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

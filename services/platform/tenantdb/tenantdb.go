package tenantdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxIdentifierBytes is PostgreSQL's NAMEDATALEN-1: longer identifiers are
// silently truncated, which could alias two tenants to one schema.
const maxIdentifierBytes = 63

// Beginner starts a transaction. *pgxpool.Pool, *pgx.Conn and pgx.Tx (which
// starts a savepoint) all satisfy it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ValidateSchemaName reports whether schema can be used verbatim as a
// PostgreSQL identifier. Any other byte sequence is fine: names are always
// quoted, never interpolated, so quotes, semicolons and unicode are harmless.
func ValidateSchemaName(schema string) error {
	switch {
	case schema == "":
		return fmt.Errorf("tenantdb: %w: empty", ErrInvalidSchemaName)
	case len(schema) > maxIdentifierBytes:
		return fmt.Errorf("tenantdb: %w: %d bytes, PostgreSQL allows at most %d", ErrInvalidSchemaName, len(schema), maxIdentifierBytes)
	case strings.IndexByte(schema, 0) >= 0:
		return fmt.Errorf("tenantdb: %w: contains a NUL byte", ErrInvalidSchemaName)
	}
	return nil
}

// QualifiedName returns table qualified by schema, both quoted, for callers
// that write schema-qualified SQL instead of using InTenant. The schema must
// have passed ValidateSchemaName: quoting drops NUL bytes and PostgreSQL
// truncates long names, either of which would name a different schema.
func QualifiedName(schema, table string) string {
	return pgx.Identifier{schema, table}.Sanitize()
}

// searchPath is the value InTenant gives search_path. pg_temp is listed last
// explicitly because an unlisted pg_temp is searched first, letting a
// session's temporary table shadow a tenant table of the same name.
func searchPath(schema string) string {
	return pgx.Identifier{schema}.Sanitize() + ", pg_temp"
}

// setSearchPathSQL sets the search path only if the schema exists, in the
// same statement. With a missing schema the first valid entry would be
// pg_temp, and PostgreSQL would quietly create fn's unqualified tables there
// as temporary tables that outlive the transaction on the pooled connection.
const setSearchPathSQL = `
	SELECT set_config('search_path', $1, true)
	FROM pg_catalog.pg_namespace WHERE nspname = $2`

// batchSender is a pool or connection that can pipeline statements.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// beginInSchema begins a transaction and sets its search path in one round
// trip, rolling back if the schema does not exist.
func beginInSchema(ctx context.Context, db batchSender, schema string) (pgx.Tx, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	found := false
	b.Queue(setSearchPathSQL, searchPath(schema), schema).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			found = true
		}
		return rows.Err()
	})
	br := db.SendBatch(ctx, b)
	err := br.Close()
	tx := br.Tx()
	if err == nil && !found {
		err = fmt.Errorf("tenantdb: schema %q: %w", schema, ErrSchemaNotFound)
	} else if err != nil {
		err = fmt.Errorf("tenantdb: begin transaction in schema %q: %w", schema, err)
	}
	if err != nil {
		if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("tenantdb: roll back in schema %q: %w", schema, rbErr))
		}
		return nil, err
	}
	return tx, nil
}

// InTenant runs fn in a transaction whose search_path is schema (then
// pg_temp), so fn's unqualified table names resolve to the tenant's tables.
// It commits if fn returns nil and rolls back if fn returns an error or
// panics (the panic is re-raised after the rollback). fn's error is returned
// unchanged so callers can match their own errors.
//
// On a pool or connection, BEGIN and setting the search path go to the
// server in one round trip. The search path is set with set_config(...,
// true), which lasts until the end of the transaction only: it never leaks to the next user of a pooled
// connection and is correct behind PgBouncer in transaction mode. The schema
// name travels as a bind parameter, so no SQL is built from it.
//
// InTenant fails with ErrSchemaNotFound if schema does not exist. Temporary
// tables belong to the connection, not the tenant: create them ON COMMIT DROP,
// or a later transaction on the same pooled connection, for another tenant,
// could find them under a name its own schema lacks.
//
// If db is itself a pgx.Tx, fn runs in a savepoint and the caller's search
// path is restored before the savepoint is released, because a setting made
// in a released savepoint would otherwise last for the rest of the outer
// transaction.
func InTenant(ctx context.Context, db Beginner, schema string, fn func(ctx context.Context, tx pgx.Tx) error) (err error) {
	if err := ValidateSchemaName(schema); err != nil {
		return err
	}
	_, nested := db.(pgx.Tx)
	var (
		tx  pgx.Tx
		set bool // the search path is set already
	)
	if bs, ok := db.(batchSender); ok && !nested {
		tx, err = beginInSchema(ctx, bs, schema)
		set = true
	} else {
		tx, err = db.Begin(ctx)
		if err != nil {
			err = fmt.Errorf("tenantdb: begin transaction in schema %q: %w", schema, err)
		}
	}
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Every other way out rolls back: an error, a panic, and also
		// runtime.Goexit (t.FailNow in a test), which a recover-only
		// check would miss, leaving the connection in an open transaction.
		p := recover()
		rbErr := tx.Rollback(ctx)
		if p != nil {
			panic(p)
		}
		if err != nil && rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("tenantdb: roll back in schema %q: %w", schema, rbErr))
		}
	}()

	var previous string
	if nested {
		if err := tx.QueryRow(ctx, "SELECT current_setting('search_path')").Scan(&previous); err != nil {
			return fmt.Errorf("tenantdb: read search_path: %w", err)
		}
	}
	if !set {
		var path string
		err = tx.QueryRow(ctx, setSearchPathSQL, searchPath(schema), schema).Scan(&path)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("tenantdb: schema %q: %w", schema, ErrSchemaNotFound)
		}
		if err != nil {
			return fmt.Errorf("tenantdb: set search_path to schema %q: %w", schema, err)
		}
	}

	if err := fn(ctx, tx); err != nil {
		return err
	}

	if nested {
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", previous); err != nil {
			return fmt.Errorf("tenantdb: restore search_path: %w", err)
		}
	}
	committed = true // a failed Commit has ended the transaction too
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("tenantdb: commit in schema %q: %w", schema, err)
	}
	return nil
}

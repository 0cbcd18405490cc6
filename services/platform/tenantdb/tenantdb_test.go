package tenantdb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

func TestValidateSchemaName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		schema string
		valid  bool
	}{
		{"a plain name is valid", "tenant_acme", true},
		{"a 63-byte name is valid", strings.Repeat("a", 63), true},
		{"quotes and semicolons are valid", `"; DROP SCHEMA public; --`, true},
		{"unicode is valid", "租户_ünï", true},
		{"an empty name is invalid", "", false},
		{"a 64-byte name is invalid", strings.Repeat("a", 64), false},
		{"a long unicode name is measured in bytes", strings.Repeat("é", 32), false},
		{"a NUL byte is invalid", "tenant\x00public", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tenantdb.ValidateSchemaName(tt.schema)
			if tt.valid {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tenantdb.ErrInvalidSchemaName)
		})
	}
}

func TestQualifiedName(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"tenant_acme"."users"`, tenantdb.QualifiedName("tenant_acme", "users"))
	require.Equal(t, `"a""b"."t"`, tenantdb.QualifiedName(`a"b`, "t"))
}

// errBoom is the error test callbacks fail with.
var errBoom = errors.New("boom")

func TestInTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool := newPool(t, url, tenantdb.PoolOptions{})
	createSchemas(t, pool, "tenant_a", "tenant_b")
	_, err := pool.Exec(ctx, `
		CREATE TABLE tenant_a.items (id int PRIMARY KEY, label text NOT NULL);
		CREATE TABLE tenant_b.other (id int PRIMARY KEY);`)
	require.NoError(t, err)

	t.Run("the search path never outlives the transaction", func(t *testing.T) {
		t.Parallel()
		// One connection, so every statement below runs on the same backend
		// that InTenant used.
		single := newPool(t, url, tenantdb.PoolOptions{MaxConns: 1})
		var before string
		require.NoError(t, single.QueryRow(ctx, "SHOW search_path").Scan(&before))
		require.NotContains(t, before, "tenant_a")

		err := tenantdb.InTenant(ctx, single, "tenant_a", func(ctx context.Context, tx pgx.Tx) error {
			var inside string
			require.NoError(t, tx.QueryRow(ctx, "SHOW search_path").Scan(&inside))
			require.Equal(t, `"tenant_a", pg_temp`, inside)
			return nil
		})
		require.NoError(t, err)
		err = tenantdb.InTenant(ctx, single, "tenant_b", func(context.Context, pgx.Tx) error { return errBoom })
		require.ErrorIs(t, err, errBoom)

		var after string
		require.NoError(t, single.QueryRow(ctx, "SHOW search_path").Scan(&after))
		require.Equal(t, before, after)
	})

	t.Run("unqualified names resolve to the tenant's tables", func(t *testing.T) {
		t.Parallel()
		err := tenantdb.InTenant(ctx, pool, "tenant_a", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id, label) VALUES (1, 'first')")
			return err
		})
		require.NoError(t, err)
		var label string
		require.NoError(t, pool.QueryRow(ctx, "SELECT label FROM tenant_a.items WHERE id = 1").Scan(&label))
		require.Equal(t, "first", label)
	})

	t.Run("a tenant's tables are invisible from another tenant", func(t *testing.T) {
		t.Parallel()
		err := tenantdb.InTenant(ctx, pool, "tenant_b", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT count(*) FROM items")
			return err
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "42P01", pgErr.Code, "undefined_table")
	})

	t.Run("public tables are not on the tenant's path", func(t *testing.T) {
		t.Parallel()
		_, err := pool.Exec(ctx, "CREATE TABLE public.shared_lookup (id int)")
		require.NoError(t, err)
		err = tenantdb.InTenant(ctx, pool, "tenant_b", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT count(*) FROM shared_lookup")
			return err
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "42P01", pgErr.Code, "undefined_table")
	})

	t.Run("temporary tables cannot shadow tenant tables", func(t *testing.T) {
		t.Parallel()
		err := tenantdb.InTenant(ctx, pool, "tenant_a", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `
				INSERT INTO items (id, label) VALUES (100, 'real');
				CREATE TEMPORARY TABLE items (id int, label text) ON COMMIT DROP;`)
			require.NoError(t, err)
			var label string
			require.NoError(t, tx.QueryRow(ctx, "SELECT label FROM items WHERE id = 100").Scan(&label))
			require.Equal(t, "real", label)
			return errBoom // leave tenant_a.items as it was
		})
		require.ErrorIs(t, err, errBoom)
	})

	t.Run("an error rolls everything back and is returned unchanged", func(t *testing.T) {
		t.Parallel()
		err := tenantdb.InTenant(ctx, pool, "tenant_a", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id, label) VALUES (2, 'rolled back')")
			require.NoError(t, err)
			return errBoom
		})
		require.Equal(t, errBoom, err)
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM tenant_a.items WHERE id = 2").Scan(&n))
		require.Zero(t, n)
	})

	t.Run("a panic rolls back, is re-raised and frees the connection", func(t *testing.T) {
		t.Parallel()
		single := newPool(t, url, tenantdb.PoolOptions{MaxConns: 1})
		require.PanicsWithValue(t, "kaboom", func() {
			_ = tenantdb.InTenant(ctx, single, "tenant_a", func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "INSERT INTO items (id, label) VALUES (3, 'panicked')")
				require.NoError(t, err)
				panic("kaboom")
			})
		})
		// A leaked connection would make this wait forever on a one-slot pool.
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var n int
		require.NoError(t, single.QueryRow(waitCtx, "SELECT count(*) FROM tenant_a.items WHERE id = 3").Scan(&n))
		require.Zero(t, n)
	})

	t.Run("an invalid schema name is rejected before reaching the database", func(t *testing.T) {
		t.Parallel()
		called := false
		err := tenantdb.InTenant(ctx, pool, "", func(context.Context, pgx.Tx) error {
			called = true
			return nil
		})
		require.ErrorIs(t, err, tenantdb.ErrInvalidSchemaName)
		require.False(t, called)
	})

	t.Run("a missing schema is reported, not replaced by pg_temp", func(t *testing.T) {
		t.Parallel()
		called := false
		err := tenantdb.InTenant(ctx, pool, "tenant_nobody", func(ctx context.Context, tx pgx.Tx) error {
			called = true
			return nil
		})
		require.ErrorIs(t, err, tenantdb.ErrSchemaNotFound)
		require.ErrorContains(t, err, `"tenant_nobody"`)
		require.False(t, called)
	})

	t.Run("a missing schema frees the connection outside any transaction", func(t *testing.T) {
		t.Parallel()
		single := newPool(t, url, tenantdb.PoolOptions{MaxConns: 1})
		for range 3 {
			err := tenantdb.InTenant(ctx, single, "tenant_nobody", func(context.Context, pgx.Tx) error { return nil })
			require.ErrorIs(t, err, tenantdb.ErrSchemaNotFound)
		}
		// A leaked connection would make this wait forever on a one-slot
		// pool; one left in a transaction would report it.
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := single.Acquire(waitCtx)
		require.NoError(t, err)
		require.Equal(t, byte('I'), conn.Conn().PgConn().TxStatus(), "the connection was returned inside a transaction")
		conn.Release()
		require.NoError(t, tenantdb.InTenant(waitCtx, single, "tenant_a", func(context.Context, pgx.Tx) error { return nil }))
	})

	t.Run("nested in a transaction it restores the caller's search path", func(t *testing.T) {
		t.Parallel()
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		var before string
		require.NoError(t, tx.QueryRow(ctx, "SHOW search_path").Scan(&before))

		err = tenantdb.InTenant(ctx, tx, "tenant_a", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id, label) VALUES (4, 'nested')")
			return err
		})
		require.NoError(t, err)

		var after string
		require.NoError(t, tx.QueryRow(ctx, "SHOW search_path").Scan(&after))
		require.Equal(t, before, after)
		require.NoError(t, tx.Commit(ctx))
		var label string
		require.NoError(t, pool.QueryRow(ctx, "SELECT label FROM tenant_a.items WHERE id = 4").Scan(&label))
		require.Equal(t, "nested", label)
	})

	t.Run("nested in a transaction an error rolls back only the savepoint", func(t *testing.T) {
		t.Parallel()
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		err = tenantdb.InTenant(ctx, tx, "tenant_a", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id, label) VALUES (5, 'undone')")
			require.NoError(t, err)
			return errBoom
		})
		require.ErrorIs(t, err, errBoom)
		_, err = tx.Exec(ctx, "INSERT INTO tenant_a.items (id, label) VALUES (6, 'kept')")
		require.NoError(t, err, "the outer transaction is still usable")
		require.NoError(t, tx.Commit(ctx))

		var ids []int
		rows, err := pool.Query(ctx, "SELECT id FROM tenant_a.items WHERE id IN (5, 6) ORDER BY id")
		require.NoError(t, err)
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
		require.NoError(t, err)
		require.Equal(t, []int{6}, ids)
	})
}

func TestInTenantTreatsHostileNamesAsPlainIdentifiers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, pgtest.NewDatabase(t), tenantdb.PoolOptions{})

	hostile := []string{
		`"; DROP SCHEMA public; --`,
		`it's`,
		`semi;colon`,
		`with space`,
		`Mixed"Quote"s`,
		`back\slash`,
		`$1`,
		`public, pg_catalog`,
		`租户 ünïcødé 🚀`,
	}
	createSchemas(t, pool, hostile...)

	for _, schema := range hostile {
		t.Run(schema, func(t *testing.T) {
			err := tenantdb.InTenant(ctx, pool, schema, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "CREATE TABLE notes (body text NOT NULL); INSERT INTO notes VALUES ('hello')")
				return err
			})
			require.NoError(t, err)

			var body string
			require.NoError(t, pool.QueryRow(ctx, "SELECT body FROM "+tenantdb.QualifiedName(schema, "notes")).Scan(&body))
			require.Equal(t, "hello", body)
		})
	}

	t.Run("nothing else happened", func(t *testing.T) {
		var publicExists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')").Scan(&publicExists))
		require.True(t, publicExists)

		rows, err := pool.Query(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'notes'")
		require.NoError(t, err)
		schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.ElementsMatch(t, hostile, schemas, "notes exist in exactly the hostile schemas")
	})
}

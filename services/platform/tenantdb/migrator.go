package tenantdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"
)

// setupSQL creates the central bookkeeping. It lives outside every tenant
// schema so one query can read the versions of all tenants, and so a tenant
// cannot tamper with its own recorded version.
const setupSQL = `
CREATE SCHEMA IF NOT EXISTS tenantry_meta;
CREATE TABLE IF NOT EXISTS tenantry_meta.schema_versions (
	schema_name text        NOT NULL,
	component   text        NOT NULL,
	version     integer     NOT NULL CHECK (version >= 0),
	applied_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (schema_name, component)
);`

// Result is the outcome of migrating one schema.
type Result struct {
	// Schema is the tenant schema.
	Schema string
	// From is the version recorded before the run, 0 for a new schema.
	From int
	// To is the version recorded after the run; equal to From on failure.
	To int
	// Err is why the schema failed, nil on success.
	Err error
	// Duration is the wall time spent on the schema, including lock waits.
	Duration time.Duration
}

// Migrator applies one component's migrations to tenant schemas and records
// each schema's version in tenantry_meta.schema_versions. It is safe for
// concurrent use, and several processes may migrate the same database at
// once: every schema is migrated under an advisory lock.
type Migrator struct {
	pool       *pgxpool.Pool
	component  string
	migrations []Migration
	logger     *slog.Logger

	setupMu   sync.Mutex
	setupDone atomic.Bool

	// current holds schemas known to be at the latest version, so
	// EnsureMigrated costs a map lookup once a schema has been seen.
	currentMu sync.RWMutex
	current   map[string]struct{}

	// inflight coalesces concurrent first uses of a schema in this process;
	// the advisory lock covers other processes.
	inflight singleflight.Group
}

// NewMigrator returns a Migrator for component (such as "identity"), whose
// version is tracked separately from other components sharing the same
// tenant schemas. migrations must be numbered 1..n, as LoadMigrations
// returns them. A nil logger means slog.Default().
func NewMigrator(pool *pgxpool.Pool, component string, migrations []Migration, logger *slog.Logger) (*Migrator, error) {
	if pool == nil {
		return nil, errors.New("tenantdb: new migrator: nil pool")
	}
	if component == "" {
		return nil, errors.New("tenantdb: new migrator: empty component")
	}
	if err := validateMigrations(migrations); err != nil {
		return nil, fmt.Errorf("tenantdb: new migrator for %s: %w", component, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Migrator{
		pool:       pool,
		component:  component,
		migrations: slices.Clone(migrations),
		logger:     logger.With(slog.String("component", component)),
		current:    make(map[string]struct{}),
	}, nil
}

// Latest returns the version a schema has once fully migrated.
func (m *Migrator) Latest() int { return len(m.migrations) }

// Setup creates the tenantry_meta schema and its schema_versions table if
// they are missing. It is idempotent and safe to run from several processes
// at once: an advisory lock serialises the DDL, since concurrent CREATE ...
// IF NOT EXISTS can still fail on a unique-index race. Migrate and MigrateAll
// call it once per Migrator themselves; calling it at start-up surfaces
// permission problems early.
func (m *Migrator) Setup(ctx context.Context) error {
	m.setupMu.Lock()
	defer m.setupMu.Unlock()
	if m.setupDone.Load() {
		return nil
	}
	if err := SetupBookkeeping(ctx, m.pool); err != nil {
		return err
	}
	m.setupDone.Store(true)
	return nil
}

// SetupBookkeeping creates tenantry_meta.schema_versions, where the
// applied version of every (schema, component) of a database is recorded,
// if it is missing. It is what Migrator.Setup does, for callers of Apply.
func SetupBookkeeping(ctx context.Context, db *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tenantry_meta.setup'))"); err != nil {
			return fmt.Errorf("take setup lock: %w", err)
		}
		if _, err := tx.Exec(ctx, setupSQL); err != nil {
			return fmt.Errorf("create tenantry_meta.schema_versions: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tenantdb: set up migration bookkeeping: %w", err)
	}
	return nil
}

// ensureSetup runs Setup once per Migrator, retrying on later calls if it
// failed.
func (m *Migrator) ensureSetup(ctx context.Context) error {
	if m.setupDone.Load() {
		return nil
	}
	return m.Setup(ctx)
}

// Migrate brings schema to the latest version. It holds a transaction-scoped
// advisory lock on (component, schema), re-reads the recorded version under
// it, and applies every pending migration and records the new version in the
// same transaction: if any migration fails, nothing of this run remains and
// the recorded version is unchanged. A schema recorded at a version newer
// than this binary knows (an older binary during a rolling deploy) is left
// alone and reported as current.
func (m *Migrator) Migrate(ctx context.Context, schema string) (Result, error) {
	start := time.Now()
	res := Result{Schema: schema}
	err := m.migrate(ctx, schema, &res)
	res.Duration = time.Since(start)
	if err != nil {
		res.To = res.From
		res.Err = err
		return res, err
	}
	m.markCurrent(schema)
	return res, nil
}

// migrate does Migrate's work, filling in res.From and res.To.
func (m *Migrator) migrate(ctx context.Context, schema string, res *Result) error {
	if err := ValidateSchemaName(schema); err != nil {
		return err
	}
	if err := m.ensureSetup(ctx); err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("tenantdb: migrate %s in schema %q: %w", m.component, schema, err)
	}

	// Read committed, whatever the server default: each statement after the
	// lock must see what the previous lock holder committed, which a
	// snapshot taken at the lock statement (repeatable read) would hide.
	tx, err := m.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fail(fmt.Errorf("begin: %w", err))
	}
	// A no-op after Commit; on every other path it undoes the whole run.
	defer func() { _ = tx.Rollback(ctx) }()
	from, to, err := Apply(ctx, tx, schema, m.component, m.migrations)
	res.From, res.To = from, from
	if err != nil {
		return fail(err)
	}
	latest := len(m.migrations)
	if from >= latest {
		if from > latest {
			m.logger.WarnContext(ctx, "schema is newer than this binary's migrations; leaving it alone",
				slog.String("schema", schema), slog.Int("version", from), slog.Int("latest_known", latest))
		}
		return nil
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	res.To = to
	m.logger.InfoContext(ctx, "migrated tenant schema",
		slog.String("schema", schema), slog.Int("from", res.From), slog.Int("to", res.To))
	return nil
}

// EnsureMigrated makes sure schema is at the latest version before first use.
// Once a schema is known to be current the check is an in-memory lookup.
// Concurrent first uses share one Migrate call in this process and serialise
// on the advisory lock across processes. The shared migration runs to the end
// even if the caller that started it gives up, so the next request need not
// start over; each caller still stops waiting when its own ctx is done.
func (m *Migrator) EnsureMigrated(ctx context.Context, schema string) error {
	if m.isCurrent(schema) {
		return nil
	}
	done := m.inflight.DoChan(schema, func() (any, error) {
		_, err := m.Migrate(context.WithoutCancel(ctx), schema)
		return nil, err
	})
	select {
	case r := <-done:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("tenantdb: wait for migration of schema %q: %w", schema, context.Cause(ctx))
	}
}

// Forget drops schema from the set known to be current, so the next
// EnsureMigrated checks the database again. Call it after purging a tenant.
func (m *Migrator) Forget(schema string) {
	m.currentMu.Lock()
	defer m.currentMu.Unlock()
	delete(m.current, schema)
}

func (m *Migrator) isCurrent(schema string) bool {
	m.currentMu.RLock()
	defer m.currentMu.RUnlock()
	_, ok := m.current[schema]
	return ok
}

func (m *Migrator) markCurrent(schemas ...string) {
	m.currentMu.Lock()
	defer m.currentMu.Unlock()
	for _, s := range schemas {
		m.current[s] = struct{}{}
	}
}

// DeleteSchemaVersions removes the recorded versions of schema for every
// component. Call it in the transaction that drops the schema: otherwise a
// tenant later created under the same schema name would be taken as already
// migrated. It does nothing if the bookkeeping table was never created.
func DeleteSchemaVersions(ctx context.Context, tx pgx.Tx, schema string) error {
	// Checking first, rather than catching undefined_table, keeps the
	// caller's transaction usable.
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('tenantry_meta.schema_versions') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("tenantdb: look up tenantry_meta.schema_versions: %w", err)
	}
	if !exists {
		return nil
	}
	if _, err := tx.Exec(ctx, "DELETE FROM tenantry_meta.schema_versions WHERE schema_name = $1", schema); err != nil {
		return fmt.Errorf("tenantdb: delete recorded versions of schema %q: %w", schema, err)
	}
	return nil
}

// Apply brings one component of schema to the last of migrations inside
// tx, which the caller owns and commits: under an advisory lock on
// (component, schema), held to the end of tx so concurrent appliers in any
// process take turns, it reads the recorded version, runs the pending
// migrations with the search path set to schema, and records the new
// version in tenantry_meta.schema_versions. A schema already at or past
// the last version is left alone. It returns the versions before and
// after; on error tx must be rolled back. migrations must be numbered
// 1..n; Setup (or SetupBookkeeping) must have run on the database.
//
// Run it in a read committed transaction: after the lock, each statement
// must see what the previous holder committed.
//
// With AsRole, the migrations run with that role's rights and no way out of
// them (see runAsSQL); the role
// may create objects in schema only for their duration: the objects belong
// to the role, and the role keeps no right to create more.
func Apply(ctx context.Context, tx pgx.Tx, schema, component string, migrations []Migration, opts ...ApplyOption) (from, to int, err error) {
	var o applyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := ValidateSchemaName(schema); err != nil {
		return 0, 0, err
	}
	if err := validateMigrations(migrations); err != nil {
		return 0, 0, err
	}
	if err := LockMigration(ctx, tx, schema, component); err != nil {
		return 0, 0, err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
		       COALESCE((SELECT version FROM tenantry_meta.schema_versions
		                 WHERE schema_name = $1 AND component = $2), 0)`,
		schema, component,
	).Scan(&exists, &from); err != nil {
		return 0, 0, fmt.Errorf("read recorded version: %w", err)
	}
	if !exists {
		return from, from, ErrSchemaNotFound
	}
	latest := len(migrations)
	if from >= latest {
		return from, from, nil
	}
	err = InTenant(ctx, tx, schema, func(ctx context.Context, tx pgx.Tx) error {
		if o.role != "" {
			if err := assumeRole(ctx, tx, schema, o.role); err != nil {
				return err
			}
		}
		for _, mig := range migrations[from:] {
			run := func() error { _, err := tx.Exec(ctx, mig.SQL); return err }
			if o.role != "" {
				run = func() error { return runAs(ctx, tx, mig.SQL) }
			}
			if err := run(); err != nil {
				return &MigrationError{Version: mig.Version, Name: mig.Name, Err: err}
			}
		}
		if o.role != "" {
			return dropRole(ctx, tx, schema, o.role)
		}
		return nil
	})
	if err != nil {
		return from, from, err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenantry_meta.schema_versions (schema_name, component, version, applied_at)
		VALUES ($1, $2, $3, now())
		ON CONFLICT (schema_name, component)
		DO UPDATE SET version = EXCLUDED.version, applied_at = EXCLUDED.applied_at`,
		schema, component, latest,
	); err != nil {
		return from, from, fmt.Errorf("record version %d: %w", latest, err)
	}
	return from, latest, nil
}

// MigrationError says which migration failed; Err is PostgreSQL's error.
type MigrationError struct {
	Version int
	Name    string
	Err     error
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("migration %d %s: %v", e.Version, e.Name, e.Err)
}

func (e *MigrationError) Unwrap() error { return e.Err }

// ApplyOption changes how Apply runs a component's migrations.
type ApplyOption func(*applyOptions)

type applyOptions struct{ role string }

// AsRole runs the migrations as role, which must exist; the current user
// must be a superuser or a member of it. Run Apply with AsRole only on
// connections of pools made by NewPool (see assumeRole).
func AsRole(role string) ApplyOption {
	return func(o *applyOptions) { o.role = role }
}

// runAsSQL creates the function component SQL runs in when Apply has a
// role. SET LOCAL ROLE would not do: the SQL could RESET ROLE (or
// set_config('role', ...)) back to the registry's own, privileged user.
// Inside a SECURITY DEFINER function PostgreSQL refuses any change of role
// or session authorization, so the SQL has the role's rights and no way
// out of them. The function lives in pg_temp, private to this session, and
// belongs to the role for the duration of the run.
const runAsSQL = `CREATE OR REPLACE FUNCTION pg_temp.tenantry_run_as(sql text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER AS 'BEGIN EXECUTE sql; END'`

// assumeRole lets role create objects in schema and makes the run-as
// function its own. The connection is marked tainted: what the component
// SQL left in its session (settings, temporary objects, prepared
// statements) must not reach the next user of the pooled connection, so
// pools made by NewPool close it when it is released.
func assumeRole(ctx context.Context, tx pgx.Tx, schema, role string) error {
	taint(tx.Conn())
	r, s := pgx.Identifier{role}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, "GRANT CREATE ON SCHEMA "+s+" TO "+r); err != nil {
		return fmt.Errorf("let role %s create in schema %s: %w", role, schema, err)
	}
	if _, err := tx.Exec(ctx, runAsSQL); err != nil {
		return fmt.Errorf("create run-as function: %w", err)
	}
	if _, err := tx.Exec(ctx, "ALTER FUNCTION pg_temp.tenantry_run_as(text) OWNER TO "+r); err != nil {
		return fmt.Errorf("give run-as function to role %s: %w", role, err)
	}
	return nil
}

// runAs runs one migration's SQL as the role assumeRole prepared.
func runAs(ctx context.Context, tx pgx.Tx, sql string) error {
	_, err := tx.Exec(ctx, "SELECT pg_temp.tenantry_run_as($1)", sql)
	return err
}

// dropRole undoes assumeRole: role may no longer create objects in schema
// (a product service that could would be able to plant functions or
// operators that identity's queries resolve), and the function is gone.
func dropRole(ctx context.Context, tx pgx.Tx, schema, role string) error {
	if _, err := tx.Exec(ctx, "DROP FUNCTION pg_temp.tenantry_run_as(text)"); err != nil {
		return fmt.Errorf("drop run-as function: %w", err)
	}
	r, s := pgx.Identifier{role}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, "REVOKE CREATE ON SCHEMA "+s+" FROM "+r); err != nil {
		return fmt.Errorf("stop role %s creating in schema %s: %w", role, schema, err)
	}
	return nil
}

// tainted holds connections that ran SQL of a component as its role.
var tainted sync.Map // *pgx.Conn → struct{}

func taint(c *pgx.Conn) { tainted.Store(c, struct{}{}) }

// keepAfterRelease is pgxpool's AfterRelease for pools made by NewPool: a
// tainted connection is closed instead of going back to the pool.
func keepAfterRelease(c *pgx.Conn) bool {
	_, was := tainted.LoadAndDelete(c)
	return !was
}

// LockMigration takes, until tx ends, the lock under which Apply migrates
// component in schema, for a caller that must prepare something (a role)
// under it first. Taking it again in the same transaction does not wait.
func LockMigration(ctx context.Context, tx pgx.Tx, schema, component string) error {
	// Two-int form: 64 bits of key space for (component, schema), disjoint
	// from the one-bigint key used by Setup.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", component, schema); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	return nil
}

// Querier is what RecordedVersion needs: a pool, a connection or a
// transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// RecordedVersion returns component's version in schema as recorded in
// tenantry_meta.schema_versions: 0 when it was never applied there (or the
// bookkeeping does not exist yet).
func RecordedVersion(ctx context.Context, db Querier, schema, component string) (int, error) {
	var v int
	err := db.QueryRow(ctx, `SELECT version FROM tenantry_meta.schema_versions WHERE schema_name = $1 AND component = $2`,
		schema, component).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.Is(err, pgx.ErrNoRows) || (errors.As(err, &pgErr) && pgErr.Code == "42P01") {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("tenantdb: read the version of %s in schema %q: %w", component, schema, err)
	}
	return v, nil
}

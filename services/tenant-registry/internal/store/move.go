package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/tenant-registry/internal/fleet"
	"tenantry.dev/tenant-registry/internal/move"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// Moves implements move.Store on the registry database and the placements.
// The SQL of a move is PostgreSQL's logical replication; see package move
// for the phases.
type Moves struct{ s *Store }

var _ move.Store = (*Moves)(nil)

// Moves returns the move store of s.
func (s *Store) Moves() *Moves { return &Moves{s: s} }

// moveSchema holds, in both databases of a move, the marker tables whose
// rows prove the target has caught up, and the fence's trigger function.
const moveSchema = "tenantry_moves"

// names of a move's publication, slot and subscription (one name for all
// three) and marker table: the operation id, which is unique and fits.
func moveName(m *move.Move) string {
	return "tenantry_move_" + strings.ReplaceAll(m.Operation, "-", "")
}

func markerTable(m *move.Move) string {
	return pgx.Identifier{moveSchema, "m_" + strings.ReplaceAll(m.Operation, "-", "")}.Sanitize()
}

const moveColumns = `operation::text, tenant_uid::text, slug, schema_name, source_placement, target_placement, phase,
	grace, source_bytes, fence_start, switch_time, drop_time, update_time`

func scanMove(row pgx.Row) (*move.Move, error) {
	var (
		m                         move.Move
		phase                     string
		fence, switched, dropTime *time.Time
	)
	if err := row.Scan(&m.Operation, &m.TenantUID, &m.Slug, &m.Schema, &m.Source, &m.Target, &phase,
		&m.Grace, &m.SourceBytes, &fence, &switched, &dropTime, &m.UpdateTime); err != nil {
		return nil, err
	}
	m.Phase = move.Phase(phase)
	for _, p := range []struct {
		from *time.Time
		to   *time.Time
	}{{fence, &m.FenceStart}, {switched, &m.SwitchTime}, {dropTime, &m.DropTime}} {
		if p.from != nil {
			*p.to = p.from.UTC()
		}
	}
	m.UpdateTime = m.UpdateTime.UTC()
	return &m, nil
}

// Plan implements move.Store.
func (ms *Moves) Plan(ctx context.Context, slug, target string, grace time.Duration) (*move.Move, error) {
	t, err := ms.s.Get(ctx, slug)
	if err != nil {
		return nil, err
	}
	if t.State != tenant.Active && t.State != tenant.Suspended {
		return nil, fault.New(fault.FailedPrecondition, tenant.ReasonInvalidState,
			"tenant %q is %s; only active and suspended tenants are moved", slug, t.State)
	}
	if !ms.s.HasPlacement(target) {
		return nil, fault.Invalid("placement", tenant.ReasonPlacementUnknown, "placement %q is not configured on this registry", target)
	}
	if target == t.Placement {
		return nil, fault.New(fault.FailedPrecondition, move.ReasonSamePlacement, "tenant %q is in placement %q already", slug, target)
	}
	return &move.Move{TenantUID: t.UID, Slug: t.Slug, Schema: t.Schema, Source: t.Placement, Target: target, Grace: grace}, nil
}

// Begin implements move.Store.
func (ms *Moves) Begin(ctx context.Context, op *fleet.Operation, m *move.Move, owner string, lease time.Duration) error {
	err := pgx.BeginFunc(ctx, ms.s.db, func(tx pgx.Tx) error {
		// The tenant is locked so that its placement cannot change (another
		// move switching) between the plan and the record.
		t, err := ms.s.getBy(ctx, tx, "t.uid = $1", m.TenantUID, true)
		if err != nil {
			return err
		}
		if t.Placement != m.Source {
			return fault.New(fault.Aborted, move.ReasonTenantMoving, "tenant %q moved meanwhile; retry", m.Slug)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tenantry_registry.operations
			(id, kind, request, state, lease_owner, lease_expires, create_time, update_time)
			VALUES ($1, $2, '{}', 'RUNNING', $3, now() + $4::interval, $5, $5)`,
			op.ID, op.Kind, owner, lease.String(), op.CreateTime); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO tenantry_registry.moves
			(operation, tenant_uid, slug, schema_name, source_placement, target_placement, phase, grace, update_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			m.Operation, m.TenantUID, m.Slug, m.Schema, m.Source, m.Target, string(m.Phase), m.Grace, m.UpdateTime)
		return err
	})
	if isUniqueViolation(err) {
		return fault.New(fault.FailedPrecondition, move.ReasonTenantMoving,
			"tenant %q is being moved already; wait for that move (ListOperations) or cancel it", m.Slug).WithCause(err)
	}
	return dbError(err, "begin move")
}

// Get implements move.Store.
func (ms *Moves) Get(ctx context.Context, operation string) (*move.Move, error) {
	m, err := scanMove(ms.s.db.QueryRow(ctx, `SELECT `+moveColumns+` FROM tenantry_registry.moves WHERE operation = $1`, operation))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fleet.ErrNotFound(operation)
	}
	return m, dbError(err, "get move")
}

// Record implements move.Store.
func (ms *Moves) Record(ctx context.Context, m *move.Move) error {
	_, err := ms.s.db.Exec(ctx, `UPDATE tenantry_registry.moves
		SET phase = $2, source_bytes = $3, fence_start = $4, update_time = now() WHERE operation = $1`,
		m.Operation, string(m.Phase), m.SourceBytes, nullTime(m.FenceStart))
	return err
}

// DueOldCopies implements move.Store.
func (ms *Moves) DueOldCopies(ctx context.Context, now time.Time) ([]*move.Move, error) {
	rows, err := ms.s.db.Query(ctx, `SELECT `+moveColumns+` FROM tenantry_registry.moves
		WHERE phase = 'SWITCHED' AND drop_time <= $1 ORDER BY drop_time LIMIT 100`, now)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*move.Move, error) { return scanMove(r) })
}

// activeMove reports whether the tenant with uid is in a move before its
// switch; fleet migrations and purges wait for it.
func activeMove(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, uid string) (bool, error) {
	var moving bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenantry_registry.moves
		WHERE tenant_uid = $1 AND phase IN `+activePhases+`)`, uid).Scan(&moving)
	return moving, err
}

func (ms *Moves) pools(m *move.Move) (src, dst *pgxpool.Pool, err error) {
	src, okSrc := ms.s.placements[m.Source]
	dst, okDst := ms.s.placements[m.Target]
	if !okSrc || !okDst {
		return nil, nil, fault.New(fault.FailedPrecondition, tenant.ReasonPlacementUnknown,
			"placements %q and %q must both be configured on this registry to move tenant %q", m.Source, m.Target, m.Slug)
	}
	return src, dst, nil
}

// Check implements move.Store.
func (ms *Moves) Check(ctx context.Context, m *move.Move) error {
	src, dst, err := ms.pools(m)
	if err != nil {
		return err
	}
	srcID, err := databaseOf(ctx, src)
	if err != nil {
		return fmt.Errorf("inspect placement %q: %w", m.Source, err)
	}
	dstID, err := databaseOf(ctx, dst)
	if err != nil {
		return fmt.Errorf("inspect placement %q: %w", m.Target, err)
	}
	if srcID == dstID {
		return fault.New(fault.FailedPrecondition, move.ReasonUnsupported,
			"placements %q and %q are the same database; a move needs another database", m.Source, m.Target)
	}
	var problems []string
	for _, p := range []struct {
		name string
		pool *pgxpool.Pool
	}{{m.Source, src}, {m.Target, dst}} {
		var walLevel string
		var super bool
		if err := p.pool.QueryRow(ctx, `SELECT current_setting('wal_level'),
			(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)`).Scan(&walLevel, &super); err != nil {
			return fmt.Errorf("inspect placement %q: %w", p.name, err)
		}
		if p.name == m.Source && walLevel != "logical" {
			problems = append(problems, fmt.Sprintf("placement %q has wal_level=%s: set wal_level=logical and restart its PostgreSQL", p.name, walLevel))
		}
		if !super {
			problems = append(problems, fmt.Sprintf("the registry's login on placement %q is not a superuser, which PostgreSQL requires for publications of a schema and for subscriptions", p.name))
		}
	}
	// A table with no replica identity would have its updates and deletes
	// refused on the source once it is published: better not start.
	rows, err := src.Query(ctx, `SELECT c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
		  AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS
		       (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
		ORDER BY 1`, m.Schema)
	if err != nil {
		return fmt.Errorf("inspect the tables of tenant %q: %w", m.Slug, err)
	}
	noKey, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("inspect the tables of tenant %q: %w", m.Slug, err)
	}
	if len(noKey) > 0 {
		problems = append(problems, fmt.Sprintf("tables without a primary key or replica identity cannot be replicated: %s (ALTER TABLE ... REPLICA IDENTITY FULL, or add a primary key)", strings.Join(noKey, ", ")))
	}
	if len(problems) > 0 {
		return fault.New(fault.FailedPrecondition, move.ReasonUnsupported, "tenant %q cannot be moved: %s", m.Slug, strings.Join(problems, "; "))
	}
	return nil
}

// Prepare implements move.Store: the source is brought to every
// component's latest version, then the target schema is built by the same
// migrations, as the same roles, and emptied of what migrations inserted
// (the copy brings the rows). The components are read FOR SHARE until the
// target commits, so both copies have the same tables.
func (ms *Moves) Prepare(ctx context.Context, m *move.Move) (int64, error) {
	src, dst, err := ms.pools(m)
	if err != nil {
		return 0, err
	}
	t := &tenant.Tenant{UID: m.TenantUID, Slug: m.Slug, Schema: m.Schema, Placement: m.Source}
	var size int64
	err = pgx.BeginFunc(ctx, ms.s.db, func(regTx pgx.Tx) error {
		if err := pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error { return ms.s.applyComponents(ctx, regTx, tx, t) }); err != nil {
			return fmt.Errorf("bring the source up to date: %w", err)
		}
		return pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
			if err := dropMarkedSchema(ctx, tx, m.Schema, m.TenantUID, m.Target); err != nil {
				return err
			}
			ident := pgx.Identifier{m.Schema}.Sanitize()
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "COMMENT ON SCHEMA "+ident+" IS '"+schemaMarker(m.TenantUID)+"'"); err != nil {
				return err
			}
			if err := tenantdb.DeleteSchemaVersions(ctx, tx, m.Schema); err != nil {
				return err
			}
			tt := *t
			tt.Placement = m.Target
			if err := ms.s.applyComponents(ctx, regTx, tx, &tt); err != nil {
				return err
			}
			tables, err := tablesOf(ctx, tx, m.Schema)
			if err != nil || len(tables) == 0 {
				return err
			}
			_, err = tx.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", "))
			return err
		})
	})
	if err != nil {
		return 0, err
	}
	err = src.QueryRow(ctx, `SELECT COALESCE(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm')`, m.Schema).Scan(&size)
	return size, err
}

// tablesOf lists the schema's tables, quoted and qualified.
func tablesOf(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, schema string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`, schema)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{schema, n}.Sanitize()
	}
	return out, nil
}

// dropMarkedSchema drops schema in the database behind tx if it is
// tenant uid's (an attempt of this move that did not finish, or an old
// copy left by an earlier move away); a schema of that name that is not
// the tenant's is SCHEMA_TAKEN.
func dropMarkedSchema(ctx context.Context, tx pgx.Tx, schema, uid, placement string) error {
	var comment *string
	err := tx.QueryRow(ctx, `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1`, schema).Scan(&comment)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	case comment == nil || *comment != schemaMarker(uid):
		return fault.New(fault.FailedPrecondition, tenant.ReasonSchemaTaken,
			"schema %q already exists in placement %q and does not belong to this tenant; drop or rename it first", schema, placement)
	}
	_, err = tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// replicationConnString turns a placement's URL into a libpq connection
// string for the subscription: pgx's own parameters (pool_*) are not
// libpq's and would make the subscription fail.
func replicationConnString(pool *pgxpool.Pool) (string, error) {
	u, err := url.Parse(pool.Config().ConnString())
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("the placement's database is not given as a postgres:// URL")
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") || k == "statement_cache_capacity" || k == "description_cache_capacity" || k == "default_query_exec_mode" {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// prepareMoveSchema makes the marker table of m in the database of pool.
func prepareMoveSchema(ctx context.Context, pool *pgxpool.Pool, m *move.Move) error {
	for _, stmt := range []string{
		"CREATE SCHEMA IF NOT EXISTS " + moveSchema,
		"CREATE TABLE IF NOT EXISTS " + markerTable(m) + " (seq bigint PRIMARY KEY)",
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil && pgCode(err) != "42P06" && pgCode(err) != "42P07" && !isUniqueViolation(err) {
			return err
		}
	}
	return nil
}

// Replicate implements move.Store.
func (ms *Moves) Replicate(ctx context.Context, m *move.Move) error {
	src, dst, err := ms.pools(m)
	if err != nil {
		return err
	}
	name := moveName(m)
	for _, p := range []*pgxpool.Pool{src, dst} {
		if err := prepareMoveSchema(ctx, p, m); err != nil {
			return fmt.Errorf("marker table: %w", err)
		}
	}
	var exists bool
	if err := src.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := src.Exec(ctx, "CREATE PUBLICATION "+pgx.Identifier{name}.Sanitize()+
			" FOR TABLES IN SCHEMA "+pgx.Identifier{m.Schema}.Sanitize()+", TABLE "+markerTable(m)); err != nil {
			return fmt.Errorf("create publication: %w", err)
		}
	}
	// The slot is made here rather than by CREATE SUBSCRIPTION, which
	// would wait forever when both placements are databases of one cluster.
	if err := src.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := src.Exec(ctx, `SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')`, name); err != nil {
			return fmt.Errorf("create replication slot: %w", err)
		}
	}
	if err := dst.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		conn, err := replicationConnString(src)
		if err != nil {
			return err
		}
		if _, err := dst.Exec(ctx, "CREATE SUBSCRIPTION "+pgx.Identifier{name}.Sanitize()+" CONNECTION "+quoteLiteral(conn)+
			" PUBLICATION "+pgx.Identifier{name}.Sanitize()+
			" WITH (create_slot = false, slot_name = "+quoteLiteral(name)+", copy_data = true, synchronous_commit = 'on')"); err != nil {
			return fmt.Errorf("create subscription: %w", err)
		}
	}
	return nil
}

// Copied implements move.Store.
func (ms *Moves) Copied(ctx context.Context, m *move.Move) (bool, error) {
	_, dst, err := ms.pools(m)
	if err != nil {
		return false, err
	}
	var total, ready int
	err = dst.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.srsubstate = 'r')
		FROM pg_catalog.pg_subscription_rel r JOIN pg_catalog.pg_subscription s ON s.oid = r.srsubid
		WHERE s.subname = $1`, moveName(m)).Scan(&total, &ready)
	return total > 0 && total == ready, err
}

// RoundTrip implements move.Store. Changes are applied on the target in
// the order they committed on the source, so the marker's arrival proves
// that every transaction committed before it has been applied.
func (ms *Moves) RoundTrip(ctx context.Context, m *move.Move, timeout time.Duration) (time.Duration, error) {
	src, dst, err := ms.pools(m)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	seq := start.UnixNano()
	if _, err := src.Exec(ctx, "INSERT INTO "+markerTable(m)+" (seq) VALUES ($1)", seq); err != nil {
		return 0, fmt.Errorf("write a marker on the source: %w", err)
	}
	deadline := start.Add(timeout)
	wait := 200 * time.Microsecond
	for {
		var arrived bool
		if err := dst.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+markerTable(m)+" WHERE seq = $1)", seq).Scan(&arrived); err != nil {
			return 0, fmt.Errorf("look for the marker on the target: %w", err)
		}
		if arrived {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			var applyErrors int64
			_ = dst.QueryRow(ctx, `SELECT COALESCE(sum(apply_error_count + sync_error_count), 0)::bigint
				FROM pg_catalog.pg_stat_subscription_stats WHERE subname = $1`, moveName(m)).Scan(&applyErrors)
			return 0, fmt.Errorf("the target did not catch up within %s (%d replication errors on the target; see its server log)", timeout, applyErrors)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Millisecond)
	}
}

// fenceTrigger is the name of the trigger that fences each table.
const fenceTrigger = "tenantry_move_fence"

// fenceFunction raises the error services recognise (tenantdb.IsMoving).
// It is SECURITY INVOKER and needs no privilege but USAGE on its schema,
// which every role has, since it only raises.
var fenceFunction = `CREATE OR REPLACE FUNCTION ` + moveSchema + `.fence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'tenant schema % is moving to another placement; retry on its new placement', TG_TABLE_SCHEMA
		USING ERRCODE = '` + tenantdb.MovingSQLState + `',
		      HINT = 'Tenantry services retry this by themselves once the registry announces the new placement.';
END $$`

// A fence waits at most fenceLockTimeout for each table's lock: while it
// waits, the tenant's writers queue behind it, so the wait is kept short
// and retried (fenceAttempts times, then move.ErrFenceBusy: the move tries
// again later). Autovacuum of a freshly filled table holds a lock the
// fence waits for: measured by registry-bench, a 500 ms timeout made
// writers wait up to 411 ms.
const (
	fenceAttempts    = 5
	fenceLockTimeout = "100ms"
)

// Fence implements move.Store: a statement trigger on each table of the
// source schema that refuses every write. CREATE TRIGGER waits for the
// writers holding the table, so every write in flight commits (and is
// replicated) before the fence does, and every write after it is refused.
func (ms *Moves) Fence(ctx context.Context, m *move.Move) error {
	src, _, err := ms.pools(m)
	if err != nil {
		return err
	}
	for _, stmt := range []string{"CREATE SCHEMA IF NOT EXISTS " + moveSchema, fenceFunction,
		"GRANT USAGE ON SCHEMA " + moveSchema + " TO PUBLIC"} {
		// Two moves from one database may make the function at once:
		// "tuple concurrently updated" (XX000) then means it exists.
		if _, err := src.Exec(ctx, stmt); err != nil && pgCode(err) != "42P06" && !isUniqueViolation(err) && !concurrentlyUpdated(err) {
			return fmt.Errorf("fence function: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		err = pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, fenceLockTimeout); err != nil {
				return err
			}
			tables, err := tablesOf(ctx, tx, m.Schema)
			if err != nil {
				return err
			}
			for _, table := range tables {
				if _, err := tx.Exec(ctx, "CREATE OR REPLACE TRIGGER "+fenceTrigger+
					" BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "+table+
					" FOR EACH STATEMENT EXECUTE FUNCTION "+moveSchema+".fence()"); err != nil {
					return err
				}
			}
			return nil
		})
		// 55P03 lock_not_available, 40P01 deadlock_detected: a writer held
		// on; try again rather than queue every later writer behind us.
		busy := pgCode(err) == "55P03" || pgCode(err) == "40P01"
		switch {
		case err == nil || !busy:
			return err
		case attempt == fenceAttempts:
			return fmt.Errorf("%w: %w", move.ErrFenceBusy, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// Unfence implements move.Store.
func (ms *Moves) Unfence(ctx context.Context, m *move.Move) error {
	src, _, err := ms.pools(m)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error {
		tables, err := tablesOf(ctx, tx, m.Schema)
		if err != nil {
			return err
		}
		for _, table := range tables {
			if _, err := tx.Exec(ctx, "DROP TRIGGER IF EXISTS "+fenceTrigger+" ON "+table); err != nil {
				return err
			}
		}
		return nil
	})
}

// CopySequences implements move.Store; it runs while fenced, so the
// values no longer move.
func (ms *Moves) CopySequences(ctx context.Context, m *move.Move) error {
	src, dst, err := ms.pools(m)
	if err != nil {
		return err
	}
	rows, err := src.Query(ctx, `SELECT c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'S'`, m.Schema)
	if err != nil {
		return err
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(seqs) == 0 {
		return err
	}
	type value struct {
		last   int64
		called bool
	}
	values := make([]value, len(seqs))
	b := &pgx.Batch{}
	for i, s := range seqs {
		b.Queue("SELECT last_value, is_called FROM " + pgx.Identifier{m.Schema, s}.Sanitize()).QueryRow(func(row pgx.Row) error {
			return row.Scan(&values[i].last, &values[i].called)
		})
	}
	if err := src.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("read the source's sequences: %w", err)
	}
	b = &pgx.Batch{}
	for i, s := range seqs {
		b.Queue("SELECT pg_catalog.setval($1::regclass, $2, $3)", pgx.Identifier{m.Schema, s}.Sanitize(), values[i].last, values[i].called)
	}
	if err := dst.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("set the target's sequences: %w", err)
	}
	return nil
}

// Switch implements move.Store.
func (ms *Moves) Switch(ctx context.Context, m *move.Move) error {
	err := pgx.BeginFunc(ctx, ms.s.db, func(tx pgx.Tx) error {
		t, err := ms.s.getBy(ctx, tx, "t.uid = $1", m.TenantUID, true)
		if err != nil {
			return err
		}
		if t.Placement != m.Source && t.Placement != m.Target {
			return fmt.Errorf("tenant %q is in placement %q, neither the move's source nor its target", m.Slug, t.Placement)
		}
		if t.Placement == m.Source {
			// Under the placement's lock, as a create into it: a dedicated
			// placement filled since the move began refuses it.
			p, occupied, err := ms.s.lockPlacement(ctx, tx, m.Target, true)
			if err != nil {
				return err
			}
			if err := p.Accepts(true, occupied); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE tenantry_registry.tenants SET placement = $2, update_time = now() WHERE uid = $1`,
				m.TenantUID, m.Target); err != nil {
				return err
			}
			if _, err := commitChange(ctx, tx, m.TenantUID, tenant.Upsert); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `UPDATE tenantry_registry.moves
			SET phase = 'SWITCHED', switch_time = COALESCE(switch_time, now()), drop_time = COALESCE(drop_time, now() + grace),
			    fence_start = COALESCE(fence_start, $2), update_time = now()
			WHERE operation = $1 RETURNING switch_time, drop_time, fence_start`, m.Operation, nullTime(m.FenceStart)).
			Scan(&m.SwitchTime, &m.DropTime, &m.FenceStart)
	})
	if err != nil {
		return err
	}
	m.Phase = move.Switched
	m.SwitchTime, m.DropTime, m.FenceStart = m.SwitchTime.UTC(), m.DropTime.UTC(), m.FenceStart.UTC()
	return nil
}

// Unreplicate implements move.Store.
func (ms *Moves) Unreplicate(ctx context.Context, m *move.Move) error {
	src, dst, err := ms.pools(m)
	if err != nil {
		return err
	}
	name := moveName(m)
	// DROP SUBSCRIPTION also drops the slot (and any of the table copies'
	// slots) on the source.
	if _, err := dst.Exec(ctx, "DROP SUBSCRIPTION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("drop subscription: %w", err)
	}
	// The slot, when the subscription was never made.
	if _, err := src.Exec(ctx, `SELECT pg_catalog.pg_drop_replication_slot(slot_name)
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND NOT active`, name); err != nil {
		return fmt.Errorf("drop replication slot: %w", err)
	}
	if _, err := src.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("drop publication: %w", err)
	}
	for _, p := range []*pgxpool.Pool{src, dst} {
		if _, err := p.Exec(ctx, "DROP TABLE IF EXISTS "+markerTable(m)); err != nil {
			return fmt.Errorf("drop marker table: %w", err)
		}
	}
	return nil
}

// DropTarget implements move.Store.
func (ms *Moves) DropTarget(ctx context.Context, m *move.Move) error {
	_, dst, err := ms.pools(m)
	if err != nil {
		return err
	}
	return ms.dropCopy(ctx, dst, m, m.Target)
}

// DropOldCopy implements move.Store.
func (ms *Moves) DropOldCopy(ctx context.Context, m *move.Move) error {
	src, _, err := ms.pools(m)
	if err != nil {
		return err
	}
	return ms.dropCopy(ctx, src, m, m.Source)
}

// dropCopy drops the tenant's schema in the database of pool, with its
// migration bookkeeping there, and the tenant's roles when the other copy
// is in another cluster (roles belong to a whole cluster: in one cluster
// the other copy's tables are theirs).
func (ms *Moves) dropCopy(ctx context.Context, pool *pgxpool.Pool, m *move.Move, placement string) error {
	src, dst, err := ms.pools(m)
	if err != nil {
		return err
	}
	srcID, err := databaseOf(ctx, src)
	if err != nil {
		return err
	}
	dstID, err := databaseOf(ctx, dst)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := dropMarkedSchema(ctx, tx, m.Schema, m.TenantUID, placement); err != nil {
			return err
		}
		if err := tenantdb.DeleteSchemaVersions(ctx, tx, m.Schema); err != nil {
			return err
		}
		if srcID.cluster != dstID.cluster {
			return dropTenantRoles(ctx, tx, m.TenantUID)
		}
		return nil
	})
}

// database names one database of one PostgreSQL cluster.
type database struct{ cluster, name string }

func databaseOf(ctx context.Context, pool *pgxpool.Pool) (database, error) {
	var d database
	err := pool.QueryRow(ctx, `SELECT system_identifier::text, current_database() FROM pg_catalog.pg_control_system()`).Scan(&d.cluster, &d.name)
	return d, err
}

// dropOldCopiesOf drops the old copies, still in their grace, of tenant
// uid's earlier moves: a purge removes every copy of the tenant.
func (ms *Moves) dropOldCopiesOf(ctx context.Context, uid string) error {
	rows, err := ms.s.db.Query(ctx, `SELECT `+moveColumns+` FROM tenantry_registry.moves WHERE tenant_uid = $1 AND phase = 'SWITCHED'`, uid)
	if err != nil {
		return err
	}
	copies, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*move.Move, error) { return scanMove(r) })
	if err != nil {
		return err
	}
	for _, m := range copies {
		if err := ms.DropOldCopy(ctx, m); err != nil {
			return fmt.Errorf("drop the old copy of tenant %q in placement %q: %w", m.Slug, m.Source, err)
		}
		m.Phase = move.Done
		if err := ms.Record(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func concurrentlyUpdated(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "XX000" && strings.Contains(pgErr.Message, "concurrently updated")
}

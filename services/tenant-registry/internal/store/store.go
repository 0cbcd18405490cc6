// Package store keeps the tenant registry in PostgreSQL with pgx: tenants,
// domains and the ordered change log in the schema tenantry_registry of the
// registry database, and the tenants' own schemas in their placements.
// Tenant schema names only ever reach SQL as quoted identifiers.
package store

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/tenant-registry/internal/move"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// Schema is the registry's own schema in the registry database.
const Schema = "tenantry_registry"

// NotifyChannel is the LISTEN/NOTIFY channel on which every change's
// revision is announced to the registry's replicas.
const NotifyChannel = "tenantry_registry_events"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store implements tenant.Store over PostgreSQL.
type Store struct {
	db         *pgxpool.Pool
	placements map[string]*pgxpool.Pool
	logger     *slog.Logger
	// componentKey derives component tokens and their tenant roles'
	// passwords (tenantrole); without it tenant roles cannot log in.
	componentKey []byte
}

var _ tenant.Store = (*Store)(nil)

// New returns a store on the registry database db. placements maps each
// placement name to the pool of the database holding its tenant schemas; a
// placement whose pool is db itself gets single-transaction provisioning.
// componentKey derives the component tokens and the passwords of tenant
// roles (package tenantrole); nil leaves tenant roles unable to log in.
func New(db *pgxpool.Pool, placements map[string]*pgxpool.Pool, componentKey []byte, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.Default()
	}
	return &Store{db: db, placements: placements, componentKey: componentKey, logger: logger}
}

// Migrate creates or upgrades the registry's own tables. It is safe to run
// from several replicas at once.
func Migrate(ctx context.Context, db *pgxpool.Pool, logger *slog.Logger) error {
	migrations, err := tenantdb.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{Schema}.Sanitize()); err != nil {
		// Concurrent replicas can race on the catalog; the schema exists then.
		if !isUniqueViolation(err) && pgCode(err) != "42P06" {
			return fmt.Errorf("create schema %s: %w", Schema, err)
		}
	}
	m, err := tenantdb.NewMigrator(db, "tenant-registry", migrations, logger)
	if err != nil {
		return err
	}
	if err := m.Setup(ctx); err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, Schema); err != nil {
		return fmt.Errorf("migrate registry schema: %w", err)
	}
	return nil
}

// HasPlacement reports whether a placement is configured.
func (s *Store) HasPlacement(name string) bool {
	_, ok := s.placements[name]
	return ok
}

// sharesRegistryDB reports whether a placement's schemas live in the
// registry database, so provisioning can be one transaction.
func (s *Store) sharesRegistryDB(placement string) bool {
	return s.placements[placement] == s.db
}

// tenantColumns selects a whole tenant, its domains aggregated in order.
const tenantColumns = `t.uid::text, t.slug, t.display_name, t.state, t.schema_name, t.placement, t.labels,
	t.create_time, t.update_time, t.delete_time, t.purge_time, t.revision,
	COALESCE((SELECT json_agg(json_build_object('host', d.host, 'primary', d.is_primary) ORDER BY d.position)
	          FROM tenantry_registry.domains d WHERE d.tenant_uid = t.uid), '[]'::json)`

func scanTenant(row pgx.Row) (*tenant.Tenant, error) {
	var (
		t          tenant.Tenant
		state      string
		deleteTime *time.Time
		purgeTime  *time.Time
	)
	err := row.Scan(&t.UID, &t.Slug, &t.DisplayName, &state, &t.Schema, &t.Placement, &t.Labels,
		&t.CreateTime, &t.UpdateTime, &deleteTime, &purgeTime, &t.Revision, &t.Domains)
	if err != nil {
		return nil, err
	}
	t.State = tenant.State(state)
	compact(&t)
	t.CreateTime = t.CreateTime.UTC()
	t.UpdateTime = t.UpdateTime.UTC()
	if deleteTime != nil {
		t.DeleteTime = deleteTime.UTC()
	}
	if purgeTime != nil {
		t.PurgeTime = purgeTime.UTC()
	}
	if len(t.Labels) == 0 {
		t.Labels = nil
	}
	if len(t.Domains) == 0 {
		t.Domains = nil
	}
	return &t, nil
}

func collectTenants(rows pgx.Rows) ([]*tenant.Tenant, error) {
	defer rows.Close()
	var out []*tenant.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Create implements tenant.Store.
func (s *Store) Create(ctx context.Context, t *tenant.Tenant, requestID string, accepts func(*tenant.Placement, bool) error) (*tenant.Tenant, error) {
	var reqID *string
	if requestID != "" {
		reqID = &requestID
	}
	labels := t.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	var created *tenant.Tenant
	err := s.inPlacement(ctx, t.Placement, accepts, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tenantry_registry.tenants
			(uid, slug, display_name, state, schema_name, placement, labels, create_request_id, create_time, update_time, revision)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 0)`,
			t.UID, t.Slug, t.DisplayName, string(tenant.Provisioning), t.Schema, t.Placement, labels, reqID, t.CreateTime)
		if err != nil {
			return err
		}
		state := tenant.Provisioning
		if s.sharesRegistryDB(t.Placement) {
			if err := s.ensureSchemaTx(ctx, tx, t); err != nil {
				return err
			}
			if err := s.applyComponents(ctx, tx, tx, t); err != nil {
				return err
			}
			state = tenant.Active
		}
		if _, err := tx.Exec(ctx, `UPDATE tenantry_registry.tenants SET state = $2 WHERE uid = $1`, t.UID, string(state)); err != nil {
			return err
		}
		created, err = commitChange(ctx, tx, t.UID, tenant.Upsert)
		return err
	})
	if err != nil {
		if _, ok := fault.As(err); ok {
			return nil, err
		}
		if isUniqueViolation(err) {
			return nil, s.explainTaken(ctx, t.Slug, err)
		}
		return nil, dbError(err, "create tenant")
	}
	return created, nil
}

// explainTaken turns a unique violation on create into a fault that says
// what holds the slug.
func (s *Store) explainTaken(ctx context.Context, slug string, cause error) error {
	existing, err := s.Get(ctx, slug)
	if err == nil && existing.State == tenant.Deleted {
		return fault.New(fault.AlreadyExists, tenant.ReasonTenantExists,
			"tenant %q exists and is deleted until its purge at %s; undelete it or wait for the purge",
			slug, existing.PurgeTime.Format(time.RFC3339)).WithCause(cause)
	}
	return fault.New(fault.AlreadyExists, tenant.ReasonTenantExists, "tenant %q already exists", slug).WithCause(cause)
}

// ByRequestID implements tenant.Store.
func (s *Store) ByRequestID(ctx context.Context, requestID string) (*tenant.Tenant, error) {
	row := s.db.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenantry_registry.tenants t WHERE t.create_request_id = $1`, requestID)
	t, err := scanTenant(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.New(fault.NotFound, tenant.ReasonTenantNotFound, "no tenant was created by request %s", requestID)
	}
	if err != nil {
		return nil, dbError(err, "get tenant by request id")
	}
	return t, nil
}

// Get implements tenant.Store.
func (s *Store) Get(ctx context.Context, slug string) (*tenant.Tenant, error) {
	return s.getBy(ctx, s.db, "t.slug = $1", slug, false)
}

func (s *Store) getBy(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, where string, arg any, lock bool) (*tenant.Tenant, error) {
	sql := `SELECT ` + tenantColumns + ` FROM tenantry_registry.tenants t WHERE ` + where
	if lock {
		sql += ` FOR UPDATE OF t`
	}
	t, err := scanTenant(q.QueryRow(ctx, sql, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenant.ErrNotFound(fmt.Sprint(arg))
	}
	if err != nil {
		return nil, dbError(err, "get tenant")
	}
	return t, nil
}

// List implements tenant.Store.
func (s *Store) List(ctx context.Context, q tenant.ListQuery, limit int) ([]*tenant.Tenant, error) {
	var (
		where = []string{"t.slug > $1"}
		args  = []any{q.AfterSlug}
	)
	if q.State != "" {
		args = append(args, string(q.State))
		where = append(where, fmt.Sprintf("t.state = $%d", len(args)))
	} else if !q.ShowDeleted {
		where = append(where, "t.state <> 'DELETED'")
	}
	if len(q.Labels) > 0 {
		args = append(args, q.Labels)
		where = append(where, fmt.Sprintf("t.labels @> $%d::jsonb", len(args)))
	}
	args = append(args, limit)
	sql := fmt.Sprintf(`SELECT %s FROM tenantry_registry.tenants t WHERE %s ORDER BY t.slug LIMIT $%d`,
		tenantColumns, strings.Join(where, " AND "), len(args))
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbError(err, "list tenants")
	}
	ts, err := collectTenants(rows)
	if err != nil {
		return nil, dbError(err, "list tenants")
	}
	return ts, nil
}

// Mutate implements tenant.Store.
func (s *Store) Mutate(ctx context.Context, slug string, change func(*tenant.Tenant) error) (*tenant.Tenant, error) {
	var updated *tenant.Tenant
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		cur, err := s.getBy(ctx, tx, "t.slug = $1", slug, true)
		if err != nil {
			return err
		}
		next := cur.Clone()
		if err := change(next); err != nil {
			return err
		}
		labels := next.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		_, err = tx.Exec(ctx, `UPDATE tenantry_registry.tenants
			SET display_name = $2, state = $3, labels = $4, update_time = $5, delete_time = $6, purge_time = $7
			WHERE uid = $1`,
			next.UID, next.DisplayName, string(next.State), labels, next.UpdateTime,
			nullTime(next.DeleteTime), nullTime(next.PurgeTime))
		if err != nil {
			return err
		}
		if !sameDomains(cur.Domains, next.Domains) {
			if err := writeDomains(ctx, tx, next); err != nil {
				return err
			}
		}
		updated, err = commitChange(ctx, tx, next.UID, tenant.Upsert)
		return err
	})
	if err != nil {
		if _, ok := fault.As(err); ok {
			return nil, err
		}
		if isUniqueViolation(err) {
			return nil, fault.New(fault.AlreadyExists, tenant.ReasonDomainTaken,
				"a domain of this request already belongs to another tenant").WithCause(err)
		}
		return nil, dbError(err, "update tenant")
	}
	return updated, nil
}

func writeDomains(ctx context.Context, tx pgx.Tx, t *tenant.Tenant) error {
	if _, err := tx.Exec(ctx, `DELETE FROM tenantry_registry.domains WHERE tenant_uid = $1`, t.UID); err != nil {
		return err
	}
	for i, d := range t.Domains {
		_, err := tx.Exec(ctx, `INSERT INTO tenantry_registry.domains (host, tenant_uid, is_primary, position) VALUES ($1, $2, $3, $4)`,
			d.Host, t.UID, d.Primary, i)
		if err != nil {
			return err
		}
	}
	return nil
}

func sameDomains(a, b []tenant.Domain) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// commitChange is the last step of every change: it takes the next revision
// (serialising changes in commit order), stamps the tenant with it, appends
// the event and announces it. It returns the tenant as stored.
func commitChange(ctx context.Context, tx pgx.Tx, uid string, kind tenant.EventKind) (*tenant.Tenant, error) {
	var rev int64
	if err := tx.QueryRow(ctx, `UPDATE tenantry_registry.revision SET value = value + 1 RETURNING value`).Scan(&rev); err != nil {
		return nil, err
	}
	var t *tenant.Tenant
	if kind == tenant.Upsert {
		if _, err := tx.Exec(ctx, `UPDATE tenantry_registry.tenants SET revision = $2 WHERE uid = $1`, uid, rev); err != nil {
			return nil, err
		}
		var err error
		if t, err = scanTenant(tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenantry_registry.tenants t WHERE t.uid = $1`, uid)); err != nil {
			return nil, err
		}
	} else {
		var err error
		if t, err = scanTenant(tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenantry_registry.tenants t WHERE t.uid = $1`, uid)); err != nil {
			return nil, err
		}
		t.Revision = rev
		if _, err := tx.Exec(ctx, `DELETE FROM tenantry_registry.tenants WHERE uid = $1`, uid); err != nil {
			return nil, err
		}
	}
	body, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tenantry_registry.events (revision, kind, tenant_uid, tenant) VALUES ($1, $2, $3, $4)`,
		rev, string(kind), uid, body); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, fmt.Sprint(rev)); err != nil {
		return nil, err
	}
	return t, nil
}

// schemaMarker is the comment that marks a schema as a tenant's own, so the
// registry never adopts or drops a schema it did not create.
func schemaMarker(uid string) string {
	return "tenantry tenant " + uid
}

// ensureSchemaTx creates t's schema inside tx unless it exists already as
// t's schema.
func (s *Store) ensureSchemaTx(ctx context.Context, tx pgx.Tx, t *tenant.Tenant) error {
	if _, err := uuid.Parse(t.UID); err != nil {
		return fmt.Errorf("tenant uid %q is not a UUID: %w", t.UID, err)
	}
	var comment *string
	err := tx.QueryRow(ctx, `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1`, t.Schema).Scan(&comment)
	switch {
	case err == nil && comment != nil && *comment == schemaMarker(t.UID):
		return nil
	case err == nil:
		return fault.New(fault.FailedPrecondition, tenant.ReasonSchemaTaken,
			"schema %q already exists in placement %q and does not belong to this tenant; drop or rename it first", t.Schema, t.Placement)
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	// A spare schema, prepared with the components' tables, is renamed
	// rather than a new one built.
	if claimed, err := s.claimSpare(ctx, tx, t); err != nil || claimed {
		return err
	}
	ident := pgx.Identifier{t.Schema}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		return err
	}
	// The marker holds only a parsed UUID, so quoting it as a literal is safe.
	if _, err := tx.Exec(ctx, "COMMENT ON SCHEMA "+ident+" IS '"+schemaMarker(t.UID)+"'"); err != nil {
		return err
	}
	// A schema of this name may have existed before (and been dropped by
	// hand): its migration bookkeeping must not make the new one look current.
	return tenantdb.DeleteSchemaVersions(ctx, tx, t.Schema)
}

// EnsureSchema implements tenant.Store.
func (s *Store) EnsureSchema(ctx context.Context, t *tenant.Tenant) error {
	pool, ok := s.placements[t.Placement]
	if !ok {
		return fault.New(fault.FailedPrecondition, tenant.ReasonPlacementUnknown,
			"placement %q of tenant %q is not configured on this registry", t.Placement, t.Slug)
	}
	var err error
	// A concurrent creator (a retry, the reconciler of another replica) may
	// win the race to the catalog; the second attempt then sees its schema.
	for attempt := 0; attempt < 2; attempt++ {
		// The components are read FOR SHARE in the registry database until
		// the schema's migrations commit, so none changes meanwhile.
		err = pgx.BeginFunc(ctx, s.db, func(regTx pgx.Tx) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if err := s.ensureSchemaTx(ctx, tx, t); err != nil {
					return err
				}
				return s.applyComponents(ctx, regTx, tx, t)
			})
		})
		if err == nil || !(isUniqueViolation(err) || pgCode(err) == "42P06") {
			break
		}
	}
	if err != nil {
		return dbError(err, "create schema")
	}
	return nil
}

// Purge implements tenant.Store. The registry row stays locked while the
// schema is dropped, and a tenant past its purge time can no longer be
// undeleted, so a crash at any point leaves a Deleted tenant that the next
// purge finishes.
func (s *Store) Purge(ctx context.Context, uid string) (*tenant.Tenant, error) {
	moving, err := activeMove(ctx, s.db, uid)
	if err != nil {
		return nil, dbError(err, "purge tenant")
	}
	if moving {
		return nil, fault.New(fault.FailedPrecondition, move.ReasonTenantMoving,
			"tenant %s is being moved; it is purged once the move ends (or is cancelled)", uid)
	}
	if err := s.Moves().dropOldCopiesOf(ctx, uid); err != nil {
		return nil, dbError(err, "purge tenant")
	}
	var purged *tenant.Tenant
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		t, err := s.getBy(ctx, tx, "t.uid = $1", uid, true)
		if err != nil {
			return err
		}
		if t.State != tenant.Deleted || t.PurgeTime.After(time.Now()) {
			return fault.New(fault.FailedPrecondition, tenant.ReasonInvalidState,
				"tenant %q is %s with purge time %s; only deleted tenants past their purge time are purged",
				t.Slug, t.State, t.PurgeTime.Format(time.RFC3339))
		}
		if s.sharesRegistryDB(t.Placement) {
			err = dropSchemaTx(ctx, tx, t)
		} else if pool, ok := s.placements[t.Placement]; ok {
			err = pgx.BeginFunc(ctx, pool, func(ptx pgx.Tx) error { return dropSchemaTx(ctx, ptx, t) })
		} else {
			err = fault.New(fault.FailedPrecondition, tenant.ReasonPlacementUnknown,
				"placement %q of tenant %q is not configured on this registry; cannot drop its schema", t.Placement, t.Slug)
		}
		if err != nil {
			return err
		}
		purged, err = commitChange(ctx, tx, t.UID, tenant.Purge)
		return err
	})
	if err != nil {
		return nil, dbError(err, "purge tenant")
	}
	return purged, nil
}

func dropSchemaTx(ctx context.Context, tx pgx.Tx, t *tenant.Tenant) error {
	var comment *string
	err := tx.QueryRow(ctx, `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1`, t.Schema).Scan(&comment)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// Already dropped, by an earlier attempt that did not finish.
	case err != nil:
		return err
	case comment == nil || *comment != schemaMarker(t.UID):
		return fault.New(fault.FailedPrecondition, tenant.ReasonSchemaTaken,
			"schema %q in placement %q is not marked as tenant %s's; refusing to drop it", t.Schema, t.Placement, t.UID)
	default:
		if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{t.Schema}.Sanitize()+" CASCADE"); err != nil {
			return err
		}
	}
	if err := dropTenantRoles(ctx, tx, t.UID); err != nil {
		return err
	}
	return tenantdb.DeleteSchemaVersions(ctx, tx, t.Schema)
}

// Stuck implements tenant.Store.
func (s *Store) Stuck(ctx context.Context, before time.Time) ([]*tenant.Tenant, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tenantColumns+` FROM tenantry_registry.tenants t
		WHERE t.state = 'PROVISIONING' AND t.create_time <= $1 ORDER BY t.create_time`, before)
	if err != nil {
		return nil, dbError(err, "find unfinished tenants")
	}
	return collectTenants(rows)
}

// Expired implements tenant.Store.
func (s *Store) Expired(ctx context.Context, now time.Time) ([]*tenant.Tenant, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tenantColumns+` FROM tenantry_registry.tenants t
		WHERE t.state = 'DELETED' AND t.purge_time <= $1 ORDER BY t.purge_time`, now)
	if err != nil {
		return nil, dbError(err, "find expired tenants")
	}
	return collectTenants(rows)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func isUniqueViolation(err error) bool { return pgCode(err) == "23505" }

// dbError hides database details from clients: the fault says only
// "internal error" and keeps err, with what was being done, for the logs.
// Faults pass through unchanged, and nil stays nil.
// A database outage needs nothing here: grpcerr finds it in the cause chain
// (platform/pgoutage) and answers UNAVAILABLE, the same in every service.
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := fault.As(err); ok {
		return err // the domain's own verdict, already fit for clients
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fault.New(fault.Internal, "INTERNAL", "internal error").WithCause(fmt.Errorf("%s: %w", what, err))
}

// knownStates lets compact replace per-row copies of a state by one string.
var knownStates = map[tenant.State]tenant.State{
	tenant.Provisioning: tenant.Provisioning,
	tenant.Active:       tenant.Active,
	tenant.Suspended:    tenant.Suspended,
	tenant.Deleted:      tenant.Deleted,
}

var (
	placementsMu sync.Mutex
	placementStr = map[string]string{}
)

// compact makes a tenant about to be held in memory share the strings that
// repeat across tenants (state, placement, a schema equal to the slug), so
// that the index of 100,000 tenants stays small.
func compact(t *tenant.Tenant) {
	if st, ok := knownStates[t.State]; ok {
		t.State = st
	}
	if t.Schema == t.Slug {
		t.Schema = t.Slug
	}
	placementsMu.Lock()
	if p, ok := placementStr[t.Placement]; ok {
		t.Placement = p
	} else if len(placementStr) < 1024 {
		placementStr[t.Placement] = t.Placement
	}
	placementsMu.Unlock()
}

package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/tenant-registry/internal/component"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// Components implements component.Store on the registry's database and its
// placements.
type Components struct{ s *Store }

var _ component.Store = (*Components)(nil)

// Components returns the component store of s.
func (s *Store) Components() *Components { return &Components{s: s} }

// SetupPlacements creates the migration bookkeeping
// (tenantry_meta.schema_versions) in every placement, where the applied
// versions of the components of each tenant schema are recorded.
func (s *Store) SetupPlacements(ctx context.Context) error {
	for name, pool := range s.placements {
		if err := tenantdb.SetupBookkeeping(ctx, pool); err != nil {
			return fmt.Errorf("placement %q: %w", name, err)
		}
	}
	return nil
}

// Register implements component.Store. Registrations of one component take
// turns on an advisory lock; the component's row is locked FOR UPDATE, so a
// tenant being provisioned (which reads the components FOR SHARE until its
// schema is migrated) either finishes before the check of what tenants have
// applied, or starts after the write and applies the new list.
func (cs *Components) Register(ctx context.Context, c *component.Component, decide func(stored *component.Component, applied int) error) (*component.Component, error) {
	if err := cs.s.tryMigrations(ctx, c); err != nil {
		return nil, err
	}
	var out *component.Component
	err := pgx.BeginFunc(ctx, cs.s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('tenantry_registry.components'), hashtext($1))`, c.ID); err != nil {
			return err
		}
		stored, err := getComponent(ctx, tx, c.ID, true, true)
		if err != nil && fault.KindOf(err) != fault.NotFound {
			return err
		}
		applied := 0
		if stored != nil {
			if applied, err = cs.s.maxApplied(ctx, c.ID); err != nil {
				return err
			}
		}
		if err := decide(stored, applied); err != nil {
			return err
		}
		if stored != nil && rewritesStored(stored, c) {
			// Spares are no tenant's, so they do not hold a version back;
			// but one prepared with the old SQL must not become a tenant.
			if err := cs.s.dropSparesWith(ctx, c.ID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tenantry_registry.components (id, display_name, create_time, update_time)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name, update_time = EXCLUDED.update_time`,
			c.ID, c.DisplayName, c.CreateTime, c.UpdateTime); err != nil {
			return err
		}
		// The applied versions are rewritten identical (decide checked
		// their checksums); the others are replaced.
		if _, err := tx.Exec(ctx, `DELETE FROM tenantry_registry.component_migrations WHERE component = $1`, c.ID); err != nil {
			return err
		}
		rows := make([][]any, len(c.Migrations))
		for i, m := range c.Migrations {
			rows[i] = []any{c.ID, m.Version, m.Name, m.SQL, m.Checksum}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{Schema, "component_migrations"},
			[]string{"component", "version", "name", "sql", "checksum"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		out, err = getComponent(ctx, tx, c.ID, true, false)
		return err
	})
	if err != nil {
		return nil, dbError(err, "register component")
	}
	return out, nil
}

// tryMigrations runs c's migrations in a scratch schema of the registry
// database, in a transaction it always rolls back, so that SQL which does
// not run is refused when it is registered rather than when the next
// tenant is provisioned.
func (s *Store) tryMigrations(ctx context.Context, c *component.Component) error {
	scratch := "tenantry_try_" + uuid.NewString()[:8]
	tx, err := s.db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return dbError(err, "try migrations")
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{scratch}.Sanitize()); err != nil {
		return dbError(err, "try migrations")
	}
	// Every component shares the tenant's schema: c is tried among the
	// others, in the order CreateTenant applies them (by id), so that a
	// table name two components both create is refused now, not by every
	// CreateTenant from then on. Each runs as a role of its own, with the
	// rights a tenant's role has; what they record goes with the rollback.
	others, err := listComponents(ctx, tx, true, "")
	if err != nil {
		return dbError(err, "try migrations")
	}
	all := []*component.Component{c}
	for _, o := range others {
		if o.ID != c.ID {
			all = append(all, o)
		}
	}
	slices.SortFunc(all, func(a, b *component.Component) int { return strings.Compare(a.ID, b.ID) })
	for _, o := range all {
		_, _, err := s.applyComponent(ctx, tx, scratch, roleOf{name: scratch}, o)
		if err == nil {
			continue
		}
		if o.ID == c.ID {
			return migrationFault(c.ID, err, "component.migrations")
		}
		if version, message, ok := failedMigration(err); ok {
			return fault.Invalid("component.migrations", component.ReasonMigrationFailed,
				"with component %q registered as given, the migration %d of component %q fails in a tenant schema: %s (components share each tenant's schema: name your tables after your component)",
				c.ID, version, o.ID, message).WithMetadata("component", o.ID)
		}
		return dbError(err, "try migrations")
	}
	return nil
}

// failedMigration returns the version of the component's migration that
// failed and PostgreSQL's message about it (the component's own SQL), or
// ok false when err is no such failure.
func failedMigration(err error) (version int, message string, ok bool) {
	var me *tenantdb.MigrationError
	var pgErr *pgconn.PgError
	if errors.As(err, &me) && errors.As(err, &pgErr) {
		return me.Version, pgErr.Message, true
	}
	return 0, "", false
}

// migrationFault turns a migration's failure into what a caller can act
// on: PostgreSQL's message about the component's own SQL, naming the
// version. Other errors stay internal.
func migrationFault(id string, err error, field string) error {
	if version, message, ok := failedMigration(err); ok {
		return (&component.MigrationError{Component: id, Version: version, Message: message}).Fault(field)
	}
	return dbError(err, "run migrations of component "+id)
}

// maxApplied returns the highest version of a component recorded for any
// schema in any placement.
// Spare schemas are not counted: they are no tenant's, and a change of
// their SQL drops them (dropSparesWith).
func (s *Store) maxApplied(ctx context.Context, id string) (int, error) {
	highest := 0
	for name, pool := range s.placements {
		var v int
		err := pool.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM tenantry_meta.schema_versions
			WHERE component = $1 AND NOT starts_with(schema_name, $2)`, id, sparePrefix).Scan(&v)
		if err != nil {
			return 0, fmt.Errorf("read applied versions of %s in placement %q: %w", id, name, err)
		}
		highest = max(highest, v)
	}
	return highest, nil
}

// Get implements component.Store.
func (cs *Components) Get(ctx context.Context, id string) (*component.Component, error) {
	var out *component.Component
	err := pgx.BeginFunc(ctx, cs.s.db, func(tx pgx.Tx) error {
		var err error
		out, err = getComponent(ctx, tx, id, true, false)
		return err
	})
	if err != nil {
		return nil, dbError(err, "get component")
	}
	return out, nil
}

// List implements component.Store.
func (cs *Components) List(ctx context.Context, withSQL bool) ([]*component.Component, error) {
	out, err := listComponents(ctx, cs.s.db, withSQL, "")
	if err != nil {
		return nil, dbError(err, "list components")
	}
	return out, nil
}

// TenantVersions implements component.Store.
func (cs *Components) TenantVersions(ctx context.Context, t *tenant.Tenant) ([]component.Applied, error) {
	pool, ok := cs.s.placements[t.Placement]
	if !ok {
		return nil, fault.New(fault.FailedPrecondition, tenant.ReasonPlacementUnknown,
			"placement %q of tenant %q is not configured on this registry", t.Placement, t.Slug)
	}
	rows, err := pool.Query(ctx, `SELECT component, version, applied_at FROM tenantry_meta.schema_versions WHERE schema_name = $1`, t.Schema)
	if err != nil {
		return nil, dbError(err, "read tenant component versions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (component.Applied, error) {
		var a component.Applied
		err := r.Scan(&a.Component, &a.Version, &a.ApplyTime)
		return a, err
	})
	if err != nil {
		return nil, dbError(err, "read tenant component versions")
	}
	return out, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// listComponents reads components in id order, with their migrations
// (without SQL unless withSQL), locked as lock says ("", "FOR SHARE").
func listComponents(ctx context.Context, q querier, withSQL bool, lock string) ([]*component.Component, error) {
	rows, err := q.Query(ctx, `SELECT id, display_name, create_time, update_time FROM tenantry_registry.components ORDER BY id `+lock)
	if err != nil {
		return nil, err
	}
	comps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*component.Component, error) {
		c := &component.Component{}
		err := r.Scan(&c.ID, &c.DisplayName, &c.CreateTime, &c.UpdateTime)
		return c, err
	})
	if err != nil || len(comps) == 0 {
		return comps, err
	}
	sqlCol := "''"
	if withSQL {
		sqlCol = "sql"
	}
	rows, err = q.Query(ctx, `SELECT component, version, name, `+sqlCol+`, checksum
		FROM tenantry_registry.component_migrations ORDER BY component, version`)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*component.Component, len(comps))
	for _, c := range comps {
		byID[c.ID] = c
	}
	for rows.Next() {
		var (
			id string
			m  component.Migration
		)
		if err := rows.Scan(&id, &m.Version, &m.Name, &m.SQL, &m.Checksum); err != nil {
			rows.Close()
			return nil, err
		}
		if c := byID[id]; c != nil {
			c.Migrations = append(c.Migrations, m)
		}
	}
	return comps, rows.Err()
}

// getComponent reads one component with its migrations' SQL; forUpdate
// locks its row. A missing one is a NotFound fault.
func getComponent(ctx context.Context, tx pgx.Tx, id string, withSQL, forUpdate bool) (*component.Component, error) {
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE"
	}
	c := &component.Component{}
	err := tx.QueryRow(ctx, `SELECT id, display_name, create_time, update_time FROM tenantry_registry.components WHERE id = $1`+lock, id).
		Scan(&c.ID, &c.DisplayName, &c.CreateTime, &c.UpdateTime)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, component.ErrNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT version, name, sql, checksum FROM tenantry_registry.component_migrations
		WHERE component = $1 ORDER BY version`, id)
	if err != nil {
		return nil, err
	}
	c.Migrations, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (component.Migration, error) {
		var m component.Migration
		err := r.Scan(&m.Version, &m.Name, &m.SQL, &m.Checksum)
		return m, err
	})
	if !withSQL {
		for i := range c.Migrations {
			c.Migrations[i].SQL = ""
		}
	}
	return c, err
}

// applyComponents brings every registered component of t's new schema to
// its latest version, in schemaTx (the transaction that created or found
// the schema). The components are read FOR SHARE in regTx, so none changes
// until the caller commits; regTx and schemaTx are one transaction when
// the placement is the registry database.
func (s *Store) applyComponents(ctx context.Context, regTx, schemaTx pgx.Tx, t *tenant.Tenant) error {
	comps, err := listComponents(ctx, regTx, true, "FOR SHARE")
	if err != nil {
		return fmt.Errorf("read components: %w", err)
	}
	for _, c := range comps {
		if _, _, err := s.applyComponent(ctx, schemaTx, t.Schema, tenantRoleOf(t.UID), c); err != nil {
			if f := migrationFault(c.ID, err, "tenant"); f != nil {
				if ff, ok := fault.As(f); ok && ff.Kind == fault.InvalidArgument {
					// The component's SQL fails in this schema: the tenant
					// cannot be provisioned until the component is fixed.
					return fault.New(fault.FailedPrecondition, component.ReasonMigrationFailed, "%s", ff.Message).
						WithMetadata("component", c.ID)
				}
				return f
			}
		}
	}
	return nil
}

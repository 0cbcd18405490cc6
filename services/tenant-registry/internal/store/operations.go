package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/tenant-registry/internal/component"
	"tenantry.dev/tenant-registry/internal/fleet"
)

// Operations implements fleet.Store on the registry database and its
// placements.
type Operations struct{ s *Store }

var _ fleet.Store = (*Operations)(nil)

// Operations returns the operation store of s.
func (s *Store) Operations() *Operations { return &Operations{s: s} }

const operationColumns = `id::text, kind, request, state, total, done, failed, cancel_requested,
	COALESCE(error_code, 0), COALESCE(error_message, ''), COALESCE(error_reason, ''), planned,
	create_time, update_time, end_time`

func scanOperation(row pgx.Row) (*fleet.Operation, error) {
	var (
		op      fleet.Operation
		request []byte
		planned []byte
		end     *time.Time
	)
	err := row.Scan(&op.ID, &op.Kind, &request, &op.State, &op.Total, &op.Done, &op.Failed, &op.CancelRequested,
		&op.ErrCode, &op.ErrMessage, &op.ErrReason, &planned, &op.CreateTime, &op.UpdateTime, &end)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(request, &op.Request); err != nil {
		return nil, fmt.Errorf("decode operation request: %w", err)
	}
	if len(planned) > 0 {
		if err := json.Unmarshal(planned, &op.Planned); err != nil {
			return nil, fmt.Errorf("decode operation plan: %w", err)
		}
	}
	if end != nil {
		op.EndTime = *end
	}
	return &op, nil
}

// CreateOperation implements fleet.Store.
func (o *Operations) CreateOperation(ctx context.Context, op *fleet.Operation, owner string, lease time.Duration) error {
	request, err := json.Marshal(op.Request)
	if err != nil {
		return err
	}
	_, err = o.s.db.Exec(ctx, `INSERT INTO tenantry_registry.operations
		(id, kind, request, state, lease_owner, lease_expires, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5, now() + $6::interval, $7, $7)`,
		op.ID, op.Kind, request, string(op.State), owner, lease.String(), op.CreateTime)
	return dbError(err, "create operation")
}

// GetOperation implements fleet.Store.
func (o *Operations) GetOperation(ctx context.Context, id string, withResult bool) (*fleet.Operation, error) {
	op, err := scanOperation(o.s.db.QueryRow(ctx, `SELECT `+operationColumns+` FROM tenantry_registry.operations WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fleet.ErrNotFound(id)
	}
	if err != nil {
		return nil, dbError(err, "get operation")
	}
	if withResult {
		rows, err := o.s.db.Query(ctx, `SELECT tenant, component, version, message FROM tenantry_registry.operation_failures
			WHERE operation = $1 ORDER BY tenant`, id)
		if err != nil {
			return nil, dbError(err, "get operation failures")
		}
		op.Failures, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (fleet.Failure, error) {
			var f fleet.Failure
			err := r.Scan(&f.Tenant, &f.Component, &f.Version, &f.Message)
			return f, err
		})
		if err != nil {
			return nil, dbError(err, "get operation failures")
		}
	}
	return op, nil
}

// ListOperations implements fleet.Store.
func (o *Operations) ListOperations(ctx context.Context, afterCreate time.Time, afterID string, limit int) ([]*fleet.Operation, error) {
	var q string
	args := []any{limit}
	if afterID != "" {
		q = `SELECT ` + operationColumns + ` FROM tenantry_registry.operations
			WHERE (create_time, id) < ($2, $3::uuid) ORDER BY create_time DESC, id DESC LIMIT $1`
		args = append(args, afterCreate, afterID)
	} else {
		q = `SELECT ` + operationColumns + ` FROM tenantry_registry.operations ORDER BY create_time DESC, id DESC LIMIT $1`
	}
	rows, err := o.s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, dbError(err, "list operations")
	}
	defer rows.Close()
	var out []*fleet.Operation
	for rows.Next() {
		op, err := scanOperation(rows)
		if err != nil {
			return nil, dbError(err, "list operations")
		}
		out = append(out, op)
	}
	return out, dbError(rows.Err(), "list operations")
}

// RequestCancel implements fleet.Store.
func (o *Operations) RequestCancel(ctx context.Context, id string) (*fleet.Operation, error) {
	if _, err := o.s.db.Exec(ctx, `UPDATE tenantry_registry.operations SET cancel_requested = true, update_time = now()
		WHERE id = $1 AND state = 'RUNNING'`, id); err != nil {
		return nil, dbError(err, "cancel operation")
	}
	return o.GetOperation(ctx, id, true)
}

// Renew implements fleet.Store.
func (o *Operations) Renew(ctx context.Context, id, owner string, lease time.Duration) (bool, error) {
	var cancel bool
	err := o.s.db.QueryRow(ctx, `UPDATE tenantry_registry.operations SET lease_expires = now() + $3::interval
		WHERE id = $1 AND lease_owner = $2 AND state = 'RUNNING' RETURNING cancel_requested`, id, owner, lease.String()).Scan(&cancel)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fleet.ErrLeaseLost
	}
	return cancel, err
}

// Release implements fleet.Store.
func (o *Operations) Release(ctx context.Context, id, owner string) error {
	_, err := o.s.db.Exec(ctx, `UPDATE tenantry_registry.operations SET lease_owner = NULL, lease_expires = now()
		WHERE id = $1 AND lease_owner = $2 AND state = 'RUNNING'`, id, owner)
	return err
}

// DeleteEnded implements fleet.Store.
func (o *Operations) DeleteEnded(ctx context.Context, before time.Time) (int64, error) {
	tag, err := o.s.db.Exec(ctx, `DELETE FROM tenantry_registry.operations WHERE state <> 'RUNNING' AND end_time < $1`, before)
	return tag.RowsAffected(), err
}

// ClaimExpired implements fleet.Store.
func (o *Operations) ClaimExpired(ctx context.Context, owner string, lease time.Duration) ([]*fleet.Operation, error) {
	rows, err := o.s.db.Query(ctx, `UPDATE tenantry_registry.operations SET lease_owner = $1, lease_expires = now() + $2::interval
		WHERE id IN (SELECT id FROM tenantry_registry.operations WHERE state = 'RUNNING' AND lease_expires < now()
		             FOR UPDATE SKIP LOCKED)
		RETURNING `+operationColumns, owner, lease.String())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*fleet.Operation
	for rows.Next() {
		op, err := scanOperation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, rows.Err()
}

// StartRun implements fleet.Store.
func (o *Operations) StartRun(ctx context.Context, id string, stale int) error {
	return dbError(pgx.BeginFunc(ctx, o.s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM tenantry_registry.operation_failures WHERE operation = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE tenantry_registry.operations SET total = done + $2, failed = 0, update_time = now() WHERE id = $1`, id, stale)
		return err
	}), "start operation run")
}

// RecordDone implements fleet.Store.
func (o *Operations) RecordDone(ctx context.Context, id string) error {
	_, err := o.s.db.Exec(ctx, `UPDATE tenantry_registry.operations SET done = done + 1, update_time = now() WHERE id = $1`, id)
	return err
}

// RecordFailure implements fleet.Store.
func (o *Operations) RecordFailure(ctx context.Context, id string, f fleet.Failure) error {
	return pgx.BeginFunc(ctx, o.s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO tenantry_registry.operation_failures (operation, tenant, component, version, message)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, id, f.Tenant, f.Component, f.Version, f.Message)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE tenantry_registry.operations SET failed = failed + 1, update_time = now() WHERE id = $1`, id)
		return err
	})
}

// Finish implements fleet.Store.
func (o *Operations) Finish(ctx context.Context, id, owner string, state fleet.State, planned []fleet.Plan, code int, message, reason string) error {
	var plan []byte
	if planned != nil {
		var err error
		if plan, err = json.Marshal(planned); err != nil {
			return err
		}
	}
	var codeArg, msgArg, reasonArg any
	if code != 0 {
		codeArg, msgArg, reasonArg = code, message, reason
	}
	tag, err := o.s.db.Exec(ctx, `UPDATE tenantry_registry.operations
		SET state = $3, planned = $4, error_code = $5, error_message = $6, error_reason = $7,
		    end_time = now(), update_time = now(), lease_owner = NULL, lease_expires = NULL
		WHERE id = $1 AND lease_owner = $2 AND state = 'RUNNING'`, id, owner, string(state), plan, codeArg, msgArg, reasonArg)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fleet.ErrLeaseLost
	}
	return nil
}

// Targets implements fleet.Store: every tenant whose schema exists and is
// not being provisioned (CreateTenant applies the components itself); only
// those of slugs when it is not empty.
func (o *Operations) Targets(ctx context.Context, slugs []string) ([]fleet.Target, error) {
	rows, err := o.s.db.Query(ctx, `SELECT uid::text, slug, schema_name, placement FROM tenantry_registry.tenants
		WHERE state IN ('ACTIVE', 'SUSPENDED', 'DELETED') AND (COALESCE(cardinality($1::text[]), 0) = 0 OR slug = ANY($1))
		ORDER BY slug`, slugs)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (fleet.Target, error) {
		var t fleet.Target
		err := r.Scan(&t.UID, &t.Slug, &t.Schema, &t.Placement)
		return t, err
	})
}

// Versions implements fleet.Store: one query per placement.
func (o *Operations) Versions(ctx context.Context, components, schemas []string) (map[string]map[string]map[string]int, error) {
	out := make(map[string]map[string]map[string]int, len(o.s.placements))
	for name, pool := range o.s.placements {
		rows, err := pool.Query(ctx, `SELECT schema_name, component, version FROM tenantry_meta.schema_versions
			WHERE component = ANY($1) AND (COALESCE(cardinality($2::text[]), 0) = 0 OR schema_name = ANY($2))`, components, schemas)
		if err != nil {
			return nil, fmt.Errorf("read versions in placement %q: %w", name, err)
		}
		bySchema := map[string]map[string]int{}
		for rows.Next() {
			var (
				schema, comp string
				v            int
			)
			if err := rows.Scan(&schema, &comp, &v); err != nil {
				rows.Close()
				return nil, err
			}
			if bySchema[schema] == nil {
				bySchema[schema] = map[string]int{}
			}
			bySchema[schema][comp] = v
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out[name] = bySchema
	}
	return out, nil
}

// ComponentsWithSQL implements fleet.Store; ids empty means all.
func (o *Operations) ComponentsWithSQL(ctx context.Context, ids []string) ([]*component.Component, error) {
	all, err := listComponents(ctx, o.s.db, true, "")
	if err != nil {
		return nil, dbError(err, "read components")
	}
	if len(ids) == 0 {
		return all, nil
	}
	byID := make(map[string]*component.Component, len(all))
	for _, c := range all {
		byID[c.ID] = c
	}
	out := make([]*component.Component, 0, len(ids))
	for _, id := range ids {
		c := byID[id]
		if c == nil {
			return nil, component.ErrNotFound(id)
		}
		out = append(out, c)
	}
	return out, nil
}

// MigrateTenant implements fleet.Store.
func (o *Operations) MigrateTenant(ctx context.Context, t fleet.Target, comps []*component.Component, lockTimeout time.Duration) (*fleet.Failure, error) {
	// A tenant being moved is left alone: its tables' changes are being
	// replicated, and DDL is not. Its placement is read again, since a move
	// may have switched it since the targets were listed.
	var moving bool
	err := o.s.db.QueryRow(ctx, `SELECT t.placement, EXISTS (SELECT 1 FROM tenantry_registry.moves m
		WHERE m.tenant_uid = t.uid AND m.phase IN `+activePhases+`)
		FROM tenantry_registry.tenants t WHERE t.uid = $1`, t.UID).Scan(&t.Placement, &moving)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if moving {
		return &fleet.Failure{Message: "the tenant is being moved to another placement; migrate it again once the move has ended"}, nil
	}
	pool, ok := o.s.placements[t.Placement]
	if !ok {
		return nil, fmt.Errorf("placement %q is not configured on this registry", t.Placement)
	}
	var failure *fleet.Failure
	err = func() error {
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, fmt.Sprintf("%dms", lockTimeout.Milliseconds())); err != nil {
			return err
		}
		for _, c := range comps {
			if _, _, err := o.s.applyComponent(ctx, tx, t.Schema, tenantRoleOf(t.UID), c); err != nil {
				if version, message, ok := failedMigration(err); ok {
					failure = &fleet.Failure{Component: c.ID, Version: version, Message: message}
					return nil
				}
				if pgCode(err) == "55P03" { // lock_not_available, waiting for the migration lock
					failure = &fleet.Failure{Component: c.ID, Message: "lock_timeout: another transaction holds a lock the migration needs; retry when it is done"}
					return nil
				}
				return err
			}
		}
		return tx.Commit(ctx)
	}()
	return failure, err
}

// toTenantdb converts a component's migrations for tenantdb.Apply.
func toTenantdb(c *component.Component) []tenantdb.Migration {
	migs := make([]tenantdb.Migration, len(c.Migrations))
	for i, m := range c.Migrations {
		migs[i] = tenantdb.Migration{Version: m.Version, Name: m.Name, SQL: m.SQL}
	}
	return migs
}

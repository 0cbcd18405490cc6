package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tenantrole"
	"tenantry.dev/tenant-registry/internal/component"
)

// Tenant roles (see package tenantrole): every component has a role of its
// own in every tenant schema, which owns the component's tables there and
// may use nothing else. The registry creates it in the transaction that
// first applies the component to the schema, runs the component's
// migrations as it, and drops it with the schema.

// roleOf says whose role a component's migrations run as in a schema.
type roleOf struct {
	// uid is the tenant's uid; empty for a spare or scratch schema.
	uid string
	// name is the role's name when uid is empty.
	name string
}

func tenantRoleOf(uid string) roleOf { return roleOf{uid: uid} }

func (r roleOf) roleName(componentID string) string {
	if r.uid != "" {
		return tenantrole.RoleName(r.uid, componentID)
	}
	return r.name + "_" + componentID
}

// applyComponent brings component c of schema to its latest version as
// c's role there, creating the role first if needed.
func (s *Store) applyComponent(ctx context.Context, tx pgx.Tx, schema string, owner roleOf, c *component.Component) (int, int, error) {
	role := owner.roleName(c.ID)
	// The lock Apply takes (held to the end of tx, and re-entrant), taken
	// before the role is looked up: two migrations of one tenant at once
	// (a fleet migration and a component asking for that tenant) would
	// otherwise both find no role and one fail creating it.
	if err := tenantdb.LockMigration(ctx, tx, schema, c.ID); err != nil {
		return 0, 0, err
	}
	if err := s.prepareRole(ctx, tx, schema, role, owner.uid, c.ID); err != nil {
		return 0, 0, err
	}
	return tenantdb.Apply(ctx, tx, schema, c.ID, toTenantdb(c), tenantdb.AsRole(role))
}

// prepareRole makes sure role exists, may use schema, and, for a tenant's
// role when the registry has a component key, may log in with the
// password derived for it, with schema as its search path.
func (s *Store) prepareRole(ctx context.Context, tx pgx.Tx, schema, role, uid, componentID string) error {
	ident := pgx.Identifier{role}.Sanitize()
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return fmt.Errorf("look up role %s: %w", role, err)
	}
	if !exists {
		// The registry's own user becomes a member so that, not being a
		// superuser, it may still run the role's migrations and drop it;
		// platform services connecting as that user (identity) inherit the
		// role's rights on its tables.
		for _, stmt := range []string{
			"CREATE ROLE " + ident + " NOLOGIN NOINHERIT",
			"GRANT " + ident + " TO CURRENT_USER",
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("create role %s: %w", role, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, "GRANT USAGE ON SCHEMA "+pgx.Identifier{schema}.Sanitize()+" TO "+ident); err != nil {
		return fmt.Errorf("let role %s use schema %s: %w", role, schema, err)
	}
	if uid == "" || !exists {
		return s.enableLogin(ctx, tx, schema, role, uid, componentID)
	}
	return nil
}

// enableLogin lets a tenant's role log in with its derived password and
// search path; it does nothing for spare and scratch roles or without a
// component key (the role then owns its tables but nobody logs in as it).
func (s *Store) enableLogin(ctx context.Context, tx pgx.Tx, schema, role, uid, componentID string) error {
	if uid == "" || len(s.componentKey) == 0 {
		return nil
	}
	verifier, err := tenantrole.SCRAMVerifier(tenantrole.Password(tenantrole.ComponentToken(s.componentKey, componentID), uid))
	if err != nil {
		return err
	}
	ident := pgx.Identifier{role}.Sanitize()
	// ALTER ROLE takes no parameters; the verifier is base64 and '$', ':'
	// only, so quoting it as a literal is safe.
	for _, stmt := range []string{
		"ALTER ROLE " + ident + " LOGIN PASSWORD '" + verifier + "'",
		"ALTER ROLE " + ident + " SET search_path TO " + pgx.Identifier{schema}.Sanitize() + ", pg_temp",
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("let role %s log in: %w", role, err)
		}
	}
	return nil
}

// claimSpareRoles renames the roles of spare schema prefix (whose roles
// are named prefix_<component>) to uid's and lets them log in to schema.
func (s *Store) claimSpareRoles(ctx context.Context, tx pgx.Tx, prefix, schema, uid string) error {
	names, err := rolesStartingWith(ctx, tx, prefix+"_")
	if err != nil {
		return err
	}
	for _, name := range names {
		componentID := strings.TrimPrefix(name, prefix+"_")
		role := tenantrole.RoleName(uid, componentID)
		if _, err := tx.Exec(ctx, "ALTER ROLE "+pgx.Identifier{name}.Sanitize()+" RENAME TO "+pgx.Identifier{role}.Sanitize()); err != nil {
			return fmt.Errorf("rename role %s: %w", name, err)
		}
		if err := s.enableLogin(ctx, tx, schema, role, uid, componentID); err != nil {
			return err
		}
	}
	return nil
}

// dropTenantRoles ends the sessions of uid's roles in the database behind
// tx and drops the roles, after their schema is gone. A re-created slug
// gets a new uid, so nothing of the old tenant's roles can carry over.
func dropTenantRoles(ctx context.Context, tx pgx.Tx, uid string) error {
	return dropRolesStartingWith(ctx, tx, strings.TrimSuffix(tenantrole.RoleName(uid, "x"), "x"))
}

// dropRolesStartingWith ends the sessions of the roles whose names start
// with prefix and drops them with what they own in the database behind tx.
func dropRolesStartingWith(ctx context.Context, tx pgx.Tx, prefix string) error {
	names, err := rolesStartingWith(ctx, tx, prefix)
	if err != nil || len(names) == 0 {
		return err
	}
	// Membership of the roles (granted at their creation) is what lets a
	// non-superuser registry end their sessions.
	if _, err := tx.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = ANY($1)`, names); err != nil {
		return fmt.Errorf("end sessions of roles %s*: %w", prefix, err)
	}
	for _, name := range names {
		ident := pgx.Identifier{name}.Sanitize()
		for _, stmt := range []string{"DROP OWNED BY " + ident, "DROP ROLE " + ident} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("drop role %s: %w", name, err)
			}
		}
	}
	return nil
}

// rolesStartingWith lists the roles whose names start with prefix.
func rolesStartingWith(ctx context.Context, tx pgx.Tx, prefix string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT rolname FROM pg_catalog.pg_roles WHERE starts_with(rolname, $1)`, prefix)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/tenant-registry/internal/component"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// Spare schemas. Applying the components' migrations is most of what a
// CreateTenant with components costs (catalog work: identity's tables,
// indexes and triggers alone take ~80 ms), and no copy of a template schema
// avoids it: PostgreSQL would make the same catalog rows. So schemas are
// prepared ahead, with every component applied, and a create renames one to
// the tenant's schema (one catalog row) in its own transaction. A spare is
// brought up to date when claimed, so one prepared before a component
// changed is still good.
const (
	// sparePrefix names spare schemas; slugs cannot hold '_', so no tenant
	// schema ever starts with it.
	sparePrefix = "tenantry_spare_"
	// spareMarker is the comment that makes a schema the registry's spare:
	// the registry never renames or drops a schema it did not mark.
	spareMarker = "tenantry:spare"
)

// claimSpare renames a spare schema of the database behind tx to t's
// schema, marks it as t's, and moves its recorded component versions. It
// reports false when no spare is free. Spares are claimed under a
// transaction-scoped advisory lock taken without waiting, so concurrent
// creates take different spares, or build their own schema.
func (s *Store) claimSpare(ctx context.Context, tx pgx.Tx, t *tenant.Tenant) (bool, error) {
	rows, err := tx.Query(ctx, `SELECT nspname FROM pg_catalog.pg_namespace
		WHERE starts_with(nspname, $1) AND obj_description(oid, 'pg_namespace') = $2
		ORDER BY nspname LIMIT 16`, sparePrefix, spareMarker)
	if err != nil {
		return false, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, err
	}
	for _, name := range names {
		var locked, exists bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('tenantry_spare'), hashtext($1))`, name).Scan(&locked); err != nil {
			return false, err
		}
		if !locked {
			continue
		}
		// Another create may have taken it and committed since the list.
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`, name).Scan(&exists); err != nil {
			return false, err
		}
		if !exists {
			continue
		}
		ident := pgx.Identifier{t.Schema}.Sanitize()
		if _, err := tx.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{name}.Sanitize()+" RENAME TO "+ident); err != nil {
			return false, err
		}
		// The marker holds only a parsed UUID, so quoting it as a literal is safe.
		if _, err := tx.Exec(ctx, "COMMENT ON SCHEMA "+ident+" IS '"+schemaMarker(t.UID)+"'"); err != nil {
			return false, err
		}
		if err := tenantdb.DeleteSchemaVersions(ctx, tx, t.Schema); err != nil {
			return false, err
		}
		if _, err := tx.Exec(ctx, `UPDATE tenantry_meta.schema_versions SET schema_name = $2 WHERE schema_name = $1`, name, t.Schema); err != nil {
			return false, err
		}
		if err := s.claimSpareRoles(ctx, tx, name, t.Schema, t.UID); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// KeepSpares brings every placement to want spare schemas, each with every
// registered component at its latest version, one at a time. Nothing is
// prepared while no component is registered (a bare schema is cheap to
// create), and replicas take turns. It returns how many it prepared.
func (s *Store) KeepSpares(ctx context.Context, want int) (int, error) {
	made := 0
	for name, pool := range s.placements {
		n, err := s.keepSpares(ctx, name, pool, want)
		made += n
		if err != nil {
			return made, fmt.Errorf("placement %q: %w", name, err)
		}
	}
	return made, nil
}

func (s *Store) keepSpares(ctx context.Context, placement string, pool *pgxpool.Pool, want int) (int, error) {
	made := 0
	for made < want {
		added := false
		err := pgx.BeginFunc(ctx, s.db, func(regTx pgx.Tx) error {
			var mine bool
			// One keeper per placement at a time, across replicas.
			if err := regTx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('tenantry_spare_keeper'), hashtext($1))`,
				placement).Scan(&mine); err != nil || !mine {
				return err
			}
			comps, err := listComponents(ctx, regTx, true, "FOR SHARE")
			if err != nil || len(comps) == 0 {
				return err
			}
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				var have int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_namespace
					WHERE starts_with(nspname, $1) AND obj_description(oid, 'pg_namespace') = $2`, sparePrefix, spareMarker).Scan(&have); err != nil {
					return err
				}
				if have >= want {
					return nil
				}
				b := make([]byte, 8)
				_, _ = rand.Read(b)
				name := sparePrefix + hex.EncodeToString(b)
				if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "COMMENT ON SCHEMA "+pgx.Identifier{name}.Sanitize()+" IS '"+spareMarker+"'"); err != nil {
					return err
				}
				for _, c := range comps {
					if _, _, err := s.applyComponent(ctx, tx, name, roleOf{name: name}, c); err != nil {
						return err
					}
				}
				added = true
				return nil
			})
		})
		if err != nil {
			return made, err
		}
		if !added {
			return made, nil
		}
		made++
	}
	return made, nil
}

// rewritesStored reports whether c changes the SQL of a version stored
// already.
func rewritesStored(stored, c *component.Component) bool {
	for i, m := range stored.Migrations {
		if i >= len(c.Migrations) || c.Migrations[i].Checksum != m.Checksum {
			return true
		}
	}
	return false
}

// dropSparesWith drops every spare schema, with its roles, that has
// component id applied; the keeper prepares new ones. The caller holds the
// component's row FOR UPDATE, so no create is claiming a spare and no
// keeper is preparing one meanwhile (both read the components FOR SHARE).
func (s *Store) dropSparesWith(ctx context.Context, id string) error {
	for placement, pool := range s.placements {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT schema_name FROM tenantry_meta.schema_versions
				WHERE component = $1 AND starts_with(schema_name, $2)`, id, sparePrefix)
			if err != nil {
				return err
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, name := range names {
				if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
					return err
				}
				if err := tenantdb.DeleteSchemaVersions(ctx, tx, name); err != nil {
					return err
				}
				if err := dropRolesStartingWith(ctx, tx, name+"_"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("drop spare schemas with component %s in placement %q: %w", id, placement, err)
		}
	}
	return nil
}

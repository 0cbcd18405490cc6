// Package store keeps identity's data in PostgreSQL with pgx: each tenant's
// accounts in the tenant's own schema (migrated by identity's own numbered
// migrations, on first use or for all tenants at start-up), reached only
// through transactions scoped to that schema.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantdb"
)

// Component names identity's migrations in tenantry_meta.schema_versions.
const Component = "identity"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns identity's tenant-schema migrations.
func Migrations() ([]tenantdb.Migration, error) {
	return tenantdb.LoadMigrations(migrationFiles, "migrations")
}

// Invalidator is told, after a transaction commits, which sessions and
// users it changed, so that what a cache kept of them is dropped at once on
// this replica (other replicas hear of it through the schemas' triggers;
// see Follow).
type Invalidator interface {
	ForgetSession(schema, id string)
	ForgetUser(schema, id string)
}

// Store implements account.Store over one pool per placement.
type Store struct {
	pools       map[string]*pgxpool.Pool
	migrators   map[string]*tenantdb.Migrator
	logger      *slog.Logger
	invalidator Invalidator
	afterMail   func()

	// Batched refresh token rotations (see rotate.go), per placement.
	rotators         map[string]*rotator
	rotating         atomic.Bool
	rotationsStopped chan struct{}
}

var _ account.Store = (*Store)(nil)

// New returns a store over the placements' pools. inv, which may be nil,
// hears of the changes this store's transactions commit.
func New(pools map[string]*pgxpool.Pool, inv Invalidator, logger *slog.Logger) (*Store, error) {
	migrations, err := Migrations()
	if err != nil {
		return nil, err
	}
	s := &Store{pools: pools, migrators: map[string]*tenantdb.Migrator{}, logger: logger, invalidator: inv,
		rotators: map[string]*rotator{}, rotationsStopped: make(chan struct{})}
	for name, pool := range pools {
		s.rotators[name] = &rotator{queue: make(chan *rotation, 4*maxRotationBatch)}
		m, err := tenantdb.NewMigrator(pool, Component, migrations, logger)
		if err != nil {
			return nil, err
		}
		s.migrators[name] = m
	}
	return s, nil
}

func (s *Store) placement(t tenancy.Tenant) (*pgxpool.Pool, *tenantdb.Migrator, error) {
	pool, ok := s.pools[t.Placement]
	if !ok {
		return nil, nil, fault.New(fault.FailedPrecondition, "PLACEMENT_UNKNOWN",
			"tenant %q lives in placement %q, which this identity service is not configured for", t.Slug, t.Placement)
	}
	return pool, s.migrators[t.Placement], nil
}

// InTenant implements account.Store: it migrates the tenant's schema on
// first use, then runs fn in a transaction scoped to that schema.
func (s *Store) InTenant(ctx context.Context, t tenancy.Tenant, fn func(ctx context.Context, tx account.Tx) error) error {
	if err := s.ensureMigrated(ctx, t); err != nil {
		return err
	}
	pool := s.pools[t.Placement]
	var ptx *pgTx
	err := tenantdb.InTenant(ctx, pool, t.Schema, func(ctx context.Context, tx pgx.Tx) error {
		ptx = &pgTx{tx: tx, tenant: t.Slug}
		return fn(ctx, ptx)
	})
	if err != nil {
		return err
	}
	if s.invalidator != nil {
		for _, c := range ptx.changed {
			c.apply(s.invalidator, t.Schema)
		}
	}
	if ptx.mailed && s.afterMail != nil {
		s.afterMail()
	}
	return nil
}

// AfterMail registers fn to be called after each transaction that wrote
// mail to the outbox commits (to wake the mail worker); set it before use.
func (s *Store) AfterMail(fn func()) { s.afterMail = fn }

// ensureMigrated migrates t's schema if this is its first use.
func (s *Store) ensureMigrated(ctx context.Context, t tenancy.Tenant) error {
	_, migrator, err := s.placement(t)
	if err != nil {
		return err
	}
	if err := migrator.EnsureMigrated(ctx, t.Schema); err != nil {
		if errors.Is(err, tenantdb.ErrSchemaNotFound) {
			return fault.New(fault.FailedPrecondition, "TENANT_SCHEMA_MISSING", "tenant %q has no schema yet; retry shortly", t.Slug).WithCause(err)
		}
		return fmt.Errorf("migrate tenant %q: %w", t.Slug, err)
	}
	return nil
}

// MigrateAll brings every given tenant's schema up to date, placement by
// placement, with bounded concurrency and progress.
func (s *Store) MigrateAll(ctx context.Context, tenants []tenancy.Tenant, opts tenantdb.MigrateAllOptions) (tenantdb.Report, error) {
	byPlacement := map[string][]string{}
	for _, t := range tenants {
		byPlacement[t.Placement] = append(byPlacement[t.Placement], t.Schema)
	}
	var (
		total tenantdb.Report
		errs  []error
	)
	for placement, schemas := range byPlacement {
		m, ok := s.migrators[placement]
		if !ok {
			errs = append(errs, fmt.Errorf("placement %q is not configured", placement))
			continue
		}
		rep, err := m.MigrateAll(ctx, schemas, opts)
		total.Total += rep.Total
		total.UpToDate += rep.UpToDate
		total.Results = append(total.Results, rep.Results...)
		total.Failed = append(total.Failed, rep.Failed...)
		total.Duration += rep.Duration
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// Forget drops what the store remembers about a purged tenant's schema.
func (s *Store) Forget(t tenancy.Tenant) {
	if m, ok := s.migrators[t.Placement]; ok {
		m.Forget(t.Schema)
	}
}

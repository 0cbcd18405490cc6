package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tenantry.dev/identity/internal/store"
	"tenantry.dev/platform/benchkit"
)

// migrateTimeout bounds the wait for identity's start-up migration.
const migrateTimeout = 5 * time.Minute

// tenantsRun creates tenants up to -tenants through the registry, times
// identity's start-up migration of all their schemas (row 5), and compares
// logins spread over every tenant with logins in one (row 6).
func (b *bench) tenantsRun(ctx context.Context) error {
	if b.onePool == nil {
		return errors.New("no accounts in the first tenant: the login measure did not set them up")
	}
	fill := b.cfg.tenants - 1
	b.log.Info("creating tenants through the registry", "to", b.cfg.tenants, "clients", b.cfg.fillClients)
	progress := benchkit.NewProgress(b.log, "creating tenants", fill)
	r := benchkit.RunCount(ctx, b.cfg.fillClients, fill, func(ctx context.Context, i int) error {
		return b.regClient.createTenant(ctx, tenantSlug(1+i))
	}, progress.Report)
	if err := r.Err(); err != nil {
		return fmt.Errorf("CreateTenant while filling to %d tenants: %w", b.cfg.tenants, err)
	}
	progress.Done(int(r.Calls))
	b.tbl.Info(kFillTPS, benchkit.FormatFloat(r.Throughput()))

	// identity's tables are a component the registry applies in
	// CreateTenant, so every tenant has them already: identity's start-up
	// fleet migration through the registry is a no-op over them all (the
	// registry-bench measures a fleet migration that changes 10,000).
	b.log.Info("restarting identity: every tenant schema is current")
	noop, err := b.timeStartupMigration(ctx)
	if err != nil {
		return err
	}
	if noop.ev.upToDate != b.cfg.tenants {
		return fmt.Errorf("second start-up: identity found %d of %d schemas current", noop.ev.upToDate, b.cfg.tenants)
	}
	b.tbl.Info(kMigrateNoop, benchkit.FormatSeconds(noop.took))
	b.tbl.Note("Start-up migration: from starting the identity binary (at -log-level info, its other records dropped) to its "+
		"\"tenant schemas migrated\" record, after it registered its tables and the registry's fleet migration of component "+
		"identity found every tenant current; identity's own `took` (from the registry snapshot's arrival) was %s. "+
		"Identity serves health before the migration ends.", noop.ev.took)

	if err := b.startIdentity(ctx, "warn"); err != nil {
		return err
	}
	return b.spreadRun(ctx)
}

// startupMigration is one timed start of identity.
type startupMigration struct {
	ev   migratedEvent
	took time.Duration
}

// timeStartupMigration restarts identity at info level and times its
// start-up migration, then checks in the database that every tenant's
// schema is at identity's latest version.
func (b *bench) timeStartupMigration(ctx context.Context) (startupMigration, error) {
	if err := b.startIdentity(ctx, "info"); err != nil {
		return startupMigration{}, err
	}
	ev, err := b.identity.waitMigrated(ctx, migrateTimeout)
	if err != nil {
		return startupMigration{}, err
	}
	m := startupMigration{ev: ev, took: ev.at.Sub(b.identity.Started())}
	if ev.tenants != b.cfg.tenants || ev.failed != 0 {
		return m, fmt.Errorf("identity migrated %d tenants with %d failures, want %d without failures", ev.tenants, ev.failed, b.cfg.tenants)
	}
	migrations, err := store.Migrations()
	if err != nil {
		return m, err
	}
	latest := migrations[len(migrations)-1].Version
	var current int
	// Spare schemas, prepared ahead with every component, are no tenant's.
	if err := b.db.QueryRow(ctx, `SELECT count(*) FROM tenantry_meta.schema_versions WHERE component = $1 AND version = $2
			AND schema_name IN (SELECT schema_name FROM tenantry_registry.tenants)`,
		store.Component, latest).Scan(&current); err != nil {
		return m, fmt.Errorf("read schema versions: %w", err)
	}
	if current != b.cfg.tenants {
		return m, fmt.Errorf("after the start-up migration %d of %d tenant schemas are at identity's version %d", current, b.cfg.tenants, latest)
	}
	return m, nil
}

// spreadRun compares logins spread over every tenant with logins in the
// first tenant, interleaved: row 6.
func (b *bench) spreadRun(ctx context.Context) error {
	tenants := make([]string, b.cfg.tenants)
	for i := range tenants {
		tenants[i] = tenantSlug(i)
	}
	rate, err := b.loginRateBound(ctx)
	if err != nil {
		return err
	}
	// Enough accounts for the whole measure without reuse, and at least
	// one in every tenant; the one tenant gets more if it has too few.
	// The REST measure then logs the same accounts in again, twice as many
	// of them (two loads), so the pool is sized for three.
	n := accountsFor(rate, b.warmup(), b.measured(), 0)
	spread := newAccountPool(spreadAccounts(tenants, max(accountsFor(rate, 3*b.warmup(), 3*b.measured(), 0), len(tenants))))
	b.spreadPool = spread
	if err := b.signUpAll(ctx, "signing up accounts in every tenant", spread.accounts, ""); err != nil {
		return err
	}
	if err := b.waitMailSent(ctx); err != nil {
		return err
	}
	if err := b.ensureOneTenantAccounts(ctx, n); err != nil {
		return err
	}
	// The first tenant's accounts have each logged in once or twice
	// before; login.account allows a burst of 40 (login.account_address
	// 10), so logging in once more stays far inside every limit.
	b.onePool.restart()

	b.log.Info("measuring Login in one tenant and spread over every tenant, interleaved",
		"tenants", len(tenants), "clients", b.cfg.loginClients, "rounds", b.cfg.rounds, "round", b.cfg.duration)
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: b.cfg.loginClients, Duration: b.cfg.duration, Warmup: b.warmup()},
		benchkit.Side{Call: b.loginLoad(b.onePool), CPU: []benchkit.CPUMeter{b.identityCPU, b.pgCPU}, AfterSlice: b.ceilingSampler(ctx, tenantSlug(oneTenantIndex))},
		benchkit.Side{Call: b.loginLoad(spread), CPU: []benchkit.CPUMeter{b.identityCPU, b.pgCPU}})
	if err != nil {
		return err
	}
	for _, p := range []struct {
		pool *accountPool
		what string
	}{{b.onePool, "one tenant"}, {spread, "spread over every tenant"}} {
		if reused := p.pool.reused(); reused > 0 {
			b.tbl.Note("Login %s: %d logins reused an account of the %s signed up.", p.what, reused, benchkit.FormatCount(len(p.pool.accounts)))
		}
	}
	for _, s := range []struct {
		series benchkit.Series
		what   string
	}{{c.Base, "Login in one tenant"}, {c.Subject, "Login spread over every tenant"}} {
		total := s.series.Total()
		if total.Calls == 0 {
			return fmt.Errorf("no %s succeeded: %w", s.what, total.Err())
		}
		if err := total.Err(); err != nil {
			b.unclean[kSpreadRatio] = true
			b.tbl.Note("%s: %v", s.what, err)
		}
	}
	spreadTotal := c.Subject.Total()
	b.tbl.Info(kOneTPS, benchkit.FormatFloat(c.Base.MedianThroughput()))
	b.tbl.Info(kSpreadTPS, benchkit.FormatFloat(c.Subject.MedianThroughput()))
	b.tbl.Info(kSpreadP50, benchkit.FormatMillis(spreadTotal.Latency.Percentile(0.50)))
	b.tbl.Info(kSpreadP99, benchkit.FormatMillis(spreadTotal.Latency.Percentile(0.99)))
	b.cpuRow(kOneCPU, c.Base, 0, time.Millisecond)
	b.cpuRow(kSpreadCPU, c.Subject, 0, time.Millisecond)
	b.cpuRow(kOnePGCPU, c.Base, 1, time.Millisecond)
	b.cpuRow(kSpreadPGCPU, c.Subject, 1, time.Millisecond)
	b.tbl.Set(kSpreadRatio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= minSpreadVsOne && b.clean(kSpreadRatio)))
	b.tbl.Info(kCeiling, benchkit.FormatCount(b.ceilingMax))
	b.tbl.Note("Spread logins: %s accounts over %s tenants (%s to %s per tenant), taken in order, so consecutive logins go to "+
		"consecutive tenants; the one tenant has %s accounts. Every login of a measure uses an account no other login of it used.",
		benchkit.FormatCount(len(spread.accounts)), benchkit.FormatCount(len(tenants)), benchkit.FormatCount(len(spread.accounts)/len(tenants)),
		benchkit.FormatCount((len(spread.accounts)+len(tenants)-1)/len(tenants)),
		benchkit.FormatCount(len(b.onePool.accounts)))
	return nil
}

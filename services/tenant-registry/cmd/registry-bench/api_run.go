package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/platform/tenantdb"
)

const (
	databaseAPI        = "registry"
	migrationComponent = "bench"
	noopMigrateRuns    = 3
	warmupLimit        = time.Second
)

// benchMigrations is the sample component migrated into every tenant
// schema: one small table, as a service's first migration would be.
var benchMigrations = []tenantdb.Migration{{
	Version: 1,
	Name:    "create_bench_items",
	SQL: `CREATE TABLE bench_items (
		id         bigint      PRIMARY KEY,
		note       text        NOT NULL DEFAULT '',
		created_at timestamptz NOT NULL DEFAULT now()
	)`,
}}

// apiSlug names the i-th tenant created through the API. Five digits cover
// the 100,000 tenants that -tenants allows.
func apiSlug(i int) string { return fmt.Sprintf("t%05d", i) }

// subdomainTarget resolves a tenant as "{slug}.localhost", the registry's
// default base domain.
func subdomainTarget(slug string) target { return target{host: slug + ".localhost", slug: slug} }

// apiRun measures resolution, creation and migration against a registry on
// its own database, fed through its API only.
func (b *bench) apiRun(ctx context.Context) error {
	url, err := b.database(ctx, databaseAPI)
	if err != nil {
		return err
	}
	reg, err := startRegistry(ctx, b.cfg.registryBin, url, b.tok, "registry", b.stderr)
	if err != nil {
		return err
	}
	defer b.stopRegistry(reg)
	cl, err := dial(reg.addr, b.cfg.conns, b.tok)
	if err != nil {
		return err
	}
	defer cl.close()

	b.log.Info("creating the first tenants", "tenants", fewTenants)
	var targets []target
	for i := range fewTenants {
		t, err := cl.createTenant(ctx, 0, apiSlug(i))
		if err != nil {
			return err
		}
		targets = append(targets, subdomainTarget(t.GetSlug()))
	}

	b.log.Info("measuring health and ResolveTenant, interleaved", "tenants", fewTenants,
		"rounds", b.cfg.rounds, "round", b.cfg.duration)
	few, err := b.compare(ctx, reg, cl, targets, compareKeys{
		healthTPS: kHealthFewTPS, healthP50: kHealthFewP50, healthP99: kHealthFewP99, healthCPU: kHealthFewCPU,
		resolveTPS: kResolveFewTPS, resolveP50: kResolveFewP50, resolveP99: kResolveFewP99, resolveCPU: kResolveFewCPU,
		ratio: kResolveFewRatio,
	})
	if err != nil {
		return fmt.Errorf("health and ResolveTenant with %d tenants: %w", fewTenants, err)
	}
	b.tbl.set(kResolveFewRatio, formatFloat(few.ratio), verdict(few.ratio >= minResolveVsHealth && b.clean(kResolveFewRatio)))

	created := fewTenants
	b.log.Info("timing creates", "creates", b.cfg.creates, "clients", b.cfg.createClients)
	r := runCount(ctx, b.cfg.createClients, b.cfg.creates, func(ctx context.Context, i int) error {
		_, err := cl.createTenant(ctx, i, apiSlug(created+i))
		return err
	}, nil)
	if err := r.err(); err != nil {
		return fmt.Errorf("CreateTenant: %w", err)
	}
	created += b.cfg.creates
	b.tbl.info(kCreateTPS, formatFloat(r.throughput()))
	p50 := r.latency.percentile(0.50)
	b.tbl.set(kCreateP50, formatMillis(p50), verdict(p50 < maxCreateP50))
	b.tbl.info(kCreateP99, formatMillis(r.latency.percentile(0.99)))

	if fill := b.cfg.tenants - created; fill == 0 {
		b.tbl.skip("-tenants leaves nothing to create after the timed creates", kFillTPS)
	} else {
		b.log.Info("creating tenants", "to", b.cfg.tenants, "clients", b.cfg.fillClients)
		progress := newProgress(b.log, "creating tenants", fill)
		r := runCount(ctx, b.cfg.fillClients, fill, func(ctx context.Context, i int) error {
			_, err := cl.createTenant(ctx, i, apiSlug(created+i))
			return err
		}, progress.report)
		if err := r.err(); err != nil {
			return fmt.Errorf("CreateTenant while filling to %d tenants: %w", b.cfg.tenants, err)
		}
		progress.done(int(r.calls))
		created += fill
		b.tbl.info(kFillTPS, formatFloat(r.throughput()))
	}

	targets = targets[:0]
	for i := range created {
		targets = append(targets, subdomainTarget(apiSlug(i)))
	}
	b.log.Info("measuring health and ResolveTenant, interleaved", "tenants", created,
		"rounds", b.cfg.rounds, "round", b.cfg.duration)
	many, err := b.compare(ctx, reg, cl, targets, compareKeys{
		healthTPS: kHealthManyTPS, healthCPU: kHealthManyCPU,
		resolveTPS: kResolveManyTPS, resolveP50: kResolveManyP50, resolveP99: kResolveManyP99, resolveCPU: kResolveManyCPU,
		ratio: kResolveManyRatio,
	})
	if err != nil {
		return fmt.Errorf("health and ResolveTenant with %d tenants: %w", created, err)
	}
	b.tbl.info(kResolveManyRatio, formatFloat(many.ratio))
	b.tbl.info(kScalingRaw, formatFloat(many.subject.medianThroughput()/few.subject.medianThroughput()))
	scaling := many.ratio / few.ratio
	b.tbl.set(kScaling, formatFloat(scaling), verdict(scaling >= minResolveScaling && b.clean(kResolveManyRatio) && b.clean(kResolveFewRatio)))

	if mem, err := reg.memory(); err != nil {
		b.tbl.skip(err.Error(), kRSSMany)
	} else {
		b.tbl.info(kRSSMany, formatMiB(mem.rss))
	}

	return b.migrateAll(ctx, cl, url, created)
}

// compareKeys name the rows one comparison of health and ResolveTenant
// fills in; an empty key is left out.
type compareKeys struct {
	healthTPS, healthP50, healthP99, healthCPU     string
	resolveTPS, resolveP50, resolveP99, resolveCPU string
	ratio                                          string
}

// compare measures health and ResolveTenant interleaved on reg, fills in
// the rows of keys except the ratio, and returns the measure. Failed calls
// do not stop it: they are noted, and mark the figures as not clean.
func (b *bench) compare(ctx context.Context, reg *registryProcess, cl *clients, targets []target, keys compareKeys) (comparison, error) {
	warmup := min(warmupLimit, b.cfg.duration)
	c, err := interleave(ctx, b.log, b.cfg.rounds, b.cfg.clients, b.cfg.duration, warmup, reg.cpuTime,
		cl.healthLoad(), cl.resolveLoad(targets))
	if err != nil {
		return c, err
	}
	for _, m := range []struct {
		s                  series
		tps, p50, p99, cpu string
		what               string
	}{
		{c.base, keys.healthTPS, keys.healthP50, keys.healthP99, keys.healthCPU, "health"},
		{c.subject, keys.resolveTPS, keys.resolveP50, keys.resolveP99, keys.resolveCPU, "ResolveTenant"},
	} {
		total := m.s.total()
		if total.calls == 0 {
			return c, fmt.Errorf("no %s call succeeded: %w", m.what, total.err())
		}
		if err := total.err(); err != nil {
			b.unclean[keys.ratio] = true
			b.tbl.note("%s with %s tenants: %v", m.what, formatCount(len(targets)), err)
		}
		b.tbl.info(m.tps, formatFloat(m.s.medianThroughput()))
		if m.p50 != "" {
			b.tbl.info(m.p50, formatMillis(total.latency.percentile(0.50)))
			b.tbl.info(m.p99, formatMillis(total.latency.percentile(0.99)))
		}
		if cpu, ok := m.s.cpuPerCall(); ok {
			b.tbl.info(m.cpu, formatFloat(float64(cpu)/float64(time.Microsecond)))
		} else {
			b.tbl.skip("the registry's CPU time could not be read from /proc", m.cpu)
		}
	}
	return c, nil
}

// clean reports whether the load behind a throughput row had no failures.
func (b *bench) clean(key string) bool { return !b.unclean[key] }

// migrateAll lists the tenant schemas through the API and migrates them
// all with tenantdb.Migrator, first for real, then as the no-op every
// deploy does.
func (b *bench) migrateAll(ctx context.Context, cl *clients, url string, want int) error {
	start := time.Now()
	schemas, err := cl.listSchemas(ctx)
	if err != nil {
		return err
	}
	if len(schemas) != want {
		return fmt.Errorf("ListTenants returned %d tenants, want %d", len(schemas), want)
	}
	b.tbl.info(kListSchemas, formatSeconds(time.Since(start)))

	pool, err := tenantdb.NewPool(ctx, url, tenantdb.PoolOptions{MaxConns: 2 * tenantdb.DefaultConcurrency})
	if err != nil {
		return err
	}
	defer pool.Close()

	b.log.Info("migrating every tenant schema", "schemas", len(schemas), "concurrency", tenantdb.DefaultConcurrency)
	progress := newProgress(b.log, "migrating tenant schemas", len(schemas))
	took, report, err := b.migrateOnce(ctx, pool, schemas, func(p tenantdb.Progress) { progress.report(p.Done) })
	if err != nil {
		return fmt.Errorf("migrate all, first run: %w", err)
	}
	progress.done(len(report.Results))
	if len(report.Results) != len(schemas) {
		return fmt.Errorf("migrate all, first run: %d schemas migrated, want %d (%d already current)",
			len(report.Results), len(schemas), report.UpToDate)
	}
	b.tbl.info(kMigrateFirst, formatSeconds(took))

	// Each no-op run uses a fresh Migrator, as a deploy's new process
	// would, on a pool that is already connected.
	var runs []float64
	for range noopMigrateRuns {
		took, report, err := b.migrateOnce(ctx, pool, schemas, nil)
		if err != nil {
			return fmt.Errorf("migrate all, no-op: %w", err)
		}
		if report.UpToDate != len(schemas) {
			return fmt.Errorf("migrate all, no-op: only %d of %d schemas were current", report.UpToDate, len(schemas))
		}
		runs = append(runs, took.Seconds())
	}
	noop := time.Duration(median(runs) * float64(time.Second))
	b.tbl.set(kMigrateNoop, formatSeconds(noop), verdict(noop <= maxNoopMigrate))
	return nil
}

// migrateOnce runs MigrateAll with a new Migrator and times it.
func (b *bench) migrateOnce(ctx context.Context, pool *pgxpool.Pool, schemas []string, progress func(tenantdb.Progress)) (time.Duration, tenantdb.Report, error) {
	m, err := tenantdb.NewMigrator(pool, migrationComponent, benchMigrations, b.quiet)
	if err != nil {
		return 0, tenantdb.Report{}, err
	}
	start := time.Now()
	report, err := m.MigrateAll(ctx, schemas, tenantdb.MigrateAllOptions{Progress: progress})
	return time.Since(start), report, err
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/platform/tenantdb"
)

// Targets. The table prints them from these values, and the checks use the
// same values.
const (
	minResolveVsHealth  = 0.80
	minResolveScaling   = 0.90
	maxCreateP50        = 50 * time.Millisecond
	noopMigrateGoal     = time.Second
	maxNoopMigrate      = 1500 * time.Millisecond
	maxRecordsRSSMiB    = 200
	maxTotalRunTime     = 10 * time.Minute
	fewTenants          = 10 // tenants behind the first resolve measure and the memory baseline
	noopMigrateRuns     = 3
	databaseAPI         = "registry"
	databaseMemory      = "registry_memory"
	migrationComponent  = "bench"
	progressInterval    = 5 * time.Second
	warmupLimit         = time.Second
	mebibyte            = 1 << 20
	resolveTargetPrefix = "ResolveTenant by host"
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

// Keys of the measures, in the order they are printed.
const (
	kHealthFewTPS     = "health-few-tps"
	kHealthFewP50     = "health-few-p50"
	kHealthFewP99     = "health-few-p99"
	kResolveFewTPS    = "resolve-few-tps"
	kResolveFewP50    = "resolve-few-p50"
	kResolveFewP99    = "resolve-few-p99"
	kHealthFewCPU     = "health-few-cpu"
	kResolveFewCPU    = "resolve-few-cpu"
	kResolveFewRatio  = "resolve-few-ratio"
	kCreateTPS        = "create-tps"
	kCreateP50        = "create-p50"
	kCreateP99        = "create-p99"
	kFillTPS          = "fill-tps"
	kHealthManyTPS    = "health-many-tps"
	kResolveManyTPS   = "resolve-many-tps"
	kResolveManyP50   = "resolve-many-p50"
	kResolveManyP99   = "resolve-many-p99"
	kHealthManyCPU    = "health-many-cpu"
	kResolveManyCPU   = "resolve-many-cpu"
	kResolveManyRatio = "resolve-many-ratio"
	kScalingRaw       = "scaling-raw"
	kScaling          = "scaling"
	kRSSMany          = "rss-many"
	kListSchemas      = "list-schemas"
	kMigrateFirst     = "migrate-first"
	kMigrateNoop      = "migrate-noop"
	kRSSFew           = "rss-few"
	kStartupRecords   = "startup-records"
	kRSSRecordsStart  = "rss-records-start"
	kRSSRecords       = "rss-records"
	kPeakRecords      = "peak-records"
	kTotal            = "total"
)

// apiKeys are the measures of the run against the registry fed through its
// API; memoryKeys those of the bulk-loaded registry.
var (
	apiKeys = []string{
		kHealthFewTPS, kHealthFewP50, kHealthFewP99, kResolveFewTPS, kResolveFewP50, kResolveFewP99,
		kHealthFewCPU, kResolveFewCPU, kResolveFewRatio,
		kCreateTPS, kCreateP50, kCreateP99, kFillTPS,
		kHealthManyTPS, kResolveManyTPS, kResolveManyP50, kResolveManyP99,
		kHealthManyCPU, kResolveManyCPU, kResolveManyRatio, kScalingRaw, kScaling,
		kRSSMany, kListSchemas, kMigrateFirst, kMigrateNoop,
	}
	memoryKeys = []string{kRSSFew, kStartupRecords, kRSSRecordsStart, kRSSRecords, kPeakRecords}
)

// declareMeasures lays out the table for the sizes in cfg.
func declareMeasures(t *table, cfg config) {
	few, many, recs := formatCount(fewTenants), formatCount(cfg.tenants), formatCount(cfg.records)
	load := fmt.Sprintf("%d clients", cfg.clients)
	t.declare(kHealthFewTPS, fmt.Sprintf("grpc.health.v1 Check (baseline), %s tenants, %s: throughput", few, load), "calls/s", "baseline")
	t.declare(kHealthFewP50, "grpc.health.v1 Check, "+few+" tenants: p50", "ms", "")
	t.declare(kHealthFewP99, "grpc.health.v1 Check, "+few+" tenants: p99", "ms", "")
	t.declare(kResolveFewTPS, fmt.Sprintf("%s, %s tenants, %s: throughput", resolveTargetPrefix, few, load), "calls/s", "")
	t.declare(kResolveFewP50, resolveTargetPrefix+", "+few+" tenants: p50", "ms", "")
	t.declare(kResolveFewP99, resolveTargetPrefix+", "+few+" tenants: p99", "ms", "")
	t.declare(kHealthFewCPU, "registry CPU per health Check, "+few+" tenants", "µs", "")
	t.declare(kResolveFewCPU, "registry CPU per ResolveTenant, "+few+" tenants", "µs", "")
	t.declare(kResolveFewRatio, "ResolveTenant ÷ health throughput, "+few+" tenants", "ratio", fmt.Sprintf("≥ %.2f", minResolveVsHealth))
	t.declare(kCreateTPS, fmt.Sprintf("CreateTenant, %s creates, %d clients: throughput", formatCount(cfg.creates), cfg.createClients), "tenants/s", "")
	t.declare(kCreateP50, "CreateTenant latency p50", "ms", fmt.Sprintf("< %d", maxCreateP50.Milliseconds()))
	t.declare(kCreateP99, "CreateTenant latency p99", "ms", "")
	t.declare(kFillTPS, fmt.Sprintf("CreateTenant up to %s tenants, %d clients: throughput", many, cfg.fillClients), "tenants/s", "")
	t.declare(kHealthManyTPS, fmt.Sprintf("grpc.health.v1 Check (baseline), %s tenants, %s: throughput", many, load), "calls/s", "baseline")
	t.declare(kResolveManyTPS, fmt.Sprintf("%s (random tenants), %s tenants, %s: throughput", resolveTargetPrefix, many, load), "calls/s", "")
	t.declare(kResolveManyP50, resolveTargetPrefix+", "+many+" tenants: p50", "ms", "")
	t.declare(kResolveManyP99, resolveTargetPrefix+", "+many+" tenants: p99", "ms", "")
	t.declare(kHealthManyCPU, "registry CPU per health Check, "+many+" tenants", "µs", "")
	t.declare(kResolveManyCPU, "registry CPU per ResolveTenant, "+many+" tenants", "µs", "")
	t.declare(kResolveManyRatio, "ResolveTenant ÷ health throughput, "+many+" tenants", "ratio", "")
	t.declare(kScalingRaw, "ResolveTenant throughput "+many+" ÷ "+few+" tenants, raw", "ratio", "")
	t.declare(kScaling, "ResolveTenant throughput "+many+" ÷ "+few+" tenants, each ÷ its health baseline", "ratio", fmt.Sprintf("≥ %.2f", minResolveScaling))
	t.declare(kRSSMany, "registry RSS after creating "+many+" tenants and the load above", "MiB", "")
	t.declare(kListSchemas, fmt.Sprintf("ListTenants: all %s schemas, pages of %s", many, formatCount(listPageSize)), "s", "")
	t.declare(kMigrateFirst, "migrate all, first run ("+many+" schemas, 1 migration each)", "s", "")
	t.declare(kMigrateNoop, fmt.Sprintf("migrate all, no-op (%s schemas, median of %d)", many, noopMigrateRuns), "s",
		fmt.Sprintf("≈ %g (met if ≤ %g)", noopMigrateGoal.Seconds(), maxNoopMigrate.Seconds()))
	t.declare(kRSSFew, fmt.Sprintf("registry RSS, %s tenants, after %s resolves (baseline)", few, formatCount(cfg.memResolves)), "MiB", "baseline")
	t.declare(kStartupRecords, "registry start-up to SERVING, "+recs+" tenant records", "s", "")
	t.declare(kRSSRecordsStart, "registry RSS, "+recs+" tenant records, once serving", "MiB", "")
	t.declare(kRSSRecords, fmt.Sprintf("registry RSS, %s tenant records, after %s resolves", recs, formatCount(cfg.memResolves)), "MiB", fmt.Sprintf("< %d", maxRecordsRSSMiB))
	t.declare(kPeakRecords, "registry peak RSS (VmHWM), "+recs+" tenant records", "MiB", "")
	t.declare(kTotal, "total run time", "s", fmt.Sprintf("< %g", maxTotalRunTime.Seconds()))
}

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

// memoryRun measures the registry's resident memory with a handful of
// tenants and with cfg.records tenant records, on a database of its own.
func (b *bench) memoryRun(ctx context.Context) error {
	url, err := b.database(ctx, databaseMemory)
	if err != nil {
		return err
	}

	// The baseline: a registry holding a few tenants made through its API,
	// which also creates the registry's tables for the bulk insert.
	reg, err := startRegistry(ctx, b.cfg.registryBin, url, b.tok, "registry-memory", b.stderr)
	if err != nil {
		return err
	}
	var targets []target
	err = func() error {
		defer b.stopRegistry(reg)
		cl, err := dial(reg.addr, b.cfg.conns, b.tok)
		if err != nil {
			return err
		}
		defer cl.close()
		for i := range fewTenants {
			t, err := cl.createTenant(ctx, 0, recordSlug(i))
			if err != nil {
				return err
			}
			targets = append(targets, subdomainTarget(t.GetSlug()))
		}
		mem, err := b.resolveThenMeasure(ctx, reg, cl, targets)
		if err != nil {
			return err
		}
		b.tbl.info(kRSSFew, formatMiB(mem.rss))
		return nil
	}()
	if err != nil {
		return fmt.Errorf("baseline with %d tenants: %w", fewTenants, err)
	}

	b.log.Info("inserting tenant records", "records", b.cfg.records-fewTenants)
	if err := insertRecords(ctx, url, fewTenants, b.cfg.records-fewTenants); err != nil {
		return err
	}
	for i := fewTenants; i < b.cfg.records; i++ {
		slug := recordSlug(i)
		targets = append(targets, subdomainTarget(slug))
		for _, host := range recordDomains(slug) {
			targets = append(targets, target{host: host, slug: slug})
		}
	}

	b.log.Info("starting a registry on the tenant records", "records", b.cfg.records)
	start := time.Now()
	reg, err = startRegistry(ctx, b.cfg.registryBin, url, b.tok, "registry-memory", b.stderr)
	if err != nil {
		return err
	}
	defer b.stopRegistry(reg)
	b.tbl.info(kStartupRecords, formatSeconds(time.Since(start)))
	mem, err := reg.memory()
	if err != nil {
		return err
	}
	b.tbl.info(kRSSRecordsStart, formatMiB(mem.rss))
	cl, err := dial(reg.addr, b.cfg.conns, b.tok)
	if err != nil {
		return err
	}
	defer cl.close()
	mem, err = b.resolveThenMeasure(ctx, reg, cl, targets)
	if err != nil {
		return err
	}
	b.tbl.set(kRSSRecords, formatMiB(mem.rss), verdict(mem.rss < maxRecordsRSSMiB*mebibyte))
	b.tbl.info(kPeakRecords, formatMiB(mem.peak))
	return nil
}

// resolveThenMeasure resolves cfg.memResolves random targets from all
// clients, so that the registry's serving paths have allocated what they
// use, and then reads its memory.
func (b *bench) resolveThenMeasure(ctx context.Context, reg *registryProcess, cl *clients, targets []target) (memory, error) {
	call := cl.resolveLoad(targets)
	r := runCount(ctx, b.cfg.clients, b.cfg.memResolves, func(ctx context.Context, i int) error {
		return call(ctx, i, rand.New(rand.NewPCG(uint64(i), 0)))
	}, nil)
	if err := r.err(); err != nil {
		return memory{}, fmt.Errorf("ResolveTenant: %w", err)
	}
	return reg.memory()
}

// stopRegistry stops a registry, logging rather than returning a failure to
// stop: the measures are taken by then.
func (b *bench) stopRegistry(reg *registryProcess) {
	if err := reg.stop(); err != nil {
		b.log.Warn("stopping the registry", "err", err)
	}
}

// formatMiB prints bytes in mebibytes.
func formatMiB(n uint64) string { return formatFloat(float64(n) / mebibyte) }

// progress reports a long step on stderr every progressInterval.
type progress struct {
	log   *slog.Logger
	what  string
	total int
	start time.Time
	last  time.Time
}

func newProgress(log *slog.Logger, what string, total int) *progress {
	now := time.Now()
	return &progress{log: log, what: what, total: total, start: now, last: now}
}

// report is called with the count done so far, never concurrently.
func (p *progress) report(done int) {
	if time.Since(p.last) < progressInterval {
		return
	}
	p.last = time.Now()
	p.log.Info(p.what, "done", done, "of", p.total, "per_second", int(float64(done)/time.Since(p.start).Seconds()))
}

// done reports the end of the step.
func (p *progress) done(done int) {
	p.log.Info(p.what+": done", "done", done, "of", p.total, "took", time.Since(p.start).Round(time.Millisecond))
}

// errBudget is the cause of the run's context when its time budget is spent.
var errBudget = errors.New("the run's time budget was spent")

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/platform/benchkit"
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
	cl, err := dial(reg.Addr(), b.cfg.conns, b.tok)
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
	b.tbl.Set(kResolveFewRatio, benchkit.FormatFloat(few.Ratio), benchkit.Verdict(few.Ratio >= minResolveVsHealth && b.clean(kResolveFewRatio)))

	if err := b.tracedRun(ctx, url, targets, few); err != nil {
		return fmt.Errorf("ResolveTenant with traces on: %w", err)
	}

	created := fewTenants
	b.log.Info("timing creates", "creates", b.cfg.creates, "clients", b.cfg.createClients)
	r := benchkit.RunCount(ctx, b.cfg.createClients, b.cfg.creates, func(ctx context.Context, i int) error {
		_, err := cl.createTenant(ctx, i, apiSlug(created+i))
		return err
	}, nil)
	if err := r.Err(); err != nil {
		return fmt.Errorf("CreateTenant: %w", err)
	}
	created += b.cfg.creates
	b.tbl.Info(kCreateTPS, benchkit.FormatFloat(r.Throughput()))
	p50 := r.Latency.Percentile(0.50)
	b.tbl.Set(kCreateP50, benchkit.FormatMillis(p50), benchkit.Verdict(p50 < maxCreateP50))
	b.tbl.Info(kCreateP99, benchkit.FormatMillis(r.Latency.Percentile(0.99)))

	if fill := b.cfg.tenants - created; fill == 0 {
		b.tbl.Skip("-tenants leaves nothing to create after the timed creates", kFillTPS)
	} else {
		b.log.Info("creating tenants", "to", b.cfg.tenants, "clients", b.cfg.fillClients)
		progress := benchkit.NewProgress(b.log, "creating tenants", fill)
		r := benchkit.RunCount(ctx, b.cfg.fillClients, fill, func(ctx context.Context, i int) error {
			_, err := cl.createTenant(ctx, i, apiSlug(created+i))
			return err
		}, progress.Report)
		if err := r.Err(); err != nil {
			return fmt.Errorf("CreateTenant while filling to %d tenants: %w", b.cfg.tenants, err)
		}
		progress.Done(int(r.Calls))
		created += fill
		b.tbl.Info(kFillTPS, benchkit.FormatFloat(r.Throughput()))
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
	b.tbl.Info(kResolveManyRatio, benchkit.FormatFloat(many.Ratio))
	b.tbl.Info(kScalingRaw, benchkit.FormatFloat(many.Subject.MedianThroughput()/few.Subject.MedianThroughput()))
	scaling := many.Ratio / few.Ratio
	b.tbl.Set(kScaling, benchkit.FormatFloat(scaling), benchkit.Verdict(scaling >= minResolveScaling && b.clean(kResolveManyRatio) && b.clean(kResolveFewRatio)))

	if mem, err := reg.Memory(); err != nil {
		b.tbl.Skip(err.Error(), kRSSMany)
	} else {
		b.tbl.Info(kRSSMany, benchkit.FormatMiB(mem.RSS))
	}

	b.log.Info("measuring GetTenant over gRPC and over REST, interleaved", "tenants", created,
		"rounds", b.cfg.rounds, "round", b.cfg.duration)
	if err := b.compareREST(ctx, reg, cl, targets); err != nil {
		return fmt.Errorf("GetTenant over gRPC and REST with %d tenants: %w", created, err)
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
func (b *bench) compare(ctx context.Context, reg *registryProcess, cl *clients, targets []target, keys compareKeys) (benchkit.Comparison, error) {
	sched := benchkit.Schedule{
		Rounds:   b.cfg.rounds,
		Duration: b.cfg.duration,
		Warmup:   min(warmupLimit, b.cfg.duration),
		Workers:  b.cfg.clients,
	}
	// Both loads are served by the registry: its CPU time is read around
	// every slice of either.
	c, err := benchkit.Interleave(ctx, b.log, sched,
		benchkit.Side{Call: cl.healthLoad(), CPU: []benchkit.CPUMeter{reg.CPUTime}},
		benchkit.Side{Call: cl.resolveLoad(targets), CPU: []benchkit.CPUMeter{reg.CPUTime}})
	if err != nil {
		return c, err
	}
	for _, m := range []struct {
		s                  benchkit.Series
		tps, p50, p99, cpu string
		what               string
	}{
		{c.Base, keys.healthTPS, keys.healthP50, keys.healthP99, keys.healthCPU, "health"},
		{c.Subject, keys.resolveTPS, keys.resolveP50, keys.resolveP99, keys.resolveCPU, "ResolveTenant"},
	} {
		total := m.s.Total()
		if total.Calls == 0 {
			return c, fmt.Errorf("no %s call succeeded: %w", m.what, total.Err())
		}
		if err := total.Err(); err != nil {
			b.unclean[keys.ratio] = true
			b.tbl.Note("%s with %s tenants: %v", m.what, benchkit.FormatCount(len(targets)), err)
		}
		b.tbl.Info(m.tps, benchkit.FormatFloat(m.s.MedianThroughput()))
		if m.p50 != "" {
			b.tbl.Info(m.p50, benchkit.FormatMillis(total.Latency.Percentile(0.50)))
			b.tbl.Info(m.p99, benchkit.FormatMillis(total.Latency.Percentile(0.99)))
		}
		if cpu, ok := m.s.CPUPerCall(0); ok {
			b.tbl.Info(m.cpu, benchkit.FormatFloat(float64(cpu)/float64(time.Microsecond)))
		} else {
			b.tbl.Skip("the registry's CPU time could not be read from /proc", m.cpu)
		}
	}
	return c, nil
}

// compareREST measures GetTenant over gRPC against the same call through
// the registry's REST gateway, interleaved, with the same number of
// callers, and fills in their rows. Failed calls do not stop it: they are
// noted, and mark the ratio as not clean.
func (b *bench) compareREST(ctx context.Context, reg *registryProcess, cl *clients, targets []target) error {
	rest := newRESTClient(reg.httpAddr, b.cfg.clients, b.tok)
	defer rest.close()
	sched := benchkit.Schedule{
		Rounds:   b.cfg.rounds,
		Duration: b.cfg.duration,
		Warmup:   min(warmupLimit, b.cfg.duration),
		Workers:  b.cfg.clients,
	}
	// The registry serves both; this program's own CPU time shows what
	// each client costs on the cores they share.
	meters := []benchkit.CPUMeter{reg.CPUTime, benchkit.SelfCPUTime}
	c, err := benchkit.Interleave(ctx, b.log, sched,
		benchkit.Side{Call: cl.getTenantLoad(targets), CPU: meters},
		benchkit.Side{Call: rest.getTenantLoad(targets), CPU: meters})
	if err != nil {
		return err
	}
	for _, m := range []struct {
		s                             benchkit.Series
		tps, p50, p99, cpu, clientCPU string
		what                          string
	}{
		{c.Base, kGetGRPCTPS, kGetGRPCP50, kGetGRPCP99, kGetGRPCCPU, kGetGRPCClientCPU, "GetTenant over gRPC"},
		{c.Subject, kGetRESTTPS, kGetRESTP50, kGetRESTP99, kGetRESTCPU, kGetRESTClientCPU, "REST GET /v1/tenants/{slug}"},
	} {
		total := m.s.Total()
		if total.Calls == 0 {
			return fmt.Errorf("no %s call succeeded: %w", m.what, total.Err())
		}
		if err := total.Err(); err != nil {
			b.unclean[kGetRESTRatio] = true
			b.tbl.Note("%s with %s tenants: %v", m.what, benchkit.FormatCount(len(targets)), err)
		}
		b.tbl.Info(m.tps, benchkit.FormatFloat(m.s.MedianThroughput()))
		b.tbl.Info(m.p50, benchkit.FormatMillis(total.Latency.Percentile(0.50)))
		b.tbl.Info(m.p99, benchkit.FormatMillis(total.Latency.Percentile(0.99)))
		for _, meter := range []struct {
			i    int
			key  string
			whom string
		}{{0, m.cpu, "the registry's"}, {1, m.clientCPU, "this program's"}} {
			if cpu, ok := m.s.CPUPerCall(meter.i); ok {
				b.tbl.Info(meter.key, benchkit.FormatFloat(float64(cpu)/float64(time.Microsecond)))
			} else {
				b.tbl.Skip(meter.whom+" CPU time could not be read from /proc", meter.key)
			}
		}
	}
	b.tbl.Set(kGetRESTRatio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= minRESTVsGRPC && b.clean(kGetRESTRatio)))
	return nil
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
	b.tbl.Info(kListSchemas, benchkit.FormatSeconds(time.Since(start)))

	pool, err := tenantdb.NewPool(ctx, url, tenantdb.PoolOptions{MaxConns: 2 * tenantdb.DefaultConcurrency})
	if err != nil {
		return err
	}
	defer pool.Close()

	b.log.Info("migrating every tenant schema", "schemas", len(schemas), "concurrency", tenantdb.DefaultConcurrency)
	progress := benchkit.NewProgress(b.log, "migrating tenant schemas", len(schemas))
	took, report, err := b.migrateOnce(ctx, pool, schemas, func(p tenantdb.Progress) { progress.Report(p.Done) })
	if err != nil {
		return fmt.Errorf("migrate all, first run: %w", err)
	}
	progress.Done(len(report.Results))
	if len(report.Results) != len(schemas) {
		return fmt.Errorf("migrate all, first run: %d schemas migrated, want %d (%d already current)",
			len(report.Results), len(schemas), report.UpToDate)
	}
	b.tbl.Info(kMigrateFirst, benchkit.FormatSeconds(took))

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
	noop := time.Duration(benchkit.Median(runs) * float64(time.Second))
	b.tbl.Set(kMigrateNoop, benchkit.FormatSeconds(noop), benchkit.Verdict(noop <= maxNoopMigrate))
	if err := b.fleetMigrate(ctx, cl, len(schemas)); err != nil {
		return err
	}
	return b.createWithComponents(ctx, cl, pool, len(schemas))
}

// fleetMigrate registers a component and brings every tenant schema to it
// through the registry's own fleet migration (MigrateTenants), then times
// the no-op run every deploy makes.
func (b *bench) fleetMigrate(ctx context.Context, cl *clients, want int) error {
	if err := cl.registerBenchComponent(ctx); err != nil {
		return err
	}
	b.log.Info("fleet migration through the API", "schemas", want)
	op, took, err := cl.fleetMigrate(ctx)
	if err != nil {
		return err
	}
	if md := op.GetMetadata(); md.GetDone() != int32(want) || md.GetFailed() != 0 {
		first := ""
		if f := op.GetResult().GetFailures(); len(f) > 0 {
			first = fmt.Sprintf(" (%s: %s)", f[0].GetTenant(), f[0].GetMessage())
		}
		return fmt.Errorf("fleet migration: %d done and %d failed of %d, want all %d done%s", md.GetDone(), md.GetFailed(), md.GetTotal(), want, first)
	}
	b.tbl.Info(kFleetFirst, benchkit.FormatSeconds(took))
	b.tbl.Info(kFleetTPS, benchkit.FormatFloat(float64(want)/took.Seconds()))
	var runs []float64
	for range noopMigrateRuns {
		op, took, err := cl.fleetMigrate(ctx)
		if err != nil {
			return err
		}
		if op.GetMetadata().GetTotal() != 0 {
			return fmt.Errorf("fleet migration, no-op: %d tenants were behind", op.GetMetadata().GetTotal())
		}
		runs = append(runs, took.Seconds())
	}
	noop := time.Duration(benchkit.Median(runs) * float64(time.Second))
	b.tbl.Set(kFleetNoop, benchkit.FormatSeconds(noop), benchkit.Verdict(noop <= maxNoopMigrate))
	return nil
}

// componentCreates is how many creates time CreateTenant with components
// in a burst; pacedCreates how many, one every pacedEvery, at a sign-up pace.
const (
	componentCreates = 200
	pacedCreates     = 50
	pacedEvery       = 500 * time.Millisecond
)

// waitSpares waits until the registry has its spare schemas ready (it
// prepares 4 per placement by default).
func waitSpares(ctx context.Context, db *pgxpool.Pool) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, 'tenantry_spare_')`).Scan(&n); err != nil {
			return err
		}
		if n >= 4 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the registry prepared %d spare schemas in a minute, want 4", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// createWithComponents registers identity's own migrations (read from the
// repository, as identity embeds them) and the example notes component
// beside the fleet rows' one, then times creates that apply all three.
func (b *bench) createWithComponents(ctx context.Context, cl *clients, db *pgxpool.Pool, existing int) error {
	for _, c := range []struct{ id, dir string }{
		{"identity", "services/identity/internal/store/migrations"},
		{"notes", "services/notes/migrations"},
	} {
		migs, err := tenantdb.LoadMigrations(os.DirFS(c.dir), ".")
		if err != nil {
			return fmt.Errorf("read the %s component's migrations (run from the repository's root): %w", c.id, err)
		}
		if err := cl.registerComponent(ctx, c.id, migs); err != nil {
			return err
		}
	}
	// At a sign-up pace the registry's spare schemas (prepared with every
	// component, renamed at create) are ready for each create.
	if err := waitSpares(ctx, db); err != nil {
		return err
	}
	b.log.Info("timing creates with components at a sign-up pace", "creates", pacedCreates, "every", pacedEvery)
	paced := benchkit.NewHistogram()
	for i := range pacedCreates {
		start := time.Now()
		if _, err := cl.createTenant(ctx, 0, apiSlug(existing+i)); err != nil {
			return fmt.Errorf("CreateTenant with components, paced: %w", err)
		}
		paced.Record(time.Since(start))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pacedEvery):
		}
	}
	existing += pacedCreates
	p50paced := paced.Percentile(0.50)
	b.tbl.Set(kCreatePacedP50, benchkit.FormatMillis(p50paced), benchkit.Verdict(p50paced < maxCreateP50))
	b.tbl.Info(kCreatePacedP99, benchkit.FormatMillis(paced.Percentile(0.99)))

	b.log.Info("timing creates with components in a burst", "creates", componentCreates, "clients", b.cfg.createClients)
	r := benchkit.RunCount(ctx, b.cfg.createClients, componentCreates, func(ctx context.Context, i int) error {
		_, err := cl.createTenant(ctx, i, apiSlug(existing+i))
		return err
	}, nil)
	if err := r.Err(); err != nil {
		return fmt.Errorf("CreateTenant with components: %w", err)
	}
	b.tbl.Info(kCreateCompTPS, benchkit.FormatFloat(r.Throughput()))
	p50 := r.Latency.Percentile(0.50)
	b.tbl.Info(kCreateCompP50, benchkit.FormatMillis(p50))
	b.tbl.Info(kCreateCompP99, benchkit.FormatMillis(r.Latency.Percentile(0.99)))
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

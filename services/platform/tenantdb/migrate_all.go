package tenantdb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency is how many schemas MigrateAll migrates at once unless
// told otherwise: enough to overlap round trips without crowding out the
// service's own traffic on a shared pool.
const DefaultConcurrency = 4

// MigrateAllOptions tunes MigrateAll.
type MigrateAllOptions struct {
	// Concurrency bounds the schemas migrated at once; zero means
	// DefaultConcurrency. Each uses one pool connection.
	Concurrency int
	// Progress, if set, is called after each schema that needed work.
	// Calls are serialised, so it need not be safe for concurrent use.
	Progress func(Progress)
}

// Progress reports how far MigrateAll has got.
type Progress struct {
	// Done counts schemas finished so far, failed ones included.
	Done int
	// Total counts schemas that needed work; up-to-date ones are not part
	// of it.
	Total int
	// Failed counts finished schemas that failed.
	Failed int
	// Last is the schema that just finished.
	Last Result
}

// Report is the outcome of MigrateAll.
type Report struct {
	// Total counts the distinct schemas given.
	Total int
	// UpToDate counts schemas that were already current and not touched.
	UpToDate int
	// Results holds one entry per schema that needed work, in input order.
	Results []Result
	// Failed holds the entries of Results whose Err is set.
	Failed []Result
	// Duration is the wall time of the whole run.
	Duration time.Duration
}

// MigrateAll brings every schema in schemas to the latest version. One query
// reads the recorded versions of all of them, so a run where everything is
// current costs a single round trip however many tenants there are; only
// stale schemas are then migrated, up to opts.Concurrency at a time, each as
// Migrate does it. One schema failing does not stop the others: the Report
// lists every result, and the error (wrapping ErrSchemasFailed) says how many
// failed. Up-to-date and migrated schemas join the EnsureMigrated cache.
// Duplicate names are migrated once.
func (m *Migrator) MigrateAll(ctx context.Context, schemas []string, opts MigrateAllOptions) (Report, error) {
	start := time.Now()
	concurrency := opts.Concurrency
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	if err := m.ensureSetup(ctx); err != nil {
		return Report{}, err
	}

	unique := make([]string, 0, len(schemas))
	seen := make(map[string]struct{}, len(schemas))
	for _, s := range schemas {
		if _, dup := seen[s]; !dup {
			seen[s] = struct{}{}
			unique = append(unique, s)
		}
	}
	report := Report{Total: len(unique)}

	// Invalid names become failed results without reaching the database.
	var todo []Result
	valid := make([]string, 0, len(unique))
	for _, s := range unique {
		if err := ValidateSchemaName(s); err != nil {
			todo = append(todo, Result{Schema: s, Err: err})
			continue
		}
		valid = append(valid, s)
	}
	versions, err := m.recordedVersions(ctx, valid)
	if err != nil {
		return Report{}, err
	}
	latest := len(m.migrations)
	var current []string
	for _, s := range valid {
		if versions[s] >= latest {
			current = append(current, s)
			continue
		}
		todo = append(todo, Result{Schema: s, From: versions[s], To: versions[s]})
	}
	m.markCurrent(current...)
	report.UpToDate = len(current)
	// Keep input order for stable reports even though invalid names were
	// set aside first.
	todo = inInputOrder(todo, unique)

	var (
		mu     sync.Mutex
		done   int
		failed int
	)
	finish := func(i int, res Result) {
		mu.Lock()
		defer mu.Unlock()
		todo[i] = res
		done++
		if res.Err != nil {
			failed++
			m.logger.ErrorContext(ctx, "tenant schema migration failed",
				slog.String("schema", res.Schema), slog.Any("error", res.Err))
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Done: done, Total: len(todo), Failed: failed, Last: res})
		}
	}

	var g errgroup.Group
	g.SetLimit(concurrency)
	for i, item := range todo {
		if item.Err != nil {
			finish(i, item)
			continue
		}
		g.Go(func() error {
			res, _ := m.Migrate(ctx, item.Schema)
			finish(i, res)
			return nil // one tenant's failure must not cancel the rest
		})
	}
	_ = g.Wait()

	report.Results = todo
	for _, res := range todo {
		if res.Err != nil {
			report.Failed = append(report.Failed, res)
		}
	}
	report.Duration = time.Since(start)
	m.logger.InfoContext(ctx, "migrated tenant schemas",
		slog.Int("total", report.Total), slog.Int("up_to_date", report.UpToDate),
		slog.Int("migrated", len(report.Results)-len(report.Failed)), slog.Int("failed", len(report.Failed)),
		slog.Duration("duration", report.Duration))
	if len(report.Failed) > 0 {
		first := report.Failed[0]
		return report, fmt.Errorf("tenantdb: migrate %s: %w: %d of %d, first %q: %w",
			m.component, ErrSchemasFailed, len(report.Failed), len(report.Results), first.Schema, first.Err)
	}
	return report, nil
}

// recordedVersions returns the recorded version of each of schemas that has
// one, in a single query.
func (m *Migrator) recordedVersions(ctx context.Context, schemas []string) (map[string]int, error) {
	versions := make(map[string]int, len(schemas))
	if len(schemas) == 0 {
		return versions, nil
	}
	rows, err := m.pool.Query(ctx, `
		SELECT schema_name, version FROM tenantry_meta.schema_versions
		WHERE component = $1 AND schema_name = ANY($2)`,
		m.component, schemas)
	if err != nil {
		return nil, fmt.Errorf("tenantdb: read recorded versions for %s: %w", m.component, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			schema  string
			version int
		)
		if err := rows.Scan(&schema, &version); err != nil {
			return nil, fmt.Errorf("tenantdb: read recorded versions for %s: %w", m.component, err)
		}
		versions[schema] = version
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tenantdb: read recorded versions for %s: %w", m.component, err)
	}
	return versions, nil
}

// inInputOrder sorts results by the position of their schema in order.
func inInputOrder(results []Result, order []string) []Result {
	position := make(map[string]int, len(order))
	for i, s := range order {
		position[s] = i
	}
	slices.SortFunc(results, func(a, b Result) int { return position[a.Schema] - position[b.Schema] })
	return results
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tenantry.dev/platform/benchkit"
)

// config is what the flags say.
type config struct {
	registryBin   string
	tenants       int
	creates       int
	records       int
	duration      time.Duration
	rounds        int
	clients       int
	conns         int
	createClients int
	fillClients   int
	memResolves   int
	budget        time.Duration
	moveMiB       int
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit, so that deferred cleanups run.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return benchkit.ExitMeasured
	}
	if err != nil {
		fmt.Fprintln(stderr, "registry-bench:", err)
		return benchkit.ExitUsage
	}

	ctx, interrupted, stop := benchkit.RunContext(cfg.budget)
	defer stop()

	b := newBench(cfg, stderr)
	code := b.run(ctx)
	if interrupted() {
		code = benchkit.ExitInterrupted
	}
	if err := b.tbl.Render(stdout, b.header()); err != nil {
		fmt.Fprintln(stderr, "registry-bench: print the table:", err)
		return benchkit.ExitIncomplete
	}
	b.cluster.Cleanup()
	return code
}

// parseFlags reads and checks the flags.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("registry-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: registry-bench -registry-bin bin/tenant-registry [flags]")
		fmt.Fprintln(fs.Output(), "Starts PostgreSQL and the registry, measures them and prints a Markdown table on stdout.")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.registryBin, "registry-bin", "", "tenant-registry `binary` to run (make build puts it in bin/)")
	fs.IntVar(&cfg.tenants, "tenants", 10000, "tenants created through the API in total, for the resolve-scaling and migrate-all measures")
	fs.IntVar(&cfg.creates, "creates", 1000, "creates timed for CreateTenant latency")
	fs.IntVar(&cfg.records, "records", 100000, "tenant records bulk-loaded for the memory measure")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of one round of health or resolve load")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds of each load; rounds are cut into slices of at most 1s that alternate between health and resolve")
	fs.IntVar(&cfg.clients, "clients", 16, "concurrent callers for health and resolve load")
	fs.IntVar(&cfg.conns, "conns", 4, "gRPC connections the callers share")
	fs.IntVar(&cfg.createClients, "create-clients", 4, "concurrent callers for the timed creates")
	fs.IntVar(&cfg.fillClients, "fill-clients", 8, "concurrent callers creating the remaining tenants")
	fs.IntVar(&cfg.memResolves, "memory-resolves", 5000, "resolves made before reading a registry's memory")
	fs.IntVar(&cfg.moveMiB, "move-mib", 200, "MiB of data in the tenant moved to another placement under writes (0: no move measure)")
	fs.DurationVar(&cfg.budget, "budget", 12*time.Minute, "time after which the run stops and reports what it has")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if cfg.registryBin == "" {
		bad("-registry-bin is required: build the registry with `make build` and pass bin/tenant-registry")
	} else if info, err := os.Stat(cfg.registryBin); err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		bad("-registry-bin %s is not an executable file; run `make build` first", cfg.registryBin)
	}
	if cfg.creates < 1 {
		bad("-creates must be at least 1")
	}
	if minTenants := fewTenants + cfg.creates; cfg.tenants < minTenants || cfg.tenants > 100000 {
		bad("-tenants must be from %d (%d for the first resolve measure plus -creates) to 100000, not %d", minTenants, fewTenants, cfg.tenants)
	}
	if cfg.records <= fewTenants || cfg.records > 1000000 {
		bad("-records must be from %d to 1000000, not %d", fewTenants+1, cfg.records)
	}
	if cfg.duration < 100*time.Millisecond {
		bad("-duration must be at least 100ms")
	}
	for name, n := range map[string]int{"-rounds": cfg.rounds, "-clients": cfg.clients, "-conns": cfg.conns,
		"-create-clients": cfg.createClients, "-fill-clients": cfg.fillClients, "-memory-resolves": cfg.memResolves} {
		if n < 1 {
			bad("%s must be at least 1", name)
		}
	}
	if cfg.moveMiB < 0 || cfg.moveMiB > 10240 {
		bad("-move-mib must be from 0 to 10240, not %d", cfg.moveMiB)
	}
	if cfg.budget <= 0 {
		bad("-budget must be positive")
	}
	if len(problems) > 0 {
		return cfg, errors.New(strings.Join(problems, "\n  "))
	}
	if abs, err := filepath.Abs(cfg.registryBin); err == nil {
		cfg.registryBin = abs
	}
	return cfg, nil
}

// bench is one run: its configuration, the system under test and the table
// it fills in.
type bench struct {
	cfg     config
	tbl     *benchkit.Table
	log     *slog.Logger // progress, on stderr
	quiet   *slog.Logger // for libraries that log every step at info
	stderr  io.Writer
	tok     tokens
	unclean map[string]bool // throughput rows whose load had failed calls

	start   time.Time
	ended   time.Time
	loadAvg string
	cluster *benchkit.Cluster
}

func newBench(cfg config, stderr io.Writer) *bench {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("bench", "registry")
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b := &bench{
		cfg:     cfg,
		tbl:     benchkit.NewTable(),
		log:     log,
		quiet:   quiet,
		stderr:  stderr,
		tok:     tokens{operator: benchkit.RandomToken(), service: benchkit.RandomToken()},
		unclean: map[string]bool{},
		start:   time.Now(),
		loadAvg: benchkit.LoadAverage(),
		cluster: benchkit.NewCluster(log, quiet),
	}
	declareMeasures(b.tbl, cfg)
	declareMoveMeasures(b.tbl, cfg)
	return b
}

// run takes every measure it can and returns the exit status.
func (b *bench) run(ctx context.Context) int {
	code := benchkit.ExitMeasured
	fail := func(what string, err error, keys ...string) {
		reason := benchkit.Reason(ctx, b.cfg.budget, fmt.Errorf("%s: %w", what, err))
		b.log.Error("measures not taken", "what", what, "reason", reason)
		b.tbl.Skip(reason, keys...)
		code = benchkit.ExitIncomplete
	}
	// Creates pay for real commits, as in production: the cluster is
	// durable.
	if err := b.cluster.Start(ctx, "registry-bench-*"); err != nil {
		fail("start PostgreSQL", err, append(append(append([]string{}, apiKeys...), memoryKeys...), moveKeys...)...)
	} else {
		if err := b.apiRun(ctx); err != nil {
			fail("registry fed through its API", err, apiKeys...)
		}
		if err := b.memoryRun(ctx); err != nil {
			fail("registry memory", err, memoryKeys...)
		}
		if b.cfg.moveMiB == 0 {
			b.tbl.Skip("not measured: -move-mib 0", moveKeys...)
		} else if err := b.moveRun(ctx); err != nil {
			fail("tenant move", err, moveKeys...)
		}
	}
	b.ended = time.Now()
	total := b.ended.Sub(b.start)
	b.tbl.Set(kTotal, benchkit.FormatSeconds(total), benchkit.Verdict(total < maxTotalRunTime))
	b.methodNotes()
	return code
}

// database creates a database in the cluster and returns its URL.
func (b *bench) database(ctx context.Context, name string) (string, error) {
	return b.cluster.CreateDatabase(ctx, name)
}

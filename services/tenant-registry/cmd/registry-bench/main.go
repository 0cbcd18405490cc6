package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/platform/pgcluster"
)

// Exit statuses.
const (
	exitMeasured    = 0   // every measure was taken; the table says which targets were met
	exitIncomplete  = 1   // some measures could not be taken; the table says why
	exitUsage       = 2   // bad flags
	exitInterrupted = 130 // SIGINT or SIGTERM
)

// cleanupTimeout bounds stopping the cluster at the end.
const cleanupTimeout = time.Minute

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
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit, so that deferred cleanups run.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitMeasured
	}
	if err != nil {
		fmt.Fprintln(stderr, "registry-bench:", err)
		return exitUsage
	}

	// The first SIGINT or SIGTERM cancels the run, which still prints what
	// it measured and cleans up; a second one kills at once (the cluster's
	// watchdog and the registries' parent-death signal then clean up).
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	go func() { <-sigCtx.Done(); stopSignals() }()
	ctx, cancel := context.WithTimeoutCause(sigCtx, cfg.budget, errBudget)
	defer cancel()

	b := newBench(cfg, stderr)
	code := b.run(ctx)
	if sigCtx.Err() != nil {
		code = exitInterrupted
	}
	if err := b.tbl.render(stdout, b.header()); err != nil {
		fmt.Fprintln(stderr, "registry-bench: print the table:", err)
		return exitIncomplete
	}
	b.cleanup()
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
	fs.DurationVar(&cfg.budget, "budget", 9*time.Minute, "time after which the run stops and reports what it has")
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
	tbl     *table
	log     *slog.Logger // progress, on stderr
	quiet   *slog.Logger // for libraries that log every step at info
	stderr  io.Writer
	tok     tokens
	unclean map[string]bool // throughput rows whose load had failed calls

	start   time.Time
	ended   time.Time
	loadAvg string
	tempDir string
	cluster *pgcluster.Cluster
	pgInfo  string
}

func newBench(cfg config, stderr io.Writer) *bench {
	b := &bench{
		cfg:     cfg,
		tbl:     newTable(),
		log:     slog.New(slog.NewTextHandler(stderr, nil)).With("bench", "registry"),
		quiet:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		stderr:  stderr,
		tok:     tokens{operator: randomToken(), service: randomToken()},
		unclean: map[string]bool{},
		start:   time.Now(),
		loadAvg: loadAverage(),
	}
	declareMeasures(b.tbl, cfg)
	return b
}

// run takes every measure it can and returns the exit status.
func (b *bench) run(ctx context.Context) int {
	code := exitMeasured
	fail := func(what string, err error, keys ...string) {
		reason := b.reason(ctx, fmt.Errorf("%s: %w", what, err))
		b.log.Error("measures not taken", "what", what, "reason", reason)
		b.tbl.skip(reason, keys...)
		code = exitIncomplete
	}
	if err := b.startCluster(ctx); err != nil {
		fail("start PostgreSQL", err, append(append([]string{}, apiKeys...), memoryKeys...)...)
	} else {
		if err := b.apiRun(ctx); err != nil {
			fail("registry fed through its API", err, apiKeys...)
		}
		if err := b.memoryRun(ctx); err != nil {
			fail("registry memory", err, memoryKeys...)
		}
	}
	b.ended = time.Now()
	total := b.ended.Sub(b.start)
	b.tbl.set(kTotal, formatSeconds(total), verdict(total < maxTotalRunTime))
	b.methodNotes()
	return code
}

// reason explains why a step failed, naming an interruption or the spent
// budget rather than the context error they cause deep inside.
func (b *bench) reason(ctx context.Context, err error) string {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errBudget):
		return fmt.Sprintf("the time budget of %s (-budget) was spent (%v)", b.cfg.budget, err)
	case cause != nil:
		return "the run was interrupted"
	}
	return err.Error()
}

// startCluster initialises and starts a throwaway PostgreSQL cluster with
// durable settings: creates pay for real commits, as in production.
func (b *bench) startCluster(ctx context.Context) error {
	dir, err := pgcluster.MkdirTemp("", "registry-bench-*")
	if err != nil {
		return err
	}
	b.tempDir = dir
	b.log.Info("starting PostgreSQL", "dir", dir)
	c, err := pgcluster.Init(ctx, pgcluster.Options{
		DataDir:         filepath.Join(dir, "data"),
		StopWithProcess: true,
		Logger:          b.quiet,
	})
	if err != nil {
		return err
	}
	b.cluster = c
	if err := c.Start(ctx); err != nil {
		return err
	}
	b.pgInfo = b.describePostgres(ctx)
	return nil
}

// describePostgres reads the server's version and durability settings, so
// the header states them as they are rather than as intended.
func (b *bench) describePostgres(ctx context.Context) string {
	conn, err := pgx.Connect(ctx, b.cluster.URL("postgres"))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var version, fsync, syncCommit, sharedBuffers string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('shared_buffers')`).Scan(&version, &fsync, &syncCommit, &sharedBuffers)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return fmt.Sprintf("PostgreSQL %s, fsync=%s, synchronous_commit=%s, shared_buffers=%s", version, fsync, syncCommit, sharedBuffers)
}

// database creates a database in the cluster and returns its URL.
func (b *bench) database(ctx context.Context, name string) (string, error) {
	if err := b.cluster.CreateDatabase(ctx, name); err != nil {
		return "", err
	}
	return b.cluster.URL(name), nil
}

// cleanup stops the cluster and removes its directory. The registries are
// stopped by the steps that started them.
func (b *bench) cleanup() {
	if b.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := b.cluster.Stop(ctx); err != nil {
			b.log.Error("stop PostgreSQL; its data directory is kept", "err", err, "dir", b.tempDir)
			return
		}
	}
	if b.tempDir != "" {
		if err := os.RemoveAll(b.tempDir); err != nil {
			b.log.Warn("remove the temporary directory", "err", err)
		}
	}
}

// randomToken returns a bearer token for one run.
func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/identity/internal/password"
	"tenantry.dev/platform/benchkit"
)

const (
	// databaseName is the one database the registry and identity share:
	// the registry creates tenant schemas in it, identity fills them.
	databaseName = "tenantry"
	// maxKeptTokens bounds the access tokens kept from logins for the
	// verification measure.
	maxKeptTokens = 1000
)

// config is what the flags say.
type config struct {
	registryBin   string
	identityBin   string
	steps         map[string]bool // -steps; nil: all
	tracesSampler string          // -traces-sampler
	tenants       int
	duration      time.Duration
	rounds        int
	loginClients  int
	hashWorkers   int
	signupClients int
	clients       int
	conns         int
	sourceAddrs   int
	fillClients   int
	budget        time.Duration
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
		fmt.Fprintln(stderr, "identity-bench:", err)
		return benchkit.ExitUsage
	}

	// The argon2id baselines hash in this process: at identity's own GOGC,
	// as issue 13 asks, not Go's default, whose extra GC cycles would slow
	// the baseline and flatter identity.
	debug.SetGCPercent(password.ServiceGOGC)

	ctx, interrupted, stop := benchkit.RunContext(cfg.budget)
	defer stop()

	b := newBench(cfg, stderr)
	code := b.run(ctx)
	if interrupted() {
		code = benchkit.ExitInterrupted
	}
	if err := b.tbl.Render(stdout, b.header()); err != nil {
		fmt.Fprintln(stderr, "identity-bench: print the table:", err)
		code = benchkit.ExitIncomplete
	}
	b.cluster.Cleanup()
	return code
}

// parseFlags reads and checks the flags.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	procs := runtime.GOMAXPROCS(0)
	fs := flag.NewFlagSet("identity-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: identity-bench -registry-bin bin/tenant-registry -identity-bin bin/identity [flags]")
		fmt.Fprintln(fs.Output(), "Starts PostgreSQL, the registry and identity, measures identity and prints a Markdown table on stdout.")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.registryBin, "registry-bin", "", "tenant-registry `binary` to run (make build puts it in bin/)")
	fs.StringVar(&cfg.identityBin, "identity-bin", "", "identity `binary` to run (make build puts it in bin/)")
	fs.IntVar(&cfg.tenants, "tenants", 1000, "tenants created through the registry, for the start-up migration and spread-login measures")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of one round of each load")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds of each load; rounds are cut into slices of at most 1s that alternate with the baseline's")
	fs.IntVar(&cfg.loginClients, "login-clients", 2*procs, "concurrent logins: more than identity's hash slots (GOMAXPROCS), so that Login runs at its capacity (default 2×GOMAXPROCS)")
	fs.IntVar(&cfg.hashWorkers, "hash-goroutines", procs, "goroutines hashing for the argon2id baseline: one per core is the most hashes per second (default GOMAXPROCS)")
	fs.IntVar(&cfg.signupClients, "signup-clients", 2*procs, "concurrent sign-ups while setting up accounts")
	fs.IntVar(&cfg.clients, "clients", 16, "concurrent callers of health, RefreshSession and GetCurrentUser")
	fs.IntVar(&cfg.conns, "conns", 4, "gRPC connections the -clients callers share")
	fs.IntVar(&cfg.sourceAddrs, "source-addrs", 64, "loopback addresses (127.0.0.2 up) logins and sign-ups come from, one connection each")
	fs.IntVar(&cfg.fillClients, "fill-clients", 8, "concurrent callers creating tenants")
	fs.DurationVar(&cfg.budget, "budget", maxTotalRunTime, "time after which the run stops and reports what it has")
	fs.StringVar(&cfg.tracesSampler, "traces-sampler", "", "OTEL_TRACES_SAMPLER[=ARG] of the traced identity in the tracing measure, e.g. parentbased_traceidratio=0.01 (default: the services' default sampling)")
	steps := fs.String("steps", "", "comma-separated steps to run, in their fixed order (default: all): "+strings.Join(stepNames, ", ")+
		"; the login step sets up the accounts the others use, so it always runs")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if *steps != "" {
		cfg.steps = map[string]bool{}
		for _, name := range strings.Split(*steps, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(stepNames, name) {
				bad("-steps: no step %q; the steps are %s", name, strings.Join(stepNames, ", "))
			}
			cfg.steps[name] = true
		}
	}
	for _, bin := range []struct{ flag, path, what string }{
		{"-registry-bin", cfg.registryBin, "bin/tenant-registry"},
		{"-identity-bin", cfg.identityBin, "bin/identity"},
	} {
		if bin.path == "" {
			bad("%s is required: build the services with `make build` and pass %s", bin.flag, bin.what)
		} else if info, err := os.Stat(bin.path); err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			bad("%s %s is not an executable file; run `make build` first", bin.flag, bin.path)
		}
	}
	if cfg.tenants < 2 || cfg.tenants > 100000 {
		bad("-tenants must be from 2 to 100000, not %d", cfg.tenants)
	}
	if cfg.duration < 100*time.Millisecond {
		bad("-duration must be at least 100ms")
	}
	if cfg.sourceAddrs < 1 || cfg.sourceAddrs > maxSourceAddrs {
		bad("-source-addrs must be from 1 to %d, not %d", maxSourceAddrs, cfg.sourceAddrs)
	}
	for name, n := range map[string]int{"-rounds": cfg.rounds, "-login-clients": cfg.loginClients, "-hash-goroutines": cfg.hashWorkers, "-signup-clients": cfg.signupClients,
		"-clients": cfg.clients, "-conns": cfg.conns, "-fill-clients": cfg.fillClients} {
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
	for _, p := range []*string{&cfg.registryBin, &cfg.identityBin} {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	return cfg, nil
}

// stepNames are the -steps a run can be limited to (run's order).
var stepNames = []string{"login", "jwks", "session", "oauth", "tenants", "rest-login", "mfa", "passkey"}

// bench is one run: its configuration, the system under test and the table
// it fills in.
type bench struct {
	cfg     config
	tbl     *benchkit.Table
	log     *slog.Logger // progress, on stderr
	quiet   *slog.Logger // for libraries that log every step at info
	stderr  io.Writer
	sec     secrets
	pass    string          // every bench account's password
	unclean map[string]bool // rows whose load had failed calls

	start   time.Time
	ended   time.Time
	loadAvg string
	cluster *benchkit.Cluster
	pgMeter benchkit.CPUMeter // PostgreSQL's CPU time
	dbURL   string
	db      *pgxpool.Pool // the bench's own look at the database

	registry    *benchkit.Process
	regClient   *registryClient
	identity    *identityProcess
	shared      identityConns // -conns connections from 127.0.0.1
	fromSources identityConns // one connection per source address
	restSources *restClients  // REST clients, one per source address
	sources     []netip.Addr

	hashCall   benchkit.CallFunc // one argon2id verify in this process, as Login does
	onePool    *accountPool      // accounts of the one tenant
	spreadPool *accountPool      // accounts of every tenant
	loginRate  float64           // Login throughput in one tenant, once measured
	hashRate   float64           // argon2id verifications per second, once measured
	ceilingMax int               // most of the one tenant's login burst seen in use

	tokensMu sync.Mutex
	tokens   []string // access tokens from logins
}

func newBench(cfg config, stderr io.Writer) *bench {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("bench", "identity")
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b := &bench{
		cfg:     cfg,
		tbl:     benchkit.NewTable(),
		log:     log,
		quiet:   quiet,
		stderr:  stderr,
		sec:     newSecrets(),
		pass:    "bench-" + benchkit.RandomToken(),
		unclean: map[string]bool{},
		start:   time.Now(),
		loadAvg: benchkit.LoadAverage(),
		cluster: benchkit.NewCluster(log, quiet),
	}
	declareMeasures(b.tbl, cfg)
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
	if err := b.startSystem(ctx); err != nil {
		fail("start PostgreSQL, the registry and identity", err, allKeys...)
	} else {
		for _, step := range []struct {
			name string
			what string
			run  func(context.Context) error
			keys []string
		}{
			{"login", "argon2id and Login", b.loginRun, loginKeys},
			{"jwks", "access-token verification with the JWKS", b.jwksRun, jwksKeys},
			{"session", "RefreshSession and GetCurrentUser", b.sessionRun, sessionKeys},
			{"oauth", "the OpenID Provider's token endpoint, discovery and JWKS", b.oauthRun, oauthKeys},
			{"tenants", "many tenants", b.tenantsRun, tenantKeys},
			{"rest-login", "Login over REST and over gRPC", b.restLoginRun, restLoginKeys},
			{"mfa", "Login with a second factor", b.mfaLoginRun, mfaLoginKeys},
			{"passkey", "login with a passkey", b.passkeyRun, passkeyLoginKeys},
		} {
			if b.cfg.steps != nil && step.name != "login" && !b.cfg.steps[step.name] {
				b.tbl.Skip("not among -steps", step.keys...)
				continue
			}
			// Once interrupted or out of time, the remaining steps are
			// marked as not taken without starting them.
			err := ctx.Err()
			if err == nil {
				err = step.run(ctx)
			}
			if err != nil {
				fail(step.what, err, step.keys...)
			}
		}
	}
	b.stopServices()
	b.ended = time.Now()
	total := b.ended.Sub(b.start)
	b.tbl.Set(kTotal, benchkit.FormatSeconds(total), benchkit.Verdict(total < maxTotalRunTime))
	b.methodNotes()
	return code
}

// startSystem starts a throwaway PostgreSQL cluster with durable settings
// (logins and sign-ups pay for real commits, as in production), the
// registry and identity on it, and connects to both.
func (b *bench) startSystem(ctx context.Context) error {
	if err := b.cluster.Start(ctx, "identity-bench-*"); err != nil {
		return err
	}
	b.pgMeter = benchkit.PostgresCPU(b.cluster.PG().DataDir())
	var err error
	if b.dbURL, err = b.cluster.CreateDatabase(ctx, databaseName); err != nil {
		return err
	}
	if b.db, err = pgxpool.New(ctx, b.dbURL+"&pool_max_conns=2"); err != nil {
		return fmt.Errorf("connect to the database: %w", err)
	}

	b.log.Info("starting the registry and identity")
	if b.registry, err = startRegistry(ctx, b.cfg.registryBin, b.dbURL, b.sec, b.stderr); err != nil {
		return err
	}
	if b.regClient, err = dialRegistry(b.registry.Addr(), b.sec.operator); err != nil {
		return err
	}
	if b.sources, err = sourceAddrs(b.cfg.sourceAddrs); err != nil {
		return err
	}
	return b.startIdentity(ctx, "warn")
}

// startIdentity starts identity at logLevel, stopping any identity already
// running, and connects to it afresh; env adds settings to its environment.
func (b *bench) startIdentity(ctx context.Context, logLevel string, env ...string) error {
	b.stopIdentity()
	p, err := startIdentity(ctx, b.cfg.identityBin, b.dbURL, b.registry.Addr(), logLevel, b.sec, b.stderr, env...)
	if err != nil {
		return err
	}
	b.identity = p
	return b.dialIdentity()
}

// dialIdentity opens the bench's connections to the running identity.
func (b *bench) dialIdentity() error {
	var err error
	if b.shared, err = dialIdentity(b.identity.Addr(), make([]netip.Addr, b.cfg.conns)); err != nil {
		return err
	}
	if b.fromSources, err = dialIdentity(b.identity.Addr(), b.sources); err != nil {
		return err
	}
	b.restSources, err = newRESTClients(b.identity.httpAddr, b.sources, b.cfg.loginClients)
	return err
}

// stopIdentity closes the connections to identity and stops it.
func (b *bench) stopIdentity() {
	b.shared.close()
	b.fromSources.close()
	b.restSources.close()
	b.shared, b.fromSources, b.restSources = nil, nil, nil
	if b.identity != nil {
		if err := b.identity.Stop(); err != nil {
			b.log.Warn("stopping identity", "err", err)
		}
		b.identity = nil
	}
}

// stopServices stops identity and the registry, in that order: identity
// follows the registry.
func (b *bench) stopServices() {
	b.stopIdentity()
	if b.regClient != nil {
		b.regClient.close()
	}
	if err := b.registry.Stop(); err != nil {
		b.log.Warn("stopping the registry", "err", err)
	}
	if b.db != nil {
		b.db.Close()
	}
}

// keepToken keeps an access token from a login for the verification
// measure.
func (b *bench) keepToken(tok string) {
	b.tokensMu.Lock()
	defer b.tokensMu.Unlock()
	if len(b.tokens) < maxKeptTokens {
		b.tokens = append(b.tokens, tok)
	}
}

// clean reports whether the load behind a row had no failures.
func (b *bench) clean(key string) bool { return !b.unclean[key] }

// Command notes-bench measures what the client kit costs a product service
// (make bench): a tenant-scoped read through the notes example (tenant
// lookup, token check, the tenant role's pool, the query) against
// grpc.health.v1 Check on the same server, and a transaction as a tenant's
// own role against the same transaction on a shared pool, each pair
// interleaved in the same run. Exit status: 0 when every measure was
// taken, 1 when some could not be.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	notesv1 "tenantry.dev/gen/tenantry/notes/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/kit/tenantpool"
	"tenantry.dev/platform/benchkit"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tenantrole"
)

type config struct {
	registryBin, identityBin, notesBin string
	rounds                             int
	duration                           time.Duration
	workers                            int
	budget                             time.Duration
	notesCPUProfile                    string
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("notes-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.registryBin, "registry-bin", "bin/tenant-registry", "tenant-registry binary")
	fs.StringVar(&c.identityBin, "identity-bin", "bin/identity", "identity binary")
	fs.StringVar(&c.notesBin, "notes-bin", "bin/notes", "notes binary")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds of -duration of each load")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "length of one round")
	fs.IntVar(&c.workers, "workers", 8, "calls in flight")
	fs.DurationVar(&c.budget, "budget", 10*time.Minute, "time budget of the whole run")
	fs.StringVar(&c.notesCPUProfile, "notes-cpu-profile", "", "write the notes service's CPU profile to this file (go tool pprof; it serves only the read measure, health and ListNotes)")
	if err := fs.Parse(args); err != nil {
		return benchkit.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, interrupted, stop := benchkit.RunContext(c.budget)
	defer stop()

	t := benchkit.NewTable()
	t.Declare("read", "Tenant-scoped read through the kit (ListNotes: tenant lookup, token check, tenant role's pool, query) ÷ grpc.health.v1 Check, same server", "ratio", "≥ 0.5")
	t.Declare("readcpu", "CPU per call of the read ÷ health pair: the notes service, PostgreSQL, this program (the gRPC client)", "µs", "info")
	t.Declare("role", "Transaction as the tenant's own login role (kit/tenantpool) ÷ the same on a shared pool with the search path set", "ratio", "≥ 0.9")
	t.Declare("setrole", "For comparison: shared pool plus SET ROLE to the tenant role (the design not taken: injectable) ÷ shared pool", "ratio", "info")
	start := time.Now()
	load := benchkit.MachineLine("")
	cluster := benchkit.NewCluster(log, quiet)
	defer cluster.Cleanup()
	status := benchkit.ExitMeasured
	err := measure(ctx, log, c, cluster, t)
	if err != nil {
		status = benchkit.ExitIncomplete
		t.Skip(benchkit.Reason(ctx, c.budget, err), "read", "readcpu", "role", "setrole")
	}
	if interrupted() {
		status = benchkit.ExitInterrupted
	}
	_ = t.Render(stdout, benchkit.Header{
		Title: "Tenantry client kit benchmark (services/notes)",
		Lines: []string{
			benchkit.DateLine(start, time.Now()), load,
			fmt.Sprintf("Software: %s; bench built with %s", cluster.Description(), runtime.Version()),
			fmt.Sprintf("Sizes: %d rounds of %s of each load, %d calls in flight; one tenant, 20 notes, ListNotes page of 10", c.rounds, c.duration, c.workers),
		},
	})
	return status
}

// ratio is a comparison's cell: the ratio and the two rates behind it.
func ratio(cmp benchkit.Comparison) string {
	return fmt.Sprintf("%s (%s/s ÷ %s/s)", benchkit.FormatFloat(cmp.Ratio),
		benchkit.FormatFloat(cmp.Subject.MedianThroughput()), benchkit.FormatFloat(cmp.Base.MedianThroughput()))
}

// cpuPerCall is a side's CPU per call by meter (notes, PostgreSQL, this
// program), in µs; "?" for a meter that could not be read.
func cpuPerCall(s benchkit.Series) string {
	cell := make([]string, 3)
	for i := range cell {
		cell[i] = "?"
		if cpu, ok := s.CPUPerCall(i); ok {
			cell[i] = benchkit.FormatFloat(float64(cpu) / float64(time.Microsecond))
		}
	}
	return fmt.Sprintf("%s + %s + %s", cell[0], cell[1], cell[2])
}

// discard drops the services' logs: an access log line per call.
func discard(string) {}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func measure(ctx context.Context, log *slog.Logger, c config, cluster *benchkit.Cluster, t *benchkit.Table) error {
	if err := cluster.Start(ctx, "notes-bench-*"); err != nil {
		return err
	}
	db, err := cluster.CreateDatabase(ctx, "tenantry")
	if err != nil {
		return err
	}
	operator, service, componentKey, kek := benchkit.RandomToken(), benchkit.RandomToken(), benchkit.RandomToken(), benchkit.RandomToken()
	regAddr, _ := benchkit.FreeAddr()
	reg, err := benchkit.StartProcess(ctx, benchkit.ProcessOptions{OnLine: discard, Forwarded: "none of its output", Name: "the registry", Bin: c.registryBin, Addr: regAddr,
		Args: []string{"-grpc-addr", regAddr, "-http-addr", "", "-database-url", db, "-operator-token", operator,
			"-service-token", service, "-component-key", componentKey, "-spare-schemas", "0"}})
	if err != nil {
		return err
	}
	defer func() { _ = reg.Stop() }()
	idAddr, _ := benchkit.FreeAddr()
	id, err := benchkit.StartProcess(ctx, benchkit.ProcessOptions{OnLine: discard, Forwarded: "none of its output", Name: "identity", Bin: c.identityBin, Addr: idAddr,
		Args: []string{"-grpc-addr", idAddr, "-http-addr", "", "-database-url", db, "-registry-addr", regAddr,
			"-operator-token", operator, "-service-token", service, "-key-encryption-key", kek,
			"-component-token", tenantrole.ComponentToken([]byte(componentKey), "identity")}})
	if err != nil {
		return err
	}
	defer func() { _ = id.Stop() }()
	token := tenantrole.ComponentToken([]byte(componentKey), "notes")
	notesAddr, _ := benchkit.FreeAddr()
	notesArgs := []string{"-grpc-addr", notesAddr, "-http-addr", "", "-database-url", db, "-registry-addr", regAddr,
		"-identity-addr", idAddr, "-component-token", token, "-tenant-pool-conns", fmt.Sprint(c.workers)}
	if c.notesCPUProfile != "" {
		notesArgs = append(notesArgs, "-cpu-profile", c.notesCPUProfile)
	}
	notes, err := benchkit.StartProcess(ctx, benchkit.ProcessOptions{OnLine: discard, Forwarded: "none of its output", Name: "notes", Bin: c.notesBin, Addr: notesAddr,
		Args: notesArgs})
	if err != nil {
		return err
	}
	defer func() { _ = notes.Stop() }()

	regConn, err := dial(regAddr)
	if err != nil {
		return err
	}
	defer regConn.Close()
	opCtx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+operator)
	created, err := registryv1.NewTenantServiceClient(regConn).CreateTenant(opCtx, &registryv1.CreateTenantRequest{
		TenantId: "bench", Tenant: &registryv1.Tenant{DisplayName: "Bench"}})
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	idConn, err := dial(idAddr)
	if err != nil {
		return err
	}
	defer idConn.Close()
	inTenant := metadata.AppendToOutgoingContext(ctx, "x-tenant", "bench")
	auth := identityv1.NewAuthServiceClient(idConn)
	if _, err := auth.SignUp(inTenant, &identityv1.SignUpRequest{Email: "bench@example.com", Password: "correct horse battery staple"}); err != nil {
		return fmt.Errorf("sign up: %w", err)
	}
	login, err := auth.Login(inTenant, &identityv1.LoginRequest{Email: "bench@example.com", Password: "correct horse battery staple"})
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	notesConn, err := dial(notesAddr)
	if err != nil {
		return err
	}
	defer notesConn.Close()
	client := notesv1.NewNotesServiceClient(notesConn)
	asUser := metadata.AppendToOutgoingContext(inTenant, "authorization", "Bearer "+login.GetAccessToken())
	for i := range 20 {
		if _, err := client.CreateNote(asUser, &notesv1.CreateNoteRequest{Note: &notesv1.Note{Body: fmt.Sprintf("note %d", i)}}); err != nil {
			return fmt.Errorf("create note: %w", err)
		}
	}
	health := healthpb.NewHealthClient(notesConn)
	sched := benchkit.Schedule{Rounds: c.rounds, Duration: c.duration, Warmup: c.duration / 2, Workers: c.workers}
	// Who spends the CPU the two loads share the cores for.
	meters := []benchkit.CPUMeter{notes.CPUTime, benchkit.PostgresCPU(cluster.PG().DataDir()), benchkit.SelfCPUTime}
	cmp, err := benchkit.Interleave(ctx, log, sched,
		benchkit.Side{Call: func(ctx context.Context, _ int, _ *rand.Rand) error {
			_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, CPU: meters},
		benchkit.Side{Call: func(ctx context.Context, _ int, _ *rand.Rand) error {
			_, err := client.ListNotes(metadata.NewOutgoingContext(ctx, metadata.Pairs("x-tenant", "bench", "authorization", "Bearer "+login.GetAccessToken())), &notesv1.ListNotesRequest{PageSize: 10})
			return err
		}, CPU: meters})
	if err != nil {
		return fmt.Errorf("read through the kit: %w", err)
	}
	t.Set("read", ratio(cmp), benchkit.Verdict(cmp.Ratio >= 0.5))
	t.Info("readcpu", fmt.Sprintf("ListNotes %s; health %s", cpuPerCall(cmp.Subject), cpuPerCall(cmp.Base)))

	// The database side alone, in this process: the same read as the
	// tenant's role, on a shared pool, and on a shared pool with SET ROLE.
	tenant := tenancy.Tenant{UID: created.GetTenant().GetUid(), Slug: "bench", Schema: created.GetTenant().GetSchema(),
		Placement: created.GetTenant().GetPlacement(), State: tenancy.Active}
	pools, err := tenantpool.New(tenantpool.Options{ComponentToken: token, Placements: map[string]string{tenant.Placement: db},
		MaxConnsPerTenant: int32(c.workers)})
	if err != nil {
		return err
	}
	defer pools.Close()
	cfg, err := pgxpool.ParseConfig(db)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(c.workers)
	shared, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer shared.Close()
	const read = `SELECT id, title, body FROM notes ORDER BY id DESC LIMIT 10`
	scan := func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, read)
		if err != nil {
			return err
		}
		_, err = pgx.CollectRows(rows, pgx.RowToMap)
		return err
	}
	sharedSide := benchkit.Side{Call: func(ctx context.Context, _ int, _ *rand.Rand) error {
		return tenantdb.InTenant(ctx, shared, tenant.Schema, scan)
	}}
	cmp, err = benchkit.Interleave(ctx, log, sched, sharedSide,
		benchkit.Side{Call: func(ctx context.Context, _ int, _ *rand.Rand) error { return pools.InTenant(ctx, tenant, scan) }})
	if err != nil {
		return fmt.Errorf("tenant role: %w", err)
	}
	t.Set("role", ratio(cmp), benchkit.Verdict(cmp.Ratio >= 0.9))

	role := tenantrole.RoleName(tenant.UID, "notes")
	cmp, err = benchkit.Interleave(ctx, log, sched, sharedSide,
		benchkit.Side{Call: func(ctx context.Context, _ int, _ *rand.Rand) error {
			return tenantdb.InTenant(ctx, shared, tenant.Schema, func(ctx context.Context, tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT set_config('role', $1, true)`, role); err != nil {
					return err
				}
				return scan(ctx, tx)
			})
		}})
	if err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	t.Info("setrole", ratio(cmp))
	return nil
}

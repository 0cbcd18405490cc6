package notes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	notesv1 "tenantry.dev/gen/tenantry/notes/v1"
	"tenantry.dev/kit/service"
	"tenantry.dev/kit/tenantpool"
	"tenantry.dev/platform/accesslog"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/flagenv"
	"tenantry.dev/platform/metrics"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/rpcserver"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/platform/tracing"
)

// Config is the notes service's configuration, from flags or TENANTRY_*
// variables (the same environment as `make run`).
type Config struct {
	GRPCAddr, HTTPAddr         string
	MetricsAddr                string // see metrics.ParseAddr
	RegistryAddr, IdentityAddr string
	ComponentToken             string
	Issuer                     string
	Placements                 map[string]string
	BaseDomains                []string
	AllowInsecure              bool
	TLSCertFile, TLSKeyFile    string
	// EnvVars is the environment variable each flag reads, by flag name,
	// for messages that name a setting (rpcserver.Config.EnvVars).
	EnvVars map[string]string
	// TenantPoolConns bounds each tenant's connection pool.
	TenantPoolConns int
	// CPUProfile, when set, is the file the process writes a CPU profile
	// of its whole run to (cmd/notes; notes-bench -notes-cpu-profile).
	CPUProfile                  string
	databaseURL, placementsSpec string
	// Tracing, when set, is used instead of what the OTEL_* variables say
	// (tracing.Setup): tests put an in-memory exporter here.
	Tracing *tracing.Tracing
	// AccessLog says how routine calls' access-log records are written.
	AccessLog *accesslog.Policy
}

// LoadConfig parses args with lookup as the environment.
func LoadConfig(args []string, lookup flagenv.Lookup) (*Config, error) {
	c := &Config{}
	fs := flagenv.New("notes", lookup)
	var bases, poolConns string
	fs.String(&c.GRPCAddr, "grpc-addr", "TENANTRY_NOTES_GRPC_ADDR", "localhost:50053", "gRPC listen address")
	fs.String(&c.HTTPAddr, "http-addr", "TENANTRY_NOTES_HTTP_ADDR", "localhost:8083", "REST listen address (every tenant host); empty serves no HTTP")
	fs.String(&c.MetricsAddr, "metrics-addr", "TENANTRY_METRICS_ADDR", "", "where Prometheus metrics are served: empty on the HTTP port at /metrics, \"off\" nowhere, host:port on a listener of their own")
	fs.String(&c.RegistryAddr, "registry-addr", "TENANTRY_REGISTRY_ADDR", "localhost:50051", "gRPC address of the tenant registry")
	fs.String(&c.IdentityAddr, "identity-addr", "TENANTRY_IDENTITY_ADDR", "localhost:50052", "gRPC address of identity (for its JWKS)")
	fs.String(&c.ComponentToken, "component-token", "TENANTRY_COMPONENT_TOKEN", "", "the notes component's token: `tenantry components credential notes`")
	fs.String(&c.Issuer, "issuer", "TENANTRY_ISSUER", service.DefaultIssuer, "identity's token issuer")
	fs.String(&c.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL of the default placement (its user and password are not used)")
	fs.String(&c.placementsSpec, "placements", "TENANTRY_PLACEMENTS", "", "extra placements: name=postgres-url,... (as configured on the registry)")
	fs.String(&bases, "base-domains", "TENANTRY_BASE_DOMAINS", "localhost", "the registry's base domains: {slug}.{base} is the tenant's host")
	fs.String(&c.TLSCertFile, "tls-cert", "TENANTRY_TLS_CERT", "", "TLS certificate file (PEM); plaintext when unset")
	fs.String(&c.TLSKeyFile, "tls-key", "TENANTRY_TLS_KEY", "", "TLS private key file (PEM)")
	fs.String(&poolConns, "tenant-pool-conns", "TENANTRY_TENANT_POOL_CONNS", "4", "connections per tenant's pool (the pools of the 64 most recently used tenants stay open)")
	fs.String(&c.CPUProfile, "cpu-profile", "TENANTRY_NOTES_CPU_PROFILE", "", "write a CPU profile of the whole run to this file (go tool pprof), for profiling make bench")
	fs.Bool(&c.AllowInsecure, "allow-insecure", "TENANTRY_ALLOW_INSECURE", false, "allow plaintext on non-loopback addresses")
	c.AccessLog = &accesslog.Policy{}
	accesslog.Flags(fs, c.AccessLog)
	c.EnvVars = fs.EnvVars()
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var problems flagenv.Problems
	c.TenantPoolConns = problems.Int("TENANTRY_TENANT_POOL_CONNS", poolConns, 1, 100)
	if c.ComponentToken == "" {
		problems.Addf("TENANTRY_COMPONENT_TOKEN (or -component-token) is required: print it with `bin/tenantry components credential notes`")
	}
	if c.databaseURL == "" {
		problems.Addf("DATABASE_URL (or -database-url) is required: the default placement's database")
	}
	placements, bad := tenantdb.ParsePlacements("TENANTRY_PLACEMENTS", c.placementsSpec, c.databaseURL)
	for _, b := range bad {
		problems.Addf("%s", b)
	}
	c.Placements = placements
	domains, invalid := tenantname.ParseBaseDomains(flagenv.List(bases))
	for _, d := range invalid {
		problems.Addf("TENANTRY_BASE_DOMAINS: %q is not a valid domain name", d)
	}
	c.BaseDomains = domains
	return c, problems.Err()
}

// App is the running notes service.
type App struct {
	kit        *service.Service
	rpc        *rpcserver.Server
	rest       *restgateway.Gateway
	registry   *grpc.ClientConn
	identity   *grpc.ClientConn
	logger     *slog.Logger
	registered []int32
	metrics    *metrics.Registry // nil when TENANTRY_METRICS_ADDR is off
	metricsSrv *metrics.Server   // when the metrics have an address of their own
	tracing    *tracing.Tracing  // nil when the OTEL_* variables leave traces off
	listening  bool
}

// New wires the service and registers the notes component's migrations
// with the registry, which fails fast if the registry or the token is
// wrong.
func New(ctx context.Context, cfg *Config, logger *slog.Logger) (*App, error) {
	a := &App{logger: logger, tracing: cfg.Tracing}
	var err error
	if a.tracing == nil {
		if a.tracing, err = tracing.Setup(ctx, "notes", logger); err != nil {
			return nil, err
		}
	}
	// Calls to the registry and identity carry the trace on.
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, a.tracing.DialOptions()...)
	if a.registry, err = grpc.NewClient(cfg.RegistryAddr, dial...); err != nil {
		return nil, errors.Join(fmt.Errorf("registry address %q: %w", cfg.RegistryAddr, err), a.close())
	}
	if a.identity, err = grpc.NewClient(cfg.IdentityAddr, dial...); err != nil {
		return nil, errors.Join(fmt.Errorf("identity address %q: %w", cfg.IdentityAddr, err), a.close())
	}
	a.kit, err = service.New(service.Config{
		ComponentToken: cfg.ComponentToken,
		Registry:       a.registry,
		Identity:       a.identity,
		Issuer:         cfg.Issuer,
		Placements:     cfg.Placements,
		BaseDomains:    cfg.BaseDomains,
		Pool:           tenantpool.Options{MaxConnsPerTenant: int32(cfg.TenantPoolConns), Tracer: a.tracing.WrapQueryTracer(nil)},
		Logger:         logger,
	})
	if err != nil {
		return nil, errors.Join(err, a.close())
	}
	if a.kit.Component() != "notes" {
		return nil, errors.Join(fmt.Errorf("TENANTRY_COMPONENT_TOKEN is component %q's, not notes'", a.kit.Component()), a.close())
	}
	if a.registered, err = a.kit.Register(ctx, "Notes", Migrations, "migrations"); err != nil {
		return nil, errors.Join(err, a.close())
	}

	// The kit authenticates users (BeforeAuth: it needs the tenant first);
	// the platform's guard, which knows no user tokens, lets its calls pass.
	var methods []string
	for _, m := range notesv1.NotesService_ServiceDesc.Methods {
		methods = append(methods, "/"+notesv1.NotesService_ServiceDesc.ServiceName+"/"+m.MethodName)
	}
	guard, err := authn.NewGuard(authn.Policy{}, authn.Chain(), authn.Public(methods...))
	if err != nil {
		return nil, errors.Join(err, a.close())
	}
	var metricsOn bool
	if a.metrics, a.metricsSrv, metricsOn, err = metrics.ForService("notes", cfg.MetricsAddr); err != nil {
		return nil, errors.Join(err, a.close())
	}
	if a.metrics != nil {
		a.metrics.MustRegister(a.kit.Collectors()...)
	}
	a.rpc, err = rpcserver.New(rpcserver.Config{
		Name: "notes", Addr: cfg.GRPCAddr, TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile,
		AllowInsecure: cfg.AllowInsecure, Logger: logger, AccessLog: cfg.AccessLog, Auth: guard, Metrics: a.metrics,
		Tracing: a.tracing, EnvVars: cfg.EnvVars,
		BeforeAuthUnaryInterceptors:  []grpc.UnaryServerInterceptor{a.kit.UnaryServerInterceptor()},
		BeforeAuthStreamInterceptors: []grpc.StreamServerInterceptor{a.kit.StreamServerInterceptor()},
		// A call goes through the kit and pgx (and a token's first use
		// through ed25519): on a new goroutine's small stack, growing it
		// by copying was 8% of the notes-bench read's CPU profile.
		StreamWorkers: 32,
	})
	if err != nil {
		return nil, errors.Join(err, a.close())
	}
	notesv1.RegisterNotesServiceServer(a.rpc.GRPC(), NewServer(a.kit))
	if cfg.HTTPAddr != "" {
		a.rest, err = restgateway.New(ctx, restgateway.Config{
			Name: "notes", Addr: cfg.HTTPAddr, TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile,
			AllowInsecure: cfg.AllowInsecure, FlagAddr: "--http-addr (TENANTRY_NOTES_HTTP_ADDR)",
			GRPC: a.rpc.GRPC(), GRPCUsesTLS: cfg.TLSCertFile != "",
			Register: []restgateway.RegisterFunc{notesv1.RegisterNotesServiceHandler},
			Metrics:  a.metrics, ServeMetrics: metricsOn, Tracing: a.tracing,
			// The tenant is the request's host; a client's own x-tenant-host
			// never passes (Metadata's keys replace the client's).
			Metadata: func(r *http.Request) map[string]string {
				return map[string]string{service.MetadataTenantHost: restgateway.RequestHost(r)}
			},
			Logger: logger, AccessLog: cfg.AccessLog,
		})
		if err != nil {
			return nil, errors.Join(err, a.close())
		}
	}
	return a, nil
}

// Kit returns the service's kit, for tests.
func (a *App) Kit() *service.Service { return a.kit }

// Registered returns the migration versions New registered as new.
func (a *App) Registered() []int32 { return slices.Clone(a.registered) }

// Listen binds the listeners, so that Addr and HTTPAddr are known before Run.
func (a *App) Listen() error {
	if a.listening {
		return nil
	}
	a.listening = true
	if err := a.rpc.Listen(); err != nil {
		return err
	}
	if a.rest != nil {
		return a.rest.Listen()
	}
	return nil
}

// Addr returns the gRPC address.
func (a *App) Addr() net.Addr { return a.rpc.Addr() }

// HTTPAddr returns the REST address, nil without REST.
func (a *App) HTTPAddr() net.Addr {
	if a.rest == nil {
		return nil
	}
	return a.rest.Addr()
}

// Run serves until ctx ends, with the tenant cache kept coherent.
func (a *App) Run(ctx context.Context) error {
	if err := a.Listen(); err != nil {
		return errors.Join(err, a.close())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); a.kit.Run(ctx) }()
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if a.metricsSrv != nil {
			_ = a.metricsSrv.Serve(ctx)
		}
	}()
	a.logger.InfoContext(ctx, "notes serving", "grpc", a.Addr().String())
	err := restgateway.Serve(ctx, a.rpc, a.rest)
	cancel()
	<-watchDone
	<-metricsDone
	return errors.Join(err, a.close())
}

func (a *App) close() error {
	if a.kit != nil {
		a.kit.Close()
	}
	var errs []error
	for _, c := range []*grpc.ClientConn{a.registry, a.identity} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	// Last, so that the spans of the shutdown go too; a collector that
	// does not answer holds the exit up a few seconds at most.
	flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs = append(errs, a.tracing.Shutdown(flush))
	return errors.Join(errs...)
}

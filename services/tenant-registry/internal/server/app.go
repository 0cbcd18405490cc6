package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/leader"
	"tenantry.dev/platform/metrics"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/rpcserver"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tenantrole"
	"tenantry.dev/platform/tracing"
	"tenantry.dev/tenant-registry/internal/component"
	"tenantry.dev/tenant-registry/internal/config"
	"tenantry.dev/tenant-registry/internal/fleet"
	"tenantry.dev/tenant-registry/internal/move"
	"tenantry.dev/tenant-registry/internal/store"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// App is a wired tenant-registry: database pools, the change-log follower,
// the reconciler and the gRPC server. main builds one from configuration;
// tests build them too, on port 0.
//
// Several replicas may share one database. Every replica serves every RPC,
// WatchTenants stream and resolve from its own index (fed by LISTEN/NOTIFY),
// and runs the fleet migrations started through it. The background work
// that needs doing once, not once per replica, runs only on the leader (see
// leaderWork), elected under a PostgreSQL advisory lock (package leader).
type App struct {
	cfg        *config.Config
	logger     *slog.Logger
	db         *pgxpool.Pool
	pools      []*pgxpool.Pool
	follower   *store.Follower
	manager    *tenant.Manager
	reconciler *tenant.Reconciler
	fleet      *fleet.Runner
	mover      *move.Mover
	leader     *leader.Elector
	store      *store.Store
	rpc        *rpcserver.Server
	rest       *restgateway.Gateway // nil when HTTP is off
	metrics    *metrics.Registry    // nil when TENANTRY_METRICS_ADDR is off
	metricsSrv *metrics.Server      // when the metrics have an address of their own
	metricsOn  bool                 // the gateway serves them
	tracing    *tracing.Tracing     // nil when the OTEL_* variables leave traces off
}

// New connects to the databases, migrates the registry's tables, loads the
// tenant index and listens on the gRPC address. Nothing is served until Run.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *App, err error) {
	a := &App{cfg: cfg, logger: logger, tracing: cfg.Tracing}
	if a.tracing == nil {
		if a.tracing, err = tracing.Setup(ctx, "tenant-registry", logger); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			a.closePools()
			a.flushTraces()
		}
	}()
	poolOpts := tenantdb.PoolOptions{MaxConns: cfg.MaxConns, MaxConnLifetime: cfg.MaxConnLifetime,
		Tracer: a.tracing.WrapQueryTracer(nil)}
	a.db, err = tenantdb.NewPool(ctx, cfg.DatabaseURL, poolOpts)
	if err != nil {
		return nil, fmt.Errorf("connect to the registry database: %w", err)
	}
	a.pools = append(a.pools, a.db)
	placements := map[string]*pgxpool.Pool{}
	for name, url := range cfg.Placements {
		if url == cfg.DatabaseURL {
			placements[name] = a.db
			continue
		}
		p, err := tenantdb.NewPool(ctx, url, poolOpts)
		if err != nil {
			return nil, fmt.Errorf("connect to placement %q: %w", name, err)
		}
		a.pools = append(a.pools, p)
		placements[name] = p
	}
	if err := store.Migrate(ctx, a.db, logger); err != nil {
		return nil, fmt.Errorf("migrate the registry database: %w", err)
	}
	index := tenant.NewIndex(cfg.BaseDomains)
	a.follower = store.NewFollower(a.db, index, logger)
	if err := a.follower.Load(ctx); err != nil {
		return nil, fmt.Errorf("load tenants: %w", err)
	}
	st := store.New(a.db, placements, componentKeyOf(cfg), logger)
	a.store = st
	if err := st.SetupPlacements(ctx); err != nil {
		return nil, fmt.Errorf("prepare the placements' migration bookkeeping: %w", err)
	}
	a.manager = tenant.NewManager(st, index, a.follower, tenant.Config{
		PurgeGrace: cfg.PurgeGrace,
		Logger:     logger,
	})
	a.reconciler = tenant.NewReconciler(a.manager, time.Minute, cfg.ReconcileInterval)

	creds := []authn.Credential{{Role: RoleOperator, Token: cfg.OperatorToken}}
	if cfg.ServiceToken != "" {
		creds = append(creds, authn.Credential{Role: RoleService, Token: cfg.ServiceToken})
	}
	tokens, err := authn.NewStaticTokens(creds...)
	if err != nil {
		return nil, err
	}
	var componentKey []byte
	auth := authn.Authenticator(tokens)
	if cfg.ComponentKey != "" {
		componentKey = componentKeyOf(cfg)
		auth = authn.Chain(tokens, componentTokens(componentKey))
	}
	guard, err := authn.NewGuard(Policy(), auth)
	if err != nil {
		return nil, err
	}
	if a.metrics, a.metricsSrv, a.metricsOn, err = metrics.ForService("tenant-registry", cfg.MetricsAddr); err != nil {
		return nil, err
	}
	if a.metrics != nil {
		a.metrics.Pools(placements)
	}
	if a.leader, err = leader.New(leader.Config{
		Name:          "tenant-registry",
		ConnConfig:    a.db.Config().ConnConfig,
		CheckInterval: cfg.LeaderCheckInterval,
		Logger:        logger,
	}); err != nil {
		return nil, err
	}
	if a.metrics != nil {
		a.metrics.MustRegister(a.leader.Collector())
	}
	a.rpc, err = rpcserver.New(rpcserver.Config{
		Name:            "tenant-registry",
		Metrics:         a.metrics,
		Tracing:         a.tracing,
		Addr:            cfg.GRPCAddr,
		TLSCertFile:     cfg.TLSCertFile,
		TLSKeyFile:      cfg.TLSKeyFile,
		AllowInsecure:   cfg.AllowInsecure,
		Logger:          logger,
		AccessLog:       cfg.AccessLog,
		Auth:            guard,
		ShutdownTimeout: cfg.ShutdownTimeout,
		EnvVars:         cfg.EnvVars,
	})
	if err != nil {
		return nil, err
	}
	a.fleet = fleet.NewRunner(st.Operations(), cfg.OperationLease, logger)
	a.mover = move.New(st.Moves(), a.fleet, logger)
	a.mover.Accepts = a.manager.CheckPlacementAccepts
	if a.metrics != nil {
		mm := newMoveMetrics()
		a.mover.Ended = mm.observe
		a.metrics.MustRegister(operationsCollector{st: st}, mm.ended, mm.fence)
	}
	tenants := NewTenantServer(a.manager, a.follower)
	tenants.mover = a.mover
	registryv1.RegisterTenantServiceServer(a.rpc.GRPC(), tenants)
	ops := NewOperationServer(a.fleet, a.mover)
	registryv1.RegisterComponentServiceServer(a.rpc.GRPC(), NewComponentServer(component.NewManager(st.Components(), a.manager, nil), ops, componentKey))
	registryv1.RegisterOperationServiceServer(a.rpc.GRPC(), ops)
	registryv1.RegisterPlacementServiceServer(a.rpc.GRPC(), NewPlacementServer(a.manager))
	if err := a.rpc.Listen(); err != nil {
		return nil, err
	}
	if a.rest, err = newGateway(ctx, cfg, a.rpc, a.metrics, a.metricsOn, a.tracing, logger); err != nil {
		return nil, err
	}
	return a, nil
}

// MetricsAddr is the address of the metrics' own listener, nil when they
// have none (TENANTRY_METRICS_ADDR empty or off).
func (a *App) MetricsAddr() net.Addr {
	if a.metricsSrv == nil {
		return nil
	}
	return a.metricsSrv.Addr()
}

// Addr is the address the gRPC server listens on.
func (a *App) Addr() net.Addr { return a.rpc.Addr() }

// Manager exposes the domain layer, for tests and tools in this module.
func (a *App) Manager() *tenant.Manager { return a.manager }

// Run serves until ctx ends, then shuts down gracefully: health goes
// NOT_SERVING, calls in flight finish, background work stops (a leader
// releases its lease), pools close. Health does not depend on leadership:
// a follower serves like the leader.
func (a *App) Run(ctx context.Context) error {
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.follower.Run(bg) }()
	go func() { defer wg.Done(); a.fleet.Run(bg) }()
	go func() { defer wg.Done(); a.leader.Run(bg, a.leaderWork) }()
	if a.metricsSrv != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.metricsSrv.Serve(bg) }()
	}
	a.logger.InfoContext(ctx, "tenant-registry serving", "grpc", a.Addr().String(), "tenants", a.manager.Index().Len())
	err := restgateway.Serve(ctx, a.rpc, a.rest)
	stop()
	wg.Wait()
	a.closePools()
	a.flushTraces()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// flushTraces sends the spans still buffered, giving the collector a few
// seconds: an unreachable one must not hold up the exit.
func (a *App) flushTraces() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.tracing.Shutdown(ctx); err != nil {
		a.logger.LogAttrs(ctx, slog.LevelWarn, "spans lost at exit", slog.String("error", err.Error()))
	}
}

// leaderWork is the background work of the leader, until its term ends:
// the reconciler (abandoned provisioning, purges after grace), spare
// schemas, and resuming the fleet migrations other replicas left. Each is
// safe if it ever runs twice (idempotent steps, a transaction lock per
// placement for spares, an atomic claim per operation); the leader makes
// it run once instead of once per replica.
func (a *App) leaderWork(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.reconciler.Run(ctx) })
	wg.Go(func() { a.fleet.Resume(ctx) })
	wg.Go(func() { a.mover.ReapOldCopies(ctx, reapEvery) })
	wg.Go(func() { a.keepSpares(ctx) })
	wg.Wait()
}

// Leading reports whether this replica is the leader running the
// background work.
func (a *App) Leading() bool { return a.leader.Leading() }

func (a *App) closePools() {
	for _, p := range a.pools {
		p.Close()
	}
	a.pools = nil
}

// ReapOldCopies drops now the old copies of moved tenants whose grace has
// ended, for tests and tools (the leader does it every few seconds).
func (a *App) ReapOldCopies(ctx context.Context) { a.mover.ReapOnce(ctx) }

// Reconcile runs one reconciliation pass now, for tests and tools.
func (a *App) Reconcile(ctx context.Context) (tenant.Report, error) {
	return a.reconciler.Pass(ctx, false)
}

// keepSpares keeps TENANTRY_SPARE_SCHEMAS schemas ready per placement, with
// every component applied, checking every second (a create may have taken
// one, a component may have been registered).
func (a *App) keepSpares(ctx context.Context) {
	if a.cfg.SpareSchemas == 0 {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if n, err := a.store.KeepSpares(ctx, a.cfg.SpareSchemas); err != nil && ctx.Err() == nil {
			a.logger.WarnContext(ctx, "cannot prepare spare schemas", "err", err)
		} else if n > 0 {
			a.logger.DebugContext(ctx, "prepared spare schemas", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// componentKeyOf returns TENANTRY_COMPONENT_KEY's bytes, nil when unset.
func componentKeyOf(cfg *config.Config) []byte {
	if cfg.ComponentKey == "" {
		return nil
	}
	return []byte(cfg.ComponentKey)
}

// componentTokens authenticates component tokens: the principal's subject
// is the component they belong to.
func componentTokens(key []byte) authn.Authenticator {
	return authn.AuthenticatorFunc(func(_ context.Context, token string) (authn.Principal, error) {
		id, err := tenantrole.VerifyComponentToken(key, token)
		if err != nil {
			return authn.Principal{}, authn.ErrUnknownToken
		}
		return authn.Principal{Role: RoleComponent, Subject: id}, nil
	})
}

package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/config"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/identity/internal/password"
	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/identity/internal/sealbox"
	"tenantry.dev/identity/internal/sessioncache"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/identity/internal/token"
	"tenantry.dev/identity/internal/webhook"
	"tenantry.dev/kit/component"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/metrics"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/rpcserver"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tracing"
)

// refreshKeyInfo binds the refresh token key derived from the
// key-encryption key to that one use.
const refreshKeyInfo = "tenantry identity: refresh token MAC v1"

// App is a wired identity service. main builds one from configuration;
// tests build them too, on port 0.
type App struct {
	cfg      *config.Config
	logger   *slog.Logger
	pools    []*pgxpool.Pool
	registry *grpc.ClientConn
	tables   *component.Client // identity's tables, the component "identity"
	resolver *tenancy.Resolver
	store    *store.Store
	sessions *sessioncache.Cache // nil when off
	issuer   *token.Issuer
	limiter  *ratelimit.Limiter
	worker   *mail.Worker
	webhooks *webhook.Worker
	events   *eventHub
	accounts *account.Manager
	rpc      *rpcserver.Server
	rest     *restgateway.Gateway // nil when HTTP is off

	metrics    *metrics.Registry // nil when TENANTRY_METRICS_ADDR is off
	metricsSrv *metrics.Server   // when the metrics have an address of their own
	metricsOn  bool              // the gateway serves them
	ownMetrics *identityMetrics  // identity's own, fed whether or not they are served
	tracing    *tracing.Tracing  // nil when the OTEL_* variables leave traces off
	opts       Options
	srv        *Server
	// guard is the gRPC server's authorization, which HTTP routes that
	// act without the gateway's hop (GET /v1/auth/me) apply themselves.
	guard *authn.Guard
	// currentUserJSON remembers GET /v1/auth/me's answers by content.
	currentUserJSON *jsonMemo
}

// Options lets tests replace parts of the App.
type Options struct {
	// Sender delivers mail; nil chooses SMTP when configured, else the log.
	Sender mail.Sender
	// HashParams overrides the argon2id parameters (they may only go up).
	HashParams *password.Params
	// WaitUntil replaces the timer that holds answers which must not
	// reveal whether an account exists (account.Config.WaitUntil).
	WaitUntil func(ctx context.Context, deadline time.Time)
	// Tracing replaces what the OTEL_* variables say (tracing.Setup),
	// e.g. with an in-memory exporter.
	Tracing *tracing.Tracing
	// FederationEndpoints replaces the real Google, Microsoft and GitHub
	// endpoints of the identity provider presets (tests).
	FederationEndpoints federation.Endpoints
	// Now replaces the clock of identity's rules (account.Config.Now), so
	// that tests can step through TOTP time steps and expiries without
	// sleeping; nil is the wall clock.
	Now func() time.Time
	// TokenNow replaces the access-token issuer's clock (token.Config.Now),
	// which signs and checks iat and exp, so that tests can expire access
	// tokens without waiting; nil is the wall clock. It is apart from Now
	// because tests step Now by days and keep using their tokens.
	TokenNow func() time.Time
}

// New connects to the databases and the registry, prepares identity's
// shared tables and signing keys, and listens. Nothing is served until Run.
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts Options) (_ *App, err error) {
	a := &App{cfg: cfg, logger: logger, tracing: opts.Tracing, opts: opts, ownMetrics: newIdentityMetrics()}
	if a.tracing == nil {
		if a.tracing, err = tracing.Setup(ctx, "identity", logger); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	poolOpts := tenantdb.PoolOptions{MaxConns: cfg.MaxConns, MaxConnLifetime: cfg.MaxConnLifetime,
		Tracer: a.tracing.WrapQueryTracer(nil)}
	pools := map[string]*pgxpool.Pool{}
	var defaultPool *pgxpool.Pool
	for name, url := range cfg.Placements {
		p, err := tenantdb.NewPool(ctx, url, poolOpts)
		if err != nil {
			return nil, fmt.Errorf("connect to placement %q: %w", name, err)
		}
		a.pools = append(a.pools, p)
		pools[name] = p
		if err := mail.Setup(ctx, p); err != nil {
			return nil, fmt.Errorf("prepare the mail outbox in placement %q: %w", name, err)
		}
		if name == config.DefaultPlacement {
			defaultPool = p
		}
	}
	a.issuer, err = token.NewIssuer(ctx, defaultPool, token.Config{
		Issuer: cfg.Issuer, AccessTTL: cfg.AccessTTL, RotateEvery: cfg.KeyRotation,
		KeyEncryptionKey: cfg.KeyEncryptionKey, Logger: logger, Now: opts.TokenNow,
	})
	if err != nil {
		return nil, err
	}
	a.limiter = ratelimit.New(defaultPool)
	if err := a.limiter.Setup(ctx); err != nil {
		return nil, fmt.Errorf("prepare rate limits: %w", err)
	}
	if cfg.SessionCacheTTL > 0 {
		names := make([]string, 0, len(pools))
		for name := range pools {
			names = append(names, name)
		}
		a.sessions = sessioncache.New(names, sessioncache.Options{MaxAge: cfg.SessionCacheTTL})
	}
	var inv store.Invalidator
	if a.sessions != nil {
		inv = a.sessions
	}
	a.registry, err = grpc.NewClient(cfg.RegistryAddr,
		append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, a.tracing.DialOptions()...)...)
	if err != nil {
		return nil, fmt.Errorf("tenant registry address %q: %w", cfg.RegistryAddr, err)
	}
	if a.tables, err = component.New(a.registry, cfg.ComponentToken, "Identity: accounts, sessions, tokens", store.MigrationFiles, store.MigrationsDir); err != nil {
		return nil, err
	}
	if err := a.registerTables(ctx); err != nil {
		return nil, err
	}
	if a.store, err = store.New(pools, inv, a.migrateTenant, logger); err != nil {
		return nil, err
	}
	a.resolver = tenancy.NewResolver(registryv1.NewTenantServiceClient(a.registry), cfg.ServiceToken,
		tenancy.Options{Logger: logger, BaseDomains: cfg.BaseDomains})
	a.resolver.OnPurge(a.store.Forget)
	a.store.SetTenants(a.resolver.BySlug)
	// A purged tenant's signing keys go with it. The watch's purge is the
	// one clean signal: deleting the keys of every tenant the resolver
	// cannot name instead would race a tenant created a moment ago, whose
	// first key another replica may already have made and signed with. A
	// tenant purged while no identity replica watches leaves its keys
	// behind (they are rotated, never used); a new tenant has a new uid, so
	// they never sign for it.
	a.resolver.OnPurge(func(t tenancy.Tenant) { a.issuer.ForgetTenant(t.UID) })
	if a.sessions != nil {
		a.resolver.OnPurge(func(t tenancy.Tenant) { a.sessions.ForgetTenant(t.Schema) })
	}

	params := password.DefaultParams
	if opts.HashParams != nil {
		params = *opts.HashParams
	}
	hasher, err := password.NewHasher(params, cfg.HashConcurrency)
	if err != nil {
		return nil, err
	}
	sender := opts.Sender
	if sender == nil {
		if sender, err = newSender(cfg, logger); err != nil {
			return nil, err
		}
	}
	a.worker = mail.NewWorker(a.pools, sender, mail.WorkerOptions{Logger: logger, OnAttempt: a.ownMetrics.mailAttempt})
	// A mail written by a call goes out at once rather than at the next poll.
	a.store.AfterMail(a.worker.Wake)
	// Refresh tokens carry a MAC under a key only the replicas hold:
	// derived from the key-encryption key (already required, and the same
	// on every replica), for this one use.
	refreshKey, err := hkdf.Key(sha256.New, []byte(cfg.KeyEncryptionKey), nil, refreshKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive the refresh token key: %w", err)
	}
	// Identity providers' client secrets are sealed under the
	// key-encryption key too, with a key of their own.
	providerSecrets, err := sealbox.New(cfg.KeyEncryptionKey, "identity provider client secrets v1")
	if err != nil {
		return nil, err
	}
	// So are users' authenticator app secrets, with another key.
	totpSecrets, err := sealbox.New(cfg.KeyEncryptionKey, "totp secrets v1")
	if err != nil {
		return nil, err
	}
	// And webhook endpoints' signing secrets, with another: sealed, not
	// hashed, since every delivery is signed with them.
	webhookSecrets, err := sealbox.New(cfg.KeyEncryptionKey, "webhook endpoint secrets v1")
	if err != nil {
		return nil, err
	}
	webhookGuard := webhook.Guard{AllowPrivate: cfg.WebhookAllowPrivate}
	acfg := account.Config{Logger: logger, RefreshKey: refreshKey, WaitUntil: opts.WaitUntil, ProviderSecrets: providerSecrets,
		TOTPSecrets: totpSecrets, OnLogin: a.ownMetrics.login, Now: opts.Now}
	acfg.WebhookSecrets, acfg.CheckWebhookURL = webhookSecrets, webhookGuard.CheckURL
	webhookMetrics := newWebhookMetrics()
	a.webhooks = webhook.NewWorker(pools, a.servedTenants,
		webhookSecrets, webhook.Options{Backoff: cfg.WebhookBackoff, Guard: webhookGuard, Logger: logger, OnAttempt: webhookMetrics.attempt})
	// The worker's safety net skips tenants it knows have no endpoint: it
	// learns of one created or enabled here at once.
	acfg.OnWebhookEndpointChanged = func(t tenancy.Tenant) { a.webhooks.Wake(t.Schema) }
	a.events = newEventHub()
	if a.sessions != nil {
		acfg.Sessions = a.sessions
	}
	if a.accounts, err = account.NewManager(a.store, hasher, a.issuer, limits{a.limiter, cfg.SignUpsPerAddressPerHour}, links{cfg.PublicURL}, acfg); err != nil {
		return nil, err
	}
	a.resolver.OnPurge(a.accounts.ForgetTenant)

	tokens, err := authn.NewStaticTokens(
		authn.Credential{Role: RoleOperator, Token: cfg.OperatorToken},
		authn.Credential{Role: RoleService, Token: cfg.ServiceToken},
	)
	if err != nil {
		return nil, err
	}
	guard, err := authn.NewGuard(Policy(), authn.Chain(tokens, accessTokens{issuer: a.issuer, accounts: a.accounts}), authn.Public(public...))
	if err != nil {
		return nil, err
	}
	a.guard, a.currentUserJSON = guard, newJSONMemo(currentUserJSONEntries)
	scope := &tenantScope{resolver: a.resolver}
	if a.metrics, a.metricsSrv, a.metricsOn, err = metrics.ForService("identity", cfg.MetricsAddr); err != nil {
		return nil, err
	}
	if a.metrics != nil {
		a.metrics.Pools(pools)
		a.ownMetrics.register(a.metrics, pools, a.sessions)
		a.metrics.MustRegister(tenancy.Collector(a.resolver), webhookMetrics.attempts)
	}
	a.rpc, err = rpcserver.New(rpcserver.Config{
		Name: "identity", Addr: cfg.GRPCAddr, TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile,
		AllowInsecure: cfg.AllowInsecure, Logger: logger, AccessLog: cfg.AccessLog, Auth: guard, ShutdownTimeout: cfg.ShutdownTimeout,
		Metrics: a.metrics, Tracing: a.tracing, EnvVars: cfg.EnvVars,
		// The tenant is known before authentication, which checks a
		// user's token against it.
		BeforeAuthUnaryInterceptors:  []grpc.UnaryServerInterceptor{scope.unary()},
		BeforeAuthStreamInterceptors: []grpc.StreamServerInterceptor{scope.stream()},
		// Signing an access token alone needs a stack several times a new
		// goroutine's: without workers, growing it was ~10% of identity's
		// CPU per RefreshSession. Refreshes wait for their batch, so
		// there are more workers than cores.
		StreamWorkers: 64,
	})
	if err != nil {
		return nil, err
	}
	srv := &Server{accounts: a.accounts, tokens: a.issuer, resolver: a.resolver, links: links{cfg.PublicURL}, now: time.Now}
	a.srv = srv
	identityv1.RegisterAuthServiceServer(a.rpc.GRPC(), srv)
	identityv1.RegisterUserServiceServer(a.rpc.GRPC(), srv)
	events := &eventServer{s: srv, hub: a.events, tenants: a.resolver.BySlug}
	identityv1.RegisterAccountEventServiceServer(a.rpc.GRPC(), events)
	identityv1.RegisterWebhookServiceServer(a.rpc.GRPC(), events)
	identityv1.RegisterTokenServiceServer(a.rpc.GRPC(), srv)
	identityv1.RegisterOAuthClientServiceServer(a.rpc.GRPC(), srv)
	identityv1.RegisterIdentityProviderServiceServer(a.rpc.GRPC(), srv)
	identityv1.RegisterAccountServiceServer(a.rpc.GRPC(), &accountServer{accounts: a.accounts})
	identityv1.RegisterPasskeyServiceServer(a.rpc.GRPC(), &passkeyServer{s: srv})
	if err := a.rpc.Listen(); err != nil {
		return nil, err
	}
	if a.rest, err = a.newGateway(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func newSender(cfg *config.Config, logger *slog.Logger) (mail.Sender, error) {
	if cfg.SMTPAddr == "" {
		logger.Info("no SMTP server configured: emails are printed to this log (TENANTRY_SMTP_ADDR sends them)")
		return mail.LogSender{Logger: logger}, nil
	}
	return mail.NewSMTPSender(mail.SMTPConfig{
		Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword,
		StartTLS: mail.StartTLS(cfg.SMTPStartTLS),
	})
}

// Ready reports whether identity holds the registry's snapshot of tenants,
// so that every tenant's hosts are answered from memory.
func (a *App) Ready() bool { return a.resolver.Ready() }

// Addr is the address the gRPC server listens on.
func (a *App) Addr() net.Addr { return a.rpc.Addr() }

// Run serves until ctx ends: it follows the registry, migrates every
// tenant's schema once the registry's snapshot is in, delivers mail,
// rotates signing keys; then it shuts down gracefully.
func (a *App) Run(ctx context.Context) error {
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	runs := []func(context.Context){a.resolver.Run, a.worker.Run, a.issuer.Run,
		// Sweeping starts once the start-up migration is done, not to compete with it.
		func(ctx context.Context) { a.migrateAll(ctx); a.sweep(ctx) },
		func(ctx context.Context) { a.limiter.Run(ctx, 10*time.Minute) }}
	runs = append(runs, a.store.RunRotations,
		// Webhooks start with the registry's snapshot, which names the tenants to visit.
		func(ctx context.Context) { a.liveTenants(ctx); a.webhooks.Run(ctx) },
		func(ctx context.Context) { a.events.run(ctx, a.pools, a.logger) })
	if a.sessions != nil {
		runs = append(runs, func(ctx context.Context) { a.store.Follow(ctx, a.sessions, store.FollowOptions{}) })
	}
	if a.metricsSrv != nil {
		runs = append(runs, func(ctx context.Context) { _ = a.metricsSrv.Serve(ctx) })
	}
	for _, run := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); run(bg) }()
	}
	a.logger.InfoContext(ctx, "identity serving", "grpc", a.Addr().String(), "registry", a.cfg.RegistryAddr)
	err := restgateway.Serve(ctx, a.rpc, a.rest)
	stop()
	wg.Wait()
	a.close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// registerTables registers identity's migrations with the registry as the
// component "identity", so that every tenant created from now on gets
// identity's tables in CreateTenant. It waits for a registry that is not
// up yet (identity serves no tenant without one anyway) until ctx ends;
// a refusal (a changed migration that tenants have applied, a wrong
// token) stops the start.
func (a *App) registerTables(ctx context.Context) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		added, err := a.tables.Register(ctx)
		if err == nil {
			if len(added) > 0 {
				a.logger.InfoContext(ctx, "registered identity's tables with the registry", "component", a.tables.ID(), "new_versions", added)
			}
			return nil
		}
		if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			return err
		}
		a.logger.WarnContext(ctx, "the registry is not reachable yet; identity waits to register its tables", "registry", a.cfg.RegistryAddr, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("register identity's tables: %w (last: %w)", context.Cause(ctx), err)
		case <-time.After(wait):
		}
	}
}

// migrateAll asks the registry, once at start-up, to bring every tenant
// behind on identity's tables up to date (a fleet migration of the
// component "identity"; none is behind unless this binary brings new
// migrations). Tenants used before it reaches them are migrated on first
// use instead (migrateTenant).
func (a *App) migrateAll(ctx context.Context) {
	tenants, ok := a.liveTenants(ctx)
	if !ok {
		return
	}
	started := time.Now()
	var last *registryv1.MigrationMetadata
	op, err := a.tables.Migrate(ctx, component.MigrateOptions{
		Concurrency: a.cfg.MigrateConcurrency,
		Progress: func(md *registryv1.MigrationMetadata) {
			if md.GetTotal() > 0 && (last == nil || md.GetDone()/100 != last.GetDone()/100) {
				a.logger.InfoContext(ctx, "migrating tenant schemas", "done", md.GetDone(), "total", md.GetTotal(), "failed", md.GetFailed())
			}
			last = md
		},
	})
	if err != nil && !component.IsFailed(err) {
		if ctx.Err() == nil {
			a.logger.ErrorContext(ctx, "the registry could not migrate identity's tables; tenants behind are migrated on first use", "err", err)
		}
		return
	}
	behind := int(last.GetTotal())
	a.logger.InfoContext(ctx, "tenant schemas migrated", "tenants", len(tenants), "up_to_date", max(len(tenants)-behind, 0),
		"failed", last.GetFailed(), "operation", op.GetName(), "took", time.Since(started).Round(time.Millisecond))
	if err != nil {
		a.logger.ErrorContext(ctx, "some tenant schemas could not be migrated; they will be retried on first use", "err", err)
	}
}

// migrateTenant asks the registry to migrate one tenant's identity tables
// (store.MigrateFunc).
func (a *App) migrateTenant(ctx context.Context, slug string) error {
	_, err := a.tables.Migrate(ctx, component.MigrateOptions{Tenants: []string{slug}})
	return err
}

// liveTenants waits for the registry's snapshot, then returns the tenants
// that have a schema identity serves (active or suspended); ok is false if
// ctx ended first.
func (a *App) liveTenants(ctx context.Context) (tenants []tenancy.Tenant, ok bool) {
	for !a.resolver.Ready() {
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, t := range a.resolver.All() {
		if t.State == tenancy.Active || t.State == tenancy.Suspended {
			tenants = append(tenants, t)
		}
	}
	return tenants, true
}

// sweepEvery is how often every tenant's ended sessions and expired
// single-use tokens are deleted (account.EndedRetention after they ended).
const sweepEvery = time.Hour

// sweep runs account.Manager.Sweep over every tenant at once, then every
// sweepEvery, one tenant at a time so that it never competes with calls for
// more than one connection. Every replica sweeps; the deletes are
// idempotent.
func (a *App) sweep(ctx context.Context) {
	for {
		tenants, ok := a.liveTenants(ctx)
		if !ok {
			return
		}
		var total account.SweepResult
		failed := 0
		for _, t := range tenants {
			if ctx.Err() != nil {
				return
			}
			res, err := a.accounts.Sweep(ctx, t)
			if err != nil {
				failed++
				a.logger.WarnContext(ctx, "sweeping a tenant's ended sessions failed", "tenant", t.Slug, "err", err)
				continue
			}
			total.Sessions += res.Sessions
			total.Tokens += res.Tokens
		}
		if total.Sessions+total.Tokens > 0 || failed > 0 {
			a.logger.InfoContext(ctx, "swept ended sessions and expired tokens", "sessions", total.Sessions, "tokens", total.Tokens, "failed_tenants", failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(sweepEvery):
		}
	}
}

func (a *App) close() {
	if a.registry != nil {
		a.registry.Close()
	}
	for _, p := range a.pools {
		p.Close()
	}
	a.pools = nil
	// A collector that does not answer holds the exit up a few seconds at most.
	flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.tracing.Shutdown(flush); err != nil {
		a.logger.LogAttrs(flush, slog.LevelWarn, "spans lost at exit", slog.String("error", err.Error()))
	}
}

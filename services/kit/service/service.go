// Package service is what a product service built on Tenantry wires in
// once, so that its handlers deal with one tenant's data and nothing
// else. For every call, the gRPC interceptors (or the HTTP middleware):
//
//  1. find the tenant from the x-tenant metadata (a slug), x-tenant-host
//     (set by a REST gateway) or, over HTTP, the Host header, through the
//     registry, cached and kept coherent by WatchTenants (package tenancy);
//  2. verify the caller's access token locally against identity's JWKS,
//     bound to that tenant by its uid (package accesstoken);
//  3. put the Caller (tenant and user) in the context, so that InTenant
//     hands the handler a transaction in the tenant's schema as the
//     component's own role there (package tenantpool), and QueryInTenant
//     runs one statement there in one round trip: PostgreSQL refuses
//     that role every other tenant's data and every other component's
//     tables, so even a SQL injection in the handler stays inside its
//     tenant.
//
// Register, at start-up, registers the component's migrations with the
// registry (new tenants get them at create; existing ones through a fleet
// migration: Migrate, or `tenantry migrate`), through package component.
package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/accesstoken"
	"tenantry.dev/kit/component"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/kit/tenantpool"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/tenantdb"
)

// Metadata keys the interceptors read (see tenancy). A REST gateway in
// front of the service must set x-tenant-host from the request's host and
// must not pass a client's own x-tenant-host through.
const (
	MetadataTenant     = tenancy.MetadataTenant
	MetadataTenantHost = tenancy.MetadataTenantHost
)

// Reasons of the faults the kit returns, besides those of tenancy
// (TENANT_REQUIRED, TENANT_AMBIGUOUS, METADATA_REPEATED, ...) and
// accesstoken.
const (
	ReasonTokenMissing       = "ACCESS_TOKEN_MISSING"
	ReasonTenantRoleDenied   = "TENANT_ROLE_DENIED"
	ReasonCredentialRejected = "COMPONENT_CREDENTIAL_REJECTED"
	ReasonPlacementNotServed = "PLACEMENT_NOT_SERVED"
)

// DefaultIssuer is identity's default TENANTRY_ISSUER.
const DefaultIssuer = "tenantry-identity"

const (
	healthPrefix  = "/grpc.health.v1.Health/"
	reflectPrefix = "/grpc.reflection."
)

// Config configures a Service.
type Config struct {
	// ComponentToken is the component's token (`tenantry components
	// credential <id>`, or the registry's GetComponentCredential).
	ComponentToken string
	// Registry and Identity are connections to the tenant registry and to
	// identity (for its JWKS).
	Registry, Identity grpc.ClientConnInterface
	// Issuer is identity's TENANTRY_ISSUER; DefaultIssuer when empty.
	Issuer string
	// Placements maps placement names to database URLs (DATABASE_URL is
	// "default"); credentials in them are ignored (see tenantpool).
	Placements map[string]string
	// BaseDomains are the registry's TENANTRY_BASE_DOMAINS; see
	// tenancy.Options.BaseDomains.
	BaseDomains []string
	// PublicMethods are full gRPC method names callable without an access
	// token (a tenant is still required). Health and reflection are
	// always public and need no tenant.
	PublicMethods []string
	// Pool tunes the tenant pools; ComponentToken and Placements are
	// taken from above.
	Pool tenantpool.Options
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
}

// Service holds what the interceptors need. Run keeps the tenant cache
// coherent; Close releases the pools.
type Service struct {
	resolver     *tenancy.Resolver
	verifier     *accesstoken.Verifier
	pools        *tenantpool.Pools
	token        string
	registryConn grpc.ClientConnInterface
	component    *component.Client // set by Register
	public       map[string]bool
	logger       *slog.Logger
}

// New checks cfg and returns a Service; it contacts nothing yet.
func New(cfg Config) (*Service, error) {
	if cfg.Registry == nil || cfg.Identity == nil {
		return nil, errors.New("service: Registry and Identity connections are required")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	popts := cfg.Pool
	popts.ComponentToken, popts.Placements, popts.Logger = cfg.ComponentToken, cfg.Placements, cfg.Logger
	pools, err := tenantpool.New(popts)
	if err != nil {
		return nil, err
	}
	s := &Service{
		resolver: tenancy.NewResolver(registryv1.NewTenantServiceClient(cfg.Registry), cfg.ComponentToken,
			tenancy.Options{Logger: cfg.Logger, BaseDomains: cfg.BaseDomains}),
		verifier:     accesstoken.NewVerifier(identityv1.NewTokenServiceClient(cfg.Identity), cfg.Issuer),
		pools:        pools,
		token:        cfg.ComponentToken,
		registryConn: cfg.Registry,
		public:       map[string]bool{},
		logger:       cfg.Logger,
	}
	for _, m := range cfg.PublicMethods {
		s.public[m] = true
	}
	s.resolver.OnPurge(func(t tenancy.Tenant) {
		pools.Forget(t.UID)
		s.verifier.Forget(t.UID)
	})
	return s, nil
}

// Component returns the component's id.
func (s *Service) Component() string { return s.pools.Component() }

// Run watches the registry's tenants until ctx ends.
func (s *Service) Run(ctx context.Context) { s.resolver.Run(ctx) }

// Collectors are the kit's metrics, for the service's Prometheus registry:
// the tenant cache and the cache of verified access tokens.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{tenancy.Collector(s.resolver), accesstoken.Collector(s.verifier)}
}

// Ready reports whether the tenant cache holds the registry's snapshot.
func (s *Service) Ready() bool { return s.resolver.Ready() }

// Close closes the tenant pools.
func (s *Service) Close() { s.pools.Close() }

// Register registers the component's migrations, the files dir/NNNN_name.sql
// of fsys, with the registry (package component, which identity uses for
// its own tables too). Registering the same list again changes nothing; a
// changed migration that a tenant has applied is refused
// (FAILED_PRECONDITION MIGRATION_APPLIED_CHANGED). It returns the versions
// that are new. Tenants created from then on get them; existing tenants
// through a fleet migration (Migrate, or `tenantry migrate`).
func (s *Service) Register(ctx context.Context, displayName string, fsys fs.FS, dir string) ([]int32, error) {
	c, err := component.New(s.registryConn, s.token, displayName, fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	s.component = c
	return c.Register(ctx)
}

// Migrate asks the registry to bring the tenants behind on the component
// registered by Register up to date, and waits for it (see
// component.Client.Migrate).
func (s *Service) Migrate(ctx context.Context, opts component.MigrateOptions) (*registryv1.Operation, error) {
	if s.component == nil {
		return nil, errors.New("service: Migrate before Register")
	}
	return s.component.Migrate(ctx, opts)
}

// Caller is who a call is from: the tenant it is for and the user whose
// access token it carries (zero Claims for a public method without one).
type Caller struct {
	Tenant tenancy.Tenant
	User   accesstoken.Claims
}

type callerKey struct{}

// CallerFrom returns the caller the interceptors found.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithCaller returns ctx carrying c, for tests and in-process callers.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// InTenant runs fn in a transaction in the caller's tenant, as the
// component's role there (see package tenantpool). Errors of PostgreSQL
// that say the role may not do something become PERMISSION_DENIED
// (TENANT_ROLE_DENIED); the others are returned as they are.
func (s *Service) InTenant(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	c, ok := CallerFrom(ctx)
	if !ok {
		return errNoCaller()
	}
	return s.tenantError(c, tenantdb.RetryMoving(ctx, c.Tenant, placementOf, s.current(c),
		func(ctx context.Context, t tenancy.Tenant) error { return s.pools.InTenant(ctx, t, fn) }))
}

func placementOf(t tenancy.Tenant) string { return t.Placement }

// current looks c's tenant up again, for a write retried after the tenant
// moved to another placement (tenantdb.RetryMoving).
func (s *Service) current(c Caller) func(ctx context.Context) (tenancy.Tenant, error) {
	return func(ctx context.Context) (tenancy.Tenant, error) { return s.resolver.BySlug(ctx, c.Tenant.Slug) }
}

// QueryInTenant runs one statement in the caller's tenant, as the
// component's role there, and calls scan with its rows: one round trip to
// PostgreSQL, which runs the statement in a transaction of its own (see
// tenantpool.Pools.Query), where InTenant takes three (BEGIN, the
// statement, COMMIT). Use it for a read of one statement; changes, and
// statements that must agree with each other, belong in InTenant. Errors
// are those of InTenant.
func (s *Service) QueryInTenant(ctx context.Context, scan func(rows pgx.Rows) error, sql string, args ...any) error {
	c, ok := CallerFrom(ctx)
	if !ok {
		return errNoCaller()
	}
	return s.tenantError(c, tenantdb.RetryMoving(ctx, c.Tenant, placementOf, s.current(c),
		func(ctx context.Context, t tenancy.Tenant) error { return s.pools.Query(ctx, t, scan, sql, args...) }))
}

func errNoCaller() error {
	return fault.New(fault.Internal, "NO_CALLER", "service: InTenant or QueryInTenant outside a call the interceptors admitted")
}

// tenantError maps an error of c's tenant database (see InTenant).
func (s *Service) tenantError(c Caller, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tenantpool.ErrUnknownPlacement):
		return fault.New(fault.Unavailable, ReasonPlacementNotServed, "tenant %q lives in placement %q, which this service has no database for", c.Tenant.Slug, c.Tenant.Placement).WithCause(err)
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return fault.New(fault.PermissionDenied, ReasonTenantRoleDenied, "the tenant's database role may not do this: %s", pgErr.Message).WithCause(err)
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		s.logger.Error("the tenant's database role refused the component's credential", "tenant", c.Tenant.Slug, "component", s.Component(), "error", err)
		return fault.New(fault.FailedPrecondition, ReasonCredentialRejected,
			"the database refused component %q's login for tenant %q: check TENANTRY_COMPONENT_TOKEN and that the tenant has the component (tenantry migrate)", s.Component(), c.Tenant.Slug).WithCause(err)
	}
	return err
}

// admit finds the caller of a call from its metadata: the tenant always,
// the user unless the method is public.
func (s *Service) admit(ctx context.Context, method string, md metadata.MD) (context.Context, error) {
	named, err := tenancy.NamedInMetadata(md)
	if err != nil {
		return ctx, err
	}
	t, err := s.resolver.Resolve(ctx, named)
	if err == nil {
		err = tenancy.RequireActive(t)
	}
	if err != nil {
		return ctx, err
	}
	caller := Caller{Tenant: t}
	auth, err := tenancy.SingleValue(md, "authorization")
	if err != nil {
		return ctx, err
	}
	token, hasBearer := cutBearer(auth)
	switch {
	case hasBearer:
		caller.User, err = s.verifier.Verify(ctx, token, t)
		if err != nil && !s.public[method] {
			return ctx, err
		}
		if err != nil {
			caller.User = accesstoken.Claims{}
		}
	case !s.public[method]:
		return ctx, fault.New(fault.Unauthenticated, ReasonTokenMissing, "this call needs an access token: authorization: Bearer <token from identity's Login>")
	}
	return WithCaller(ctx, caller), nil
}

func cutBearer(v string) (string, bool) {
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:]), true
	}
	return "", false
}

func alwaysPublic(method string) bool {
	return strings.HasPrefix(method, healthPrefix) || strings.HasPrefix(method, reflectPrefix)
}

// UnaryServerInterceptor admits unary calls (see the package doc).
func (s *Service) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if alwaysPublic(info.FullMethod) {
			return handler(ctx, req)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		ctx, err := s.admit(ctx, info.FullMethod, md)
		if err != nil {
			return nil, grpcerr.Error(err)
		}
		resp, err := handler(ctx, req)
		return resp, grpcerr.Error(err)
	}
}

// StreamServerInterceptor admits streaming calls.
func (s *Service) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if alwaysPublic(info.FullMethod) {
			return handler(srv, ss)
		}
		md, _ := metadata.FromIncomingContext(ss.Context())
		ctx, err := s.admit(ss.Context(), info.FullMethod, md)
		if err != nil {
			return grpcerr.Error(err)
		}
		return grpcerr.Error(handler(srv, &callerStream{ServerStream: ss, ctx: ctx}))
	}
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *callerStream) Context() context.Context { return c.ctx }

// HTTPMiddleware admits plain HTTP requests (for services without gRPC):
// the tenant from the X-Tenant header or else the Host, the token from
// Authorization. Refusals are JSON google.rpc.Status bodies with the HTTP
// status of their gRPC code. Use it behind a proxy only if the proxy sets
// Host to the client's.
func (s *Service) HTTPMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		md := metadata.MD{}
		if vs := r.Header.Values("X-Tenant"); len(vs) > 0 {
			md[MetadataTenant] = vs
		} else {
			md[MetadataTenantHost] = []string{r.Host}
		}
		if vs := r.Header.Values("Authorization"); len(vs) > 0 {
			md["authorization"] = vs
		}
		ctx, err := s.admit(r.Context(), r.Method+" "+r.URL.Path, md)
		if err != nil {
			restgateway.WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

package server

import (
	"context"
	_ "embed" // the OpenAPI document
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/identity/internal/i18n"
	"tenantry.dev/identity/internal/oidcop"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
)

// openAPI is identity's OpenAPI document, generated from the protos and
// their HTTP mapping by `make generate` (see buf.gen.yaml).
//
//go:embed openapi/tenantry/identity/v1/identity.swagger.json
var openAPI []byte

// newGateway builds the REST gateway, or returns nil when HTTP is off. The
// tenant of a REST call is the request's host (or, from a trusted proxy,
// X-Forwarded-Host): the gateway passes it as x-tenant-host, and never lets
// a client set x-tenant or x-tenant-host itself.
func (a *App) newGateway(ctx context.Context) (*restgateway.Gateway, error) {
	cfg := a.cfg
	if cfg.HTTPAddr == "" {
		return nil, nil
	}
	sessions := &browserSessions{ttl: a.accounts.SessionTTL}
	provider, err := oidcop.New(oidcop.Config{
		Accounts:            a.accounts,
		Keys:                a.issuer,
		TenantOf:            func(r *http.Request) (tenancy.Tenant, error) { return activeTenantOf(a.resolver, r) },
		Host:                restgateway.RequestHost,
		Authority:           restgateway.RequestAuthority,
		Caller:              requestClient,
		PublicURL:           cfg.PublicURL,
		KeyEncryptionKey:    cfg.KeyEncryptionKey,
		AccessTTL:           cfg.AccessTTL,
		Secure:              secureHost,
		ClearBrowserSession: sessions.clearCookies,
		Logger:              a.logger,
	})
	if err != nil {
		return nil, err
	}
	sessions.sso = provider
	// The public URL is a template ("http://{tenant}.localhost:8080"),
	// which url.Parse refuses for its braces: its scheme is all we need.
	scheme, _, _ := strings.Cut(cfg.PublicURL, "://")
	federated, err := federation.New(a.accounts, &federationHost{a: a, sessions: sessions}, federation.Config{
		KeyEncryptionKey: cfg.KeyEncryptionKey, Scheme: scheme, Secure: secureHost, Logger: a.logger, Endpoints: a.opts.FederationEndpoints,
	})
	if err != nil {
		return nil, err
	}
	origins := &corsOrigins{
		global:   cfg.CORSOrigins,
		resolver: a.resolver,
		settings: func(r *http.Request, t tenancy.Tenant) (account.Settings, error) {
			return a.accounts.Settings(r.Context(), t)
		},
		now: time.Now,
	}
	return restgateway.New(ctx, restgateway.Config{
		Name:          "identity",
		Addr:          cfg.HTTPAddr,
		FlagAddr:      "--http-addr (TENANTRY_IDENTITY_HTTP_ADDR)",
		TLSCertFile:   cfg.TLSCertFile,
		TLSKeyFile:    cfg.TLSKeyFile,
		AllowInsecure: cfg.AllowInsecure,
		GRPC:          a.rpc.GRPC(),
		GRPCUsesTLS:   cfg.TLSCertFile != "",
		Register: []restgateway.RegisterFunc{
			identityv1.RegisterAuthServiceHandler,
			identityv1.RegisterUserServiceHandler,
			identityv1.RegisterAccountEventServiceHandler,
			identityv1.RegisterWebhookServiceHandler,
			identityv1.RegisterTokenServiceHandler,
			identityv1.RegisterOAuthClientServiceHandler,
			identityv1.RegisterIdentityProviderServiceHandler,
			identityv1.RegisterAccountServiceHandler,
			identityv1.RegisterPasskeyServiceHandler,
		},
		OpenAPI:      openAPI,
		Metrics:      a.metrics,
		ServeMetrics: a.metricsOn,
		Tracing:      a.tracing,
		Routes: withPageRoutes(withRoutes(map[string]http.Handler{
			"GET /.well-known/jwks.json": http.HandlerFunc(a.serveJWKS),
			"GET /v1/auth/config":        http.HandlerFunc(a.serveAuthConfig),
			"GET /v1/auth/me":            http.HandlerFunc(a.serveCurrentUser),
		}, provider.Routes(), federated.Routes()), &pageForms{accounts: a.accounts, resolver: a.resolver, sessions: sessions, federation: federated}),
		Admit:          a.admitHost,
		Wrap:           sessions.wrap,
		BeforeResponse: sessions.forwardResponse,
		CORS:           &restgateway.CORS{AllowOrigin: origins.allow},
		Metadata: withAuthority(func(r *http.Request) map[string]string {
			// The language of the pages' calls (?lang= does not reach the
			// API; the cookie and Accept-Language do), for the mails they
			// cause.
			return map[string]string{MetadataTenantHost: restgateway.RequestHost(r), metadataLanguage: i18n.Base(i18n.FromRequest(r))}
		}),
		TrustedProxies:  cfg.TrustedProxies,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          a.logger,
		AccessLog:       cfg.AccessLog,
	})
}

// withRoutes adds more routes to routes.
func withRoutes(routes map[string]http.Handler, more ...map[string]http.Handler) map[string]http.Handler {
	for _, m := range more {
		for pattern, h := range m {
			routes[pattern] = h
		}
	}
	return routes
}

// admitHost refuses a request for a host that is no tenant's, before any
// other work; the tenant interceptor checks again (state, credentials) on
// each call.
func (a *App) admitHost(r *http.Request) error {
	t, err := a.resolver.ByHost(r.Context(), restgateway.RequestHost(r))
	if err != nil {
		return a.refuseHost(r, err)
	}
	restgateway.AddLogAttrs(r.Context(), slog.String("tenant", t.Slug))
	return nil
}

// serveJWKS serves the keys of the tenant of the request's host, which
// sign its access tokens, as a JWKS document: each tenant signs with keys
// of its own, so a verifier holding one tenant's JWKS refuses every other
// tenant's tokens.
func (a *App) serveJWKS(w http.ResponseWriter, r *http.Request) {
	t, err := activeTenantOf(a.resolver, r)
	var doc []byte
	if err == nil {
		if doc, err = a.issuer.JWKSJSON(r.Context(), t.UID); err != nil {
			err = fault.New(fault.Unavailable, "SIGNING_KEYS_UNAVAILABLE", "the tenant's signing keys cannot be read now; retry").WithCause(err)
		}
	}
	if err != nil {
		restgateway.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
}

// HTTPAddr is the address of the REST gateway, or nil when HTTP is off.
func (a *App) HTTPAddr() net.Addr {
	if a.rest == nil {
		return nil
	}
	return a.rest.Addr()
}

// restJSON encodes as grpc-gateway's default marshaler does, so that a
// route served here answers the bytes the gateway would.
var restJSON = &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}

// serveAuthConfig answers GET /v1/auth/config (AuthService.GetAuthConfig)
// without the gateway's hop through in-process gRPC: the answer comes from
// memory (the session cache keeps each tenant's login configuration) and
// every login page and app start asks for it, so the hop was most of its
// cost. It is the same method, for the same tenant (the host, active), with
// the same JSON and errors as through the gateway.
func (a *App) serveAuthConfig(w http.ResponseWriter, r *http.Request) {
	t, err := activeTenantOf(a.resolver, r)
	var resp *identityv1.GetAuthConfigResponse
	if err == nil {
		resp, err = a.srv.GetAuthConfig(context.WithValue(r.Context(), tenantKey{}, t), &identityv1.GetAuthConfigRequest{})
	}
	var body []byte
	if err == nil {
		body, err = restJSON.Marshal(resp)
	}
	if err != nil {
		restgateway.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", restJSON.ContentType(resp))
	_, _ = w.Write(body)
}

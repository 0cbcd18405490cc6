package restgateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"tenantry.dev/platform/metrics"
	"tenantry.dev/platform/rpcserver"
)

// Gateway is an HTTP server whose REST routes call a gRPC server
// in-process. Build it with New, then Serve.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	tls     *tls.Config
	inProc  *inProcessListener
	conn    *grpc.ClientConn
	health  healthpb.HealthClient
	handler http.Handler

	mu      sync.Mutex
	lis     net.Listener
	serving bool
}

// New validates cfg, registers the routes and listens on cfg.Addr. Nothing
// is served until Serve.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	tlsConfig, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	logger := cfg.Logger
	if cfg.Name != "" {
		logger = logger.With(slog.String("server", cfg.Name))
	}
	g := &Gateway{cfg: cfg, log: logger, tls: tlsConfig, inProc: newInProcessListener()}

	// The in-memory connection never leaves the process, so when the
	// server insists on TLS there is nobody to authenticate: encryption
	// without verification is all the handshake can be for.
	creds := insecure.NewCredentials()
	if cfg.GRPCUsesTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // in-process connection
	}
	dialOptions := append([]grpc.DialOption{
		grpc.WithContextDialer(g.inProc.dial),
		grpc.WithTransportCredentials(creds),
	}, cfg.Tracing.DialOptions()...)
	g.conn, err = grpc.NewClient("passthrough:///restgateway", dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("restgateway: in-process connection: %w", err)
	}
	g.health = healthpb.NewHealthClient(g.conn)

	muxOptions := []runtime.ServeMuxOption{
		runtime.WithErrorHandler(handleError),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(g.metadata),
		runtime.WithDisableHTTPMethodOverride(),
	}
	if cfg.BeforeResponse != nil {
		muxOptions = append(muxOptions, runtime.WithForwardResponseOption(cfg.BeforeResponse))
	}
	mux := runtime.NewServeMux(muxOptions...)
	for _, register := range cfg.Register {
		if err := register(ctx, mux, g.conn); err != nil {
			g.conn.Close()
			return nil, fmt.Errorf("restgateway: register routes: %w", err)
		}
	}

	routes := http.NewServeMux()
	var routed http.Handler = mux
	if cfg.Wrap != nil {
		routed = cfg.Wrap(mux)
	}
	routes.Handle("/", g.admit(routed))
	for pattern, h := range cfg.Routes {
		routes.Handle(pattern, g.admit(h))
	}
	routes.HandleFunc("GET /healthz", g.serveHealthz)
	routes.HandleFunc("GET /readyz", g.serveReadyz)
	if cfg.OpenAPI != nil {
		routes.HandleFunc("GET /openapi.json", g.serveOpenAPI)
	}
	if cfg.Metrics != nil && cfg.ServeMetrics {
		routes.Handle("GET "+metrics.Path, cfg.Metrics.Handler())
	}
	g.handler = g.withRequest(routes)
	if cfg.Metrics != nil {
		g.handler = cfg.Metrics.HTTPMiddleware(g.handler)
	}
	// Outermost, so that the span covers all the gateway does and the
	// access log line, written inside it, carries its trace id.
	g.handler = cfg.Tracing.HTTPHandler(g.handler)

	if err := g.Listen(); err != nil {
		g.conn.Close()
		return nil, err
	}
	return g, nil
}

// Handler returns the gateway's handler, everything included, for tests
// that serve it themselves.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Listen binds the configured address; New calls it.
func (g *Gateway) Listen() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lis != nil {
		return nil
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(context.Background(), "tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("restgateway: listen on %s %q: %w", g.cfg.FlagAddr, g.cfg.Addr, err)
	}
	g.lis = lis
	return nil
}

// Addr returns the address of the HTTP server.
func (g *Gateway) Addr() net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lis == nil {
		return nil
	}
	return g.lis.Addr()
}

// Serve serves HTTP, and the gRPC server on the in-memory listener, until
// ctx ends; then it stops accepting requests, waits up to ShutdownTimeout
// for those in flight, and closes the in-process connection. Stopping the
// gRPC server is its owner's business (it closes the in-memory listener
// too). A Gateway serves once.
func (g *Gateway) Serve(ctx context.Context) error {
	g.mu.Lock()
	if g.serving {
		g.mu.Unlock()
		return errors.New("restgateway: Serve called twice; a Gateway serves once")
	}
	g.serving = true
	lis := g.lis
	g.mu.Unlock()
	defer g.conn.Close()

	go func() {
		// Serve returns when the owner stops the gRPC server, or at once
		// with ErrServerStopped if it already has: the gateway then answers
		// Unavailable, which is the truth.
		_ = g.cfg.GRPC.Serve(g.inProc)
	}()

	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         g.tls,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() {
		if g.tls != nil {
			served <- srv.ServeTLS(lis, "", "")
			return
		}
		served <- srv.Serve(lis)
	}()
	g.log.LogAttrs(ctx, slog.LevelInfo, "serving HTTP", slog.String("addr", lis.Addr().String()), slog.Bool("tls", g.tls != nil))

	select {
	case err := <-served:
		return fmt.Errorf("restgateway: serve on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	logCtx := context.WithoutCancel(ctx)
	shutdownCtx, cancel := context.WithTimeout(logCtx, g.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		g.log.LogAttrs(logCtx, slog.LevelWarn, "HTTP requests still in flight after the shutdown timeout; cutting them off",
			slog.Duration("shutdown_timeout", g.cfg.ShutdownTimeout))
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("restgateway: serve on %s: %w", lis.Addr(), err)
	}
	g.log.LogAttrs(logCtx, slog.LevelInfo, "HTTP stopped")
	return nil
}

// incomingHeader says which client headers become gRPC metadata: only the
// request id (Authorization is always passed by grpc-gateway). Everything
// else, Grpc-Metadata-* included, is dropped, so that clients cannot set
// metadata the service trusts the gateway to have set.
func incomingHeader(key string) (string, bool) {
	if textproto.CanonicalMIMEHeaderKey(key) == "X-Request-Id" {
		return headerRequestID, true
	}
	return "", false
}

// metadata is the metadata the gateway adds to every call. grpc-gateway
// lets these keys replace whatever the request carried under them.
func (g *Gateway) metadata(ctx context.Context, r *http.Request) metadata.MD {
	o := originFrom(r.Context())
	md := metadata.MD{}
	if o.clientIP != "" {
		md.Set(headerForwardedFor, o.clientIP)
	}
	if o.host != "" {
		md.Set(headerForwardedHost, o.host)
	}
	if ua := r.UserAgent(); ua != "" {
		// gRPC puts its own client's name in user-agent; the browser's
		// travels under a key of its own.
		md.Set(headerClientUserAgent, truncateUTF8(ua, maxUserAgentBytes))
	}
	if g.cfg.Metadata != nil {
		for k, v := range g.cfg.Metadata(r) {
			md.Set(k, v)
		}
	}
	return md
}

// admit runs Config.Admit, then the CORS checks, before h.
func (g *Gateway) admit(h http.Handler) http.Handler {
	if g.cfg.CORS != nil {
		h = g.cfg.CORS.wrap(h)
	}
	if g.cfg.Admit == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.cfg.Admit(r); err != nil {
			if answer, ok := errors.AsType[interface {
				error
				http.Handler
			}](err); ok {
				answer.ServeHTTP(w, r)
				return
			}
			WriteError(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (g *Gateway) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, `{"status":"ok"}`)
}

// serveReadyz asks the gRPC server's own health service, in-process, so
// that readiness follows the server: NOT_SERVING as soon as it drains.
func (g *Gateway) serveReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	resp, err := g.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		writeJSON(w, http.StatusServiceUnavailable, `{"status":"NOT_SERVING"}`)
		return
	}
	writeJSON(w, http.StatusOK, `{"status":"SERVING"}`)
}

func (g *Gateway) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(g.cfg.OpenAPI)
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// Serve serves rpc and, when there is one, its gateway rest until ctx ends
// and both have shut down. Either failing stops the other, so a service
// never runs with half of its faces.
func Serve(ctx context.Context, rpc *rpcserver.Server, rest *Gateway) error {
	if rest == nil {
		return rpc.Serve(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rpcDone := make(chan error, 1)
	go func() {
		err := rpc.Serve(ctx)
		cancel()
		rpcDone <- err
	}()
	restErr := rest.Serve(ctx)
	cancel()
	return errors.Join(<-rpcDone, restErr)
}

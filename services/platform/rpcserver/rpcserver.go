package rpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"tenantry.dev/platform/incoming"
)

// Keepalive settings. Pings from idle clients are allowed (grpcurl and
// long-lived service clients keep connections open between calls) but not
// more often than every 10 seconds; the server pings quiet connections so
// that dead peers behind NATs and load balancers are noticed.
var (
	keepaliveEnforcement = keepalive.EnforcementPolicy{
		MinTime:             10 * time.Second,
		PermitWithoutStream: true,
	}
	keepaliveParams = keepalive.ServerParameters{
		MaxConnectionIdle: 30 * time.Minute,
		Time:              2 * time.Minute,
		Timeout:           20 * time.Second,
	}
)

// Server is a gRPC server with Tenantry's interceptors, health and
// reflection. Register services on GRPC(), then Serve.
type Server struct {
	cfg    Config
	log    *slog.Logger
	tls    bool
	grpc   *grpc.Server
	health *health.Server

	mu      sync.Mutex
	lis     net.Listener
	serving bool
}

// New validates cfg and builds a Server; it does not listen yet. Errors
// name the flag that fixes each problem.
func New(cfg Config) (*Server, error) {
	tlsConfig, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	// Before the Server takes its copy of cfg: the option adds interceptors.
	codec := refuseMalformedRequests(&cfg)
	logger := cfg.Logger
	if cfg.Name != "" {
		logger = logger.With(slog.String("server", cfg.Name))
	}
	s := &Server{
		cfg:    cfg,
		log:    logger,
		tls:    tlsConfig != nil,
		health: health.NewServer(),
	}

	unary, stream := s.unaryInterceptors(), s.streamInterceptors()
	if u, st := cfg.Tracing.GRPCServerInterceptors(); u != nil {
		// First, so that the request id, auth and log line all run inside
		// the call's span (the stats handler below sees the call before
		// every interceptor for the same reason).
		unary = append([]grpc.UnaryServerInterceptor{u}, unary...)
		stream = append([]grpc.StreamServerInterceptor{st}, stream...)
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.KeepaliveEnforcementPolicy(keepaliveEnforcement),
		grpc.KeepaliveParams(keepaliveParams),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		codec,
		// The call's headers, for reads by name without grpc-go's
		// case-insensitive walk of the whole metadata (see incoming).
		grpc.InTapHandle(incoming.Tap),
	}
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	if h := cfg.Tracing.GRPCServerHandler(); h != nil {
		// A stats handler, not an interceptor: it sees the call before
		// every interceptor, so the request id, auth and log line all run
		// inside the span.
		opts = append(opts, grpc.StatsHandler(h))
	}
	if cfg.StreamWorkers > 0 {
		// Marked experimental in grpc-go. A worker takes a call only
		// when idle, else the call gets its own goroutine as without the
		// option; a worker replaces itself every 65,536 calls, so a
		// stack grown once does not stay forever.
		opts = append(opts, grpc.NumStreamWorkers(uint32(cfg.StreamWorkers)))
	}
	s.grpc = grpc.NewServer(opts...)

	// The health server starts out SERVING; nothing is served until Serve.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// GRPC returns the underlying server, to register services on before Serve.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Health returns the health server, so that a service can report a
// dependency outage as NOT_SERVING for its own service name. Serve sets
// every registered service SERVING at start and NOT_SERVING at shutdown.
func (s *Server) Health() *health.Server { return s.health }

// Listen binds the configured address. Serve calls it if it has not been
// called; call it first to learn the address of port 0 through Addr.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis != nil {
		return nil
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(context.Background(), "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("rpcserver: listen on %s %q: %w", s.cfg.option(FlagAddr), s.cfg.Addr, err)
	}
	s.lis = lis
	return nil
}

// Addr returns the address the server listens on, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// Serve serves until ctx is cancelled, then shuts down gracefully: health
// turns NOT_SERVING, the server keeps serving for DrainDelay, stops
// accepting calls, and waits up to ShutdownTimeout for calls in flight
// before cutting them off. It returns nil after a shutdown asked for by
// ctx, and an error if the server could not start or failed. A Server
// serves once.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("rpcserver: Serve called twice; a Server serves once")
	}
	s.serving = true
	lis := s.lis
	s.mu.Unlock()

	s.checkPolicy(ctx)
	if s.cfg.Metrics != nil {
		// Every registered method's series start at zero.
		s.cfg.Metrics.InitializeMetrics(s.grpc)
	}
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(lis) }()
	s.log.LogAttrs(ctx, slog.LevelInfo, "serving gRPC",
		slog.String("addr", lis.Addr().String()), slog.Bool("tls", s.tls))

	select {
	case err := <-served:
		s.health.Shutdown()
		s.grpc.Stop()
		return fmt.Errorf("rpcserver: serve on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}

	// ctx is done; the shutdown still deserves its logs.
	logCtx := context.WithoutCancel(ctx)
	s.health.Shutdown()
	s.log.LogAttrs(logCtx, slog.LevelInfo, "shutting down gRPC: health is NOT_SERVING",
		slog.Duration("drain_delay", s.cfg.DrainDelay), slog.Duration("shutdown_timeout", s.cfg.ShutdownTimeout))
	if s.cfg.DrainDelay > 0 {
		drain := time.NewTimer(s.cfg.DrainDelay)
		<-drain.C
	}

	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	timeout := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timeout.Stop()
	select {
	case <-stopped:
	case <-timeout.C:
		s.log.LogAttrs(logCtx, slog.LevelWarn, "calls still in flight after the shutdown timeout; cutting them off",
			slog.Duration("shutdown_timeout", s.cfg.ShutdownTimeout))
		s.grpc.Stop()
		<-stopped
	}
	// After GracefulStop or Stop, grpc.Server.Serve returns nil, or
	// ErrServerStopped if the stop came before it had begun serving.
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("rpcserver: serve on %s: %w", lis.Addr(), err)
	}
	s.log.LogAttrs(logCtx, slog.LevelInfo, "gRPC stopped")
	return nil
}

// checkPolicy warns about registered methods nobody may call and policy
// entries that match nothing: both are usually typos, and both would
// otherwise show up only as denied calls.
func (s *Server) checkPolicy(ctx context.Context) {
	registered := make(map[string]bool)
	for service, info := range s.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			registered["/"+service+"/"+m.Name] = true
		}
	}
	for _, m := range slices.Sorted(maps.Keys(registered)) {
		if !s.cfg.Auth.IsPublic(m) && len(s.cfg.Auth.Roles(m)) == 0 {
			s.log.LogAttrs(ctx, slog.LevelWarn, "method is not in the authorization policy, so every call to it is denied",
				slog.String("method", m))
		}
	}
	for _, m := range s.cfg.Auth.Methods() {
		if !registered[m] {
			s.log.LogAttrs(ctx, slog.LevelWarn, "authorization policy names a method this server does not have",
				slog.String("method", m))
		}
	}
}

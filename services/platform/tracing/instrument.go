package tracing

import (
	"net/http"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// noMeters keeps the instrumentation from recording OpenTelemetry metrics:
// the services' metrics are Prometheus's (package metrics), and a second
// set would cost time on every call for nothing.
var noMeters = metricnoop.NewMeterProvider()

// healthMethods are the gRPC probes: load balancers call them every few
// seconds, and a trace of each would bury the requests.
const healthMethods = "/grpc.health.v1.Health/"

// GRPCServerHandler returns the stats handler that gives every gRPC call
// a server span, child of the caller's span when the call's metadata
// carries a traceparent; nil when t is off, and when the server is traced
// by GRPCServerInterceptors instead (tracing Setup built).
func (t *Tracing) GRPCServerHandler() stats.Handler {
	if t == nil || t.sampler != nil {
		return nil
	}
	return otelgrpc.NewServerHandler(t.grpcOptions()...)
}

// GRPCServerInterceptors returns the interceptors that trace a gRPC server
// when Setup built t (see serverTracer), to run first in its
// chains; nil when t is off or a stats handler traces the server
// (GRPCServerHandler). A server uses whichever of the two is not nil.
func (t *Tracing) GRPCServerInterceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	if t == nil || t.sampler == nil {
		return nil, nil
	}
	s := &serverTracer{traced: otelgrpc.NewServerHandler(t.grpcOptions()...), sampler: t.sampler, propagator: t.propagator}
	for _, f := range t.propagator.Fields() {
		s.fields = append(s.fields, strings.ToLower(f))
	}
	return s.unary, s.stream
}

// GRPCClientHandler returns the stats handler that gives every outgoing
// gRPC call a client span and sends its trace context in the call's
// metadata; nil when t is off.
func (t *Tracing) GRPCClientHandler() stats.Handler {
	if t == nil {
		return nil
	}
	return otelgrpc.NewClientHandler(t.grpcOptions()...)
}

// DialOptions returns the options that trace a gRPC client connection
// (GRPCClientHandler), for a service's connections to other services;
// none when t is off.
func (t *Tracing) DialOptions() []grpc.DialOption {
	if t == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(t.GRPCClientHandler())}
}

func (t *Tracing) grpcOptions() []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(t.provider),
		otelgrpc.WithPropagators(t.propagator),
		otelgrpc.WithMeterProvider(noMeters),
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
			return !strings.HasPrefix(info.FullMethodName, healthMethods)
		}),
	}
}

// HTTPHandler wraps h so that every request gets a server span, child of
// the client's when it sends a traceparent header, and h sees the span in
// the request's context; h itself when t is off. Health probes and
// /metrics are not traced.
func (t *Tracing) HTTPHandler(h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithMeterProvider(noMeters),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
	)
}

// WrapQueryTracer returns a pgx tracer that makes a span of every query,
// batch, COPY, connection and pool acquisition done for a traced request
// (none for work outside one: a query whose context has no recording span
// costs a context value only), and also calls existing when it is not nil.
// When t is off it returns existing. Set it as the pool's
// ConnConfig.Tracer (tenantdb.PoolOptions.Tracer).
//
// The spans come from github.com/exaring/otelpgx, the maintained pgx
// instrumentation (semantic-convention attributes, no query arguments by
// default), rather than a tracer of our own.
func (t *Tracing) WrapQueryTracer(existing pgx.QueryTracer) pgx.QueryTracer {
	if t == nil {
		return existing
	}
	traced := otelpgx.NewTracer(
		otelpgx.WithTracerProvider(t.provider),
		otelpgx.WithMeterProvider(noMeters),
	)
	if existing == nil {
		return traced
	}
	// multitracer passes on every hook either tracer implements (pool
	// acquisition, batches, COPY, connect, prepare), not just queries.
	return multitracer.New(traced, existing)
}

package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"

	"tenantry.dev/platform/incoming"
)

// With the default sampling nine calls in ten are not recorded, yet a
// server traced by otelgrpc pays for every call as if it were: otelgrpc is
// a stats handler (its interceptors were removed), and once any stats
// handler is installed gRPC copies each call's whole metadata and builds
// an event for every stage of it; otelgrpc then copies the metadata again
// to read the traceparent, builds the span's attributes and start options
// and asks the SDK for a non-recording span. BenchmarkTracedCall measured
// tracing that way at 8% of the CPU of a cheap call through the whole
// server, and identity-bench at 8-11 µs (13-20%) of a GetCurrentUser, over
// the 5% tracing may cost (issue 13).
//
// So a server whose tracing Setup built (its sampler from
// OTEL_TRACES_SAMPLER, or DefaultSampler) is traced by serverTracer, two interceptors that run first in the chain:
// they take the sampling decision, with the provider's own sampler on the
// trace ID the SDK will use (presetIDs), and hand only the calls that will
// be recorded to otelgrpc's server handler, driven with the events it
// reads (TagRPC, InHeader for the server address, End for the status and
// the span's end; it ignores the others). An unrecorded call still gets
// the span context the SDK would have given it (its trace ID, a new span
// ID, sampled flag cleared), so log lines carry the trace ID and outgoing
// calls propagate the decision. The spans are otelgrpc's, attributes and
// all; only when they are started changes, from gRPC's first event to the
// first interceptor, microseconds later.
//
// Tracing from New (a provider built elsewhere, whose sampler this
// package cannot ask) traces with otelgrpc's stats handler alone
// (Tracing.GRPCServerHandler).

// serverTracer is the gRPC server's tracing when Setup built it: see
// above.
type serverTracer struct {
	traced     stats.Handler // otelgrpc's, for the calls that are recorded
	sampler    sdktrace.Sampler
	propagator propagation.TextMapPropagator
	fields     []string // the propagator's headers, lowercase
}

// start decides whether the call of method is recorded and returns the
// context its handler runs with.
func (s *serverTracer) start(ctx context.Context, method string) (_ context.Context, recorded bool) {
	if s.carriesContext(ctx) {
		ctx = s.propagator.Extract(ctx, incomingMetadata{ctx})
	}
	parent := trace.SpanContextFromContext(ctx)
	traceID := parent.TraceID()
	if !traceID.IsValid() {
		traceID = newTraceID()
	}
	r := s.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: ctx, TraceID: traceID, Name: method, Kind: trace.SpanKindServer,
	})
	if r.Decision == sdktrace.Drop {
		return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: newSpanID(), TraceFlags: parent.TraceFlags() &^ trace.FlagsSampled, TraceState: r.Tracestate,
		})), false
	}
	if !parent.TraceID().IsValid() {
		// The SDK decides again when otelgrpc starts the span: on this
		// trace ID (presetIDs), so it decides the same.
		ctx = context.WithValue(ctx, presetTraceIDKey{}, traceID)
	}
	ctx = s.traced.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
	if p, ok := peer.FromContext(ctx); ok {
		s.traced.HandleRPC(ctx, &stats.InHeader{FullMethod: method, RemoteAddr: p.Addr, LocalAddr: p.LocalAddr})
	}
	return ctx, true
}

// carriesContext reports whether the call has any header the propagator
// reads (traceparent, tracestate, baggage): most calls have none, and
// extracting from nothing still cost the composite propagator's two
// parsers 0.5% of a traced identity's CPU in perf.
func (s *serverTracer) carriesContext(ctx context.Context) bool {
	for _, f := range s.fields {
		if len(incoming.Values(ctx, f)) > 0 {
			return true
		}
	}
	return false
}

// end ends a recorded call's span with the call's outcome.
func (s *serverTracer) end(ctx context.Context, begin time.Time, err error) {
	s.traced.HandleRPC(ctx, &stats.End{BeginTime: begin, EndTime: time.Now(), Error: err})
}

func (s *serverTracer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthMethods) {
		return handler(ctx, req)
	}
	begin := time.Now()
	ctx, recorded := s.start(ctx, info.FullMethod)
	resp, err := handler(ctx, req)
	if recorded {
		s.end(ctx, begin, err)
	}
	return resp, err
}

func (s *serverTracer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, healthMethods) {
		return handler(srv, ss)
	}
	begin := time.Now()
	ctx, recorded := s.start(ss.Context(), info.FullMethod)
	err := handler(srv, &tracedStream{ServerStream: ss, ctx: ctx})
	if recorded {
		s.end(ctx, begin, err)
	}
	return err
}

// tracedStream is a server stream whose handler sees the call's span.
type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *tracedStream) Context() context.Context { return s.ctx }

// incomingMetadata reads the propagation headers of a call's incoming
// metadata one key at a time, without copying the whole metadata as
// metadata.FromIncomingContext does, and through incoming, as most calls
// carry none of them (see incoming for what a miss costs).
type incomingMetadata struct{ ctx context.Context }

func (m incomingMetadata) Get(key string) string { return incoming.Value(m.ctx, key) }

func (incomingMetadata) Set(string, string) {}

// Keys is not used by the W3C propagators, which read named keys only.
func (incomingMetadata) Keys() []string { return nil }

// presetTraceIDKey is the context key of the trace ID serverTracer
// sampled a new trace on.
type presetTraceIDKey struct{}

// presetIDs is the ID generator of the providers Setup builds: the
// SDK's random IDs, except that a trace serverTracer started
// keeps the trace ID its sampling decision was taken on.
type presetIDs struct{}

func (presetIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if id, ok := ctx.Value(presetTraceIDKey{}).(trace.TraceID); ok {
		return id, newSpanID()
	}
	return newTraceID(), newSpanID()
}

func (presetIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

// newTraceID and newSpanID draw IDs as the SDK's default generator does
// (math/rand/v2's per-thread generator, never the invalid zero ID).
func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.NativeEndian.PutUint64(id[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.NativeEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

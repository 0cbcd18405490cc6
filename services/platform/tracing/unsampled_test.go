package tracing

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
)

const testMethod = "/tenantry.identity.v1.AuthService/GetCurrentUser"

// serve drives h through one unary call of method as gRPC's server does,
// with md as the call's incoming metadata, and returns the context the
// call's handler saw.
func serve(h stats.Handler, method string, md metadata.MD) context.Context {
	ctx := metadata.NewIncomingContext(context.Background(), md)
	ctx = h.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
	now := time.Now()
	for _, ev := range []stats.RPCStats{
		&stats.Begin{BeginTime: now},
		&stats.InHeader{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50052}, RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}, FullMethod: method},
		&stats.InPayload{Length: 2, WireLength: 7, RecvTime: now},
		&stats.OutHeader{},
		&stats.OutPayload{Length: 180, WireLength: 185, SentTime: now},
		&stats.OutTrailer{},
		&stats.End{BeginTime: now, EndTime: now},
	} {
		h.HandleRPC(ctx, ev)
	}
	return ctx
}

func traceparent(sc trace.SpanContext) metadata.MD {
	return metadata.Pairs("traceparent", "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+sc.TraceFlags().String())
}

// The handler Setup uses with its own sampler decides before otelgrpc
// does, and must come to what otelgrpc alone would: a recorded server span
// for the calls the sampler keeps (child of the caller's span), none for
// the others, and for those a span context with the trace ID (the
// caller's, or a new one) that log lines and outgoing calls carry.
func TestDecidingServerHandler(t *testing.T) {
	parent := func(sampled bool) trace.SpanContext {
		flags := trace.TraceFlags(0)
		if sampled {
			flags = trace.FlagsSampled
		}
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7, 7}, SpanID: trace.SpanID{3}, TraceFlags: flags, Remote: true})
	}
	for _, c := range []struct {
		name     string
		sampler  sdktrace.Sampler
		method   string
		md       metadata.MD
		recorded bool
		caller   *trace.SpanContext // the call's trace continues the caller's
		noSpan   bool               // the handler sees no span context at all
	}{
		{name: "new trace kept", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), method: testMethod, recorded: true},
		{name: "new trace dropped", sampler: sdktrace.ParentBased(sdktrace.NeverSample()), method: testMethod},
		{name: "caller sampled", sampler: sdktrace.ParentBased(sdktrace.NeverSample()), method: testMethod, md: traceparent(parent(true)), recorded: true, caller: new(parent(true))},
		{name: "caller did not sample", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), method: testMethod, md: traceparent(parent(false)), caller: new(parent(false))},
		{name: "health probe", sampler: sdktrace.AlwaysSample(), method: "/grpc.health.v1.Health/Check", noSpan: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			spans := tracetest.NewInMemoryExporter()
			tr := withSampler(c.sampler, sdktrace.WithSyncer(spans))
			h := tr.GRPCServerHandler()
			require.IsType(t, &decidingServerHandler{}, h)

			ctx := serve(h, c.method, c.md)
			seen := trace.SpanContextFromContext(ctx)
			got := spans.GetSpans()
			if c.noSpan {
				require.False(t, seen.IsValid(), "a health probe gets no span context")
				require.Empty(t, got)
				return
			}
			require.True(t, seen.IsValid(), "the call's handler sees a span context (its trace ID goes into log lines)")
			require.Equal(t, c.recorded, seen.IsSampled())
			if c.caller != nil {
				require.Equal(t, c.caller.TraceID(), seen.TraceID(), "the trace continues the caller's")
				require.NotEqual(t, c.caller.SpanID(), seen.SpanID(), "the call has a span ID of its own")
			}
			if !c.recorded {
				require.Empty(t, got, "no span is recorded")
				return
			}
			require.Len(t, got, 1)
			span := got[0]
			require.Equal(t, trace.SpanKindServer, span.SpanKind)
			require.Equal(t, seen, span.SpanContext, "the handler sees the recorded span")
			require.Equal(t, "tenantry.identity.v1.AuthService/GetCurrentUser", span.Name)
			if c.caller != nil {
				require.Equal(t, c.caller.SpanID(), span.Parent.SpanID(), "the span is the caller's span's child")
			}
		})
	}
}

// The SDK takes the sampling decision again when otelgrpc starts a kept
// call's span; it must take it on the trace ID the handler decided on, or
// a ratio sampler would keep the square of its ratio. Every recorded span
// is one the sampler keeps by its trace ID, every dropped call one it
// drops, and about the ratio of calls is kept.
func TestDecidingServerHandlerKeepsTheRatio(t *testing.T) {
	const ratio, calls = 0.5, 4000
	ratioSampler := sdktrace.TraceIDRatioBased(ratio)
	spans := tracetest.NewInMemoryExporter()
	h := withSampler(sdktrace.ParentBased(ratioSampler), sdktrace.WithSyncer(spans)).GRPCServerHandler()
	kept := func(id trace.TraceID) bool {
		return ratioSampler.ShouldSample(sdktrace.SamplingParameters{TraceID: id}).Decision == sdktrace.RecordAndSample
	}
	recorded := 0
	for range calls {
		seen := trace.SpanContextFromContext(serve(h, testMethod, nil))
		require.Equal(t, kept(seen.TraceID()), seen.IsSampled(), "decided on the trace ID the call carries")
		if seen.IsSampled() {
			recorded++
		}
	}
	got := spans.GetSpans()
	require.Len(t, got, recorded)
	for _, s := range got {
		require.True(t, kept(s.SpanContext.TraceID()))
	}
	require.InDelta(t, ratio, float64(recorded)/calls, 0.05)
}

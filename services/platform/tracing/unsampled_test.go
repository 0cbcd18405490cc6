package tracing

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const testMethod = "/tenantry.identity.v1.AuthService/GetCurrentUser"

// serve runs a unary call of method with md as its incoming metadata
// through the interceptor, as the first of a server's chain, and returns
// the context the call's handler saw; the handler fails with fail.
func serve(u grpc.UnaryServerInterceptor, method string, md metadata.MD, fail error) context.Context {
	ctx := metadata.NewIncomingContext(context.Background(), md)
	ctx = peer.NewContext(ctx, &peer.Peer{
		Addr:      &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234},
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50052},
	})
	var seen context.Context
	_, _ = u(ctx, "request", &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
		seen = ctx
		return "response", fail
	})
	return seen
}

func traceparent(sc trace.SpanContext) metadata.MD {
	return metadata.Pairs("traceparent", "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+sc.TraceFlags().String())
}

// The interceptors Setup's tracing uses with its own sampler decide before
// otelgrpc does, and must come to what otelgrpc alone would: a recorded server span
// for the calls the sampler keeps (child of the caller's span), none for
// the others, and for those a span context with the trace ID (the
// caller's, or a new one) that log lines and outgoing calls carry.
func TestServerTracer(t *testing.T) {
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
		fail     error
	}{
		{name: "new trace kept", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), method: testMethod, recorded: true},
		{name: "new trace dropped", sampler: sdktrace.ParentBased(sdktrace.NeverSample()), method: testMethod},
		{name: "caller sampled", sampler: sdktrace.ParentBased(sdktrace.NeverSample()), method: testMethod, md: traceparent(parent(true)), recorded: true, caller: new(parent(true))},
		{name: "caller did not sample", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), method: testMethod, md: traceparent(parent(false)), caller: new(parent(false))},
		{name: "failed call kept", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), method: testMethod, recorded: true, fail: status.Error(codes.Internal, "no")},
		{name: "health probe", sampler: sdktrace.AlwaysSample(), method: "/grpc.health.v1.Health/Check", noSpan: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			spans := tracetest.NewInMemoryExporter()
			tr := withSampler(c.sampler, sdktrace.WithSyncer(spans))
			require.Nil(t, tr.GRPCServerHandler(), "no stats handler beside the interceptors")
			u, _ := tr.GRPCServerInterceptors()
			require.NotNil(t, u)

			ctx := serve(u, c.method, c.md, c.fail)
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
			attrs := map[string]string{}
			for _, a := range span.Attributes {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			require.Equal(t, "50052", attrs["server.port"], "otelgrpc saw the server's address: %v", attrs)
			if c.fail != nil {
				require.Equal(t, otelcodes.Error, span.Status.Code, "a failed call's span says so")
				require.Equal(t, "INTERNAL", attrs["rpc.response.status_code"])
			} else {
				require.Equal(t, "OK", attrs["rpc.response.status_code"])
			}
		})
	}
}

// The SDK takes the sampling decision again when otelgrpc starts a kept
// call's span; it must take it on the trace ID the handler decided on, or
// a ratio sampler would keep the square of its ratio. Every recorded span
// is one the sampler keeps by its trace ID, every dropped call one it
// drops, and about the ratio of calls is kept.
func TestServerTracerKeepsTheRatio(t *testing.T) {
	const ratio, calls = 0.5, 4000
	ratioSampler := sdktrace.TraceIDRatioBased(ratio)
	spans := tracetest.NewInMemoryExporter()
	u, _ := withSampler(sdktrace.ParentBased(ratioSampler), sdktrace.WithSyncer(spans)).GRPCServerInterceptors()
	kept := func(id trace.TraceID) bool {
		return ratioSampler.ShouldSample(sdktrace.SamplingParameters{TraceID: id}).Decision == sdktrace.RecordAndSample
	}
	recorded := 0
	for range calls {
		seen := trace.SpanContextFromContext(serve(u, testMethod, nil, nil))
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

// A stream traced over a real connection: the stream interceptor gives the
// handler the call's span in the stream's context, and the span ends with
// the call's status.
func TestServerTracerStreams(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tr := withSampler(sdktrace.AlwaysSample(), sdktrace.WithSyncer(spans))
	u, st := tr.GRPCServerInterceptors()
	seen := make(chan trace.SpanContext, 1)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(u), grpc.ChainStreamInterceptor(st),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			seen <- trace.SpanContextFromContext(stream.Context())
			return status.Error(codes.Unimplemented, "nothing here")
		}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()

	err = conn.Invoke(t.Context(), "/tenantry.test.v1.Probe/Watch", &emptypb.Empty{}, &emptypb.Empty{})
	require.Equal(t, codes.Unimplemented, status.Code(err))
	sc := <-seen
	require.True(t, sc.IsSampled())
	got := spans.GetSpans()
	require.Len(t, got, 1)
	require.Equal(t, sc, got[0].SpanContext, "the stream's handler saw the call's span")
	require.Equal(t, "tenantry.test.v1.Probe/Watch", got[0].Name)
	require.Equal(t, otelcodes.Error, got[0].Status.Code)
}

package tracing

import (
	"context"
	"net"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/tap"

	"tenantry.dev/platform/incoming"
)

// BenchmarkGRPCServerTracing is what tracing a gRPC server costs one unary
// call, with the sampling a service runs with by default (DefaultSampleRatio
// of new traces), decided first by serverTracer's interceptor; with every
// call sampled through the same interceptor, and with none (what every
// call pays: the decision and the unrecorded span context); and, for comparison, with
// otelgrpc's stats handler alone at the default sampling, driven with the
// events gRPC gives it (which leaves out what gRPC itself spends on a
// stats handler: a copy of the call's metadata and the events; see
// rpcserver's BenchmarkTracedCall for a call through a real server).
// Spans go to an exporter that keeps nothing, through the same batcher as
// in a service (so encoding and sending spans is not in it).
//
//	go test ./services/platform/tracing -run XXX -bench GRPCServerTracing
func BenchmarkGRPCServerTracing(b *testing.B) {
	const method = "/tenantry.identity.v1.AuthService/GetCurrentUser"
	md := metadata.Pairs("authorization", "Bearer x.y.z", "x-tenant", "acme", "user-agent", "grpc-go/1.77")
	p := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50052}}
	batcher := sdktrace.WithBatcher(discardExporter{}, sdktrace.WithBatchTimeout(time.Second))
	handler := func(context.Context, any) (any, error) { return "response", nil }
	info := &grpc.UnaryServerInfo{FullMethod: method}
	interceptor := func(sampler sdktrace.Sampler) func(*testing.B) {
		return func(b *testing.B) {
			t := withSampler(sampler, batcher)
			defer func() { _ = t.sdk.Shutdown(context.Background()) }()
			u, _ := t.GRPCServerInterceptors()
			b.ReportAllocs()
			for b.Loop() {
				ctx := peer.NewContext(metadata.NewIncomingContext(context.Background(), md), p)
				ctx, _ = incoming.Tap(ctx, &tap.Info{FullMethodName: method, Header: md})
				_, _ = u(ctx, "request", info, handler)
			}
		}
	}
	b.Run("default sampling", interceptor(DefaultSampler()))
	b.Run("every call", interceptor(sdktrace.AlwaysSample()))
	b.Run("no call", interceptor(sdktrace.ParentBased(sdktrace.NeverSample())))
	b.Run("otelgrpc stats handler, default sampling", func(b *testing.B) {
		provider := sdktrace.NewTracerProvider(batcher, sdktrace.WithSampler(DefaultSampler()))
		defer func() { _ = provider.Shutdown(context.Background()) }()
		h := New(provider).GRPCServerHandler()
		b.ReportAllocs()
		for b.Loop() {
			ctx := peer.NewContext(metadata.NewIncomingContext(context.Background(), md), p)
			ctx = h.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
			now := time.Now()
			for _, ev := range []stats.RPCStats{
				&stats.Begin{BeginTime: now},
				&stats.InHeader{LocalAddr: p.LocalAddr, RemoteAddr: p.Addr, FullMethod: method},
				&stats.InPayload{Length: 2, WireLength: 7, RecvTime: now},
				&stats.OutHeader{},
				&stats.OutPayload{Length: 180, WireLength: 185, SentTime: now},
				&stats.OutTrailer{},
				&stats.End{BeginTime: now, EndTime: now},
			} {
				h.HandleRPC(ctx, ev)
			}
			_, _ = handler(ctx, "request")
		}
	})
	// What the loop costs without tracing: subtract it from the others.
	b.Run("no tracing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx := peer.NewContext(metadata.NewIncomingContext(context.Background(), md), p)
			_, _ = handler(ctx, "request")
		}
	})
}

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

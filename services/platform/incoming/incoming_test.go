package incoming_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/tap"

	"tenantry.dev/platform/incoming"
)

// TestValuesThroughATappedServer reads headers inside a real server that
// installs Tap, over TCP: present, repeated and absent ones, and shows
// the values come from the tap (an interceptor that replaced the call's
// metadata before the read does not change them).
func TestValuesThroughATappedServer(t *testing.T) {
	type read struct{ present, repeated, absent, replaced []string }
	got := make(chan read, 1)
	srv := grpc.NewServer(
		grpc.InTapHandle(incoming.Tap),
		grpc.ChainUnaryInterceptor(
			func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				// What the next interceptor reads through grpc's own
				// accessor is this, not what the client sent.
				return h(metadata.NewIncomingContext(ctx, metadata.Pairs("x-tenant", "replaced")), req)
			},
			func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				got <- read{
					present:  incoming.Values(ctx, "x-tenant"),
					repeated: incoming.Values(ctx, "x-multi"),
					absent:   incoming.Values(ctx, "traceparent"),
					replaced: metadata.ValueFromIncomingContext(ctx, "x-tenant"),
				}
				return h(ctx, req)
			}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-tenant", "acme", "x-multi", "a", "x-multi", "b")
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)

	r := <-got
	require.Equal(t, []string{"acme"}, r.present)
	require.Equal(t, []string{"a", "b"}, r.repeated)
	require.Nil(t, r.absent)
	require.Equal(t, []string{"replaced"}, r.replaced, "the interceptor did replace the metadata")
}

// TestValuesWithoutTheTap falls back to grpc's accessor: a context made
// by hand, whose keys may be in any case.
func TestValuesWithoutTheTap(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"X-Request-Id": {"r1"}, "x-tenant": {"acme"}})
	for _, tc := range []struct {
		key  string
		want string
	}{
		{"x-tenant", "acme"},
		{"x-request-id", "r1"},
		{"traceparent", ""},
	} {
		require.Equal(t, tc.want, incoming.Value(ctx, tc.key), tc.key)
	}
	require.Empty(t, incoming.Value(context.Background(), "x-tenant"), "no metadata at all")
}

// BenchmarkAbsentHeader is what reading a header the call does not carry
// costs, with the tap and through grpc's accessor, from the metadata a
// GetCurrentUser carries.
func BenchmarkAbsentHeader(b *testing.B) {
	md := metadata.MD{
		":authority": {"127.0.0.1:50052"}, "content-type": {"application/grpc"}, "user-agent": {"grpc-go/1.85.0"},
		"te": {"trailers"}, "grpc-accept-encoding": {"gzip"}, "authorization": {"Bearer x.y.z"}, "x-tenant": {"acme"},
	}
	ctx := metadata.NewIncomingContext(context.Background(), md)
	tapped, _ := incoming.Tap(ctx, &tap.Info{Header: md})
	b.Run("tap", func(b *testing.B) {
		for b.Loop() {
			_ = incoming.Value(tapped, "traceparent")
		}
	})
	b.Run("metadata.ValueFromIncomingContext", func(b *testing.B) {
		for b.Loop() {
			_ = metadata.ValueFromIncomingContext(ctx, "traceparent")
		}
	})
}

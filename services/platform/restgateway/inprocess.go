package restgateway

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/test/bufconn"
)

// inProcessBuffer is the size of each in-memory connection's buffer.
const inProcessBuffer = 256 << 10

// gatewayAddr is the address of both ends of an in-process connection. Its
// type marks a gRPC call as coming from this package's gateway: no network
// peer can have it, so metadata the gateway sets can be believed.
type gatewayAddr struct{}

func (gatewayAddr) Network() string { return "restgateway" }
func (gatewayAddr) String() string  { return "restgateway" }

// inProcessListener is an in-memory listener whose connections carry
// gatewayAddr as their addresses.
type inProcessListener struct {
	*bufconn.Listener
}

func newInProcessListener() *inProcessListener {
	return &inProcessListener{Listener: bufconn.Listen(inProcessBuffer)}
}

// Accept returns the next in-memory connection.
func (l *inProcessListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gatewayConn{c}, nil
}

// Addr returns gatewayAddr.
func (l *inProcessListener) Addr() net.Addr { return gatewayAddr{} }

// dial connects to the listener, for grpc.WithContextDialer.
func (l *inProcessListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	c, err := l.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	return gatewayConn{c}, nil
}

type gatewayConn struct{ net.Conn }

func (gatewayConn) LocalAddr() net.Addr  { return gatewayAddr{} }
func (gatewayConn) RemoteAddr() net.Addr { return gatewayAddr{} }

// FromGateway reports whether the current gRPC call came through a Gateway
// of this process, rather than from a network client.
func FromGateway(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	_, ok = p.Addr.(gatewayAddr)
	return ok
}

// ClientIP returns the HTTP client's IP address as the gateway determined it
// (the peer, or what trusted proxies forwarded), when the current gRPC call
// came through a Gateway. Use it where a gRPC service would use the peer's
// address: rate limits, audit logs.
func ClientIP(ctx context.Context) (string, bool) {
	return gatewayValue(ctx, headerForwardedFor)
}

// UserAgent returns the HTTP client's User-Agent, when the current gRPC
// call came through a Gateway.
func UserAgent(ctx context.Context) (string, bool) {
	return gatewayValue(ctx, headerClientUserAgent)
}

// Host returns the host (without port) the HTTP client asked for, when the
// current gRPC call came through a Gateway.
func Host(ctx context.Context) (string, bool) {
	return gatewayValue(ctx, headerForwardedHost)
}

func gatewayValue(ctx context.Context, key string) (string, bool) {
	if !FromGateway(ctx) {
		return "", false
	}
	v := metadata.ValueFromIncomingContext(ctx, key)
	if len(v) == 0 || strings.TrimSpace(v[0]) == "" {
		return "", false
	}
	return strings.TrimSpace(v[0]), true
}

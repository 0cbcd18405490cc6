package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
)

// callTimeout bounds one set-up call (create, sign-up, first login), so
// that a stuck service fails the measure instead of the time budget.
const callTimeout = 60 * time.Second

// registryClient creates tenants as an operator's tooling would.
type registryClient struct {
	conn     *grpc.ClientConn
	tenants  registryv1.TenantServiceClient
	operator string
}

func dialRegistry(addr, operatorToken string) (*registryClient, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to the registry at %s: %w", addr, err)
	}
	return &registryClient{conn: conn, tenants: registryv1.NewTenantServiceClient(conn), operator: operatorToken}, nil
}

func (c *registryClient) close() { _ = c.conn.Close() }

// createTenant creates one ACTIVE tenant, with a request_id so that a retry
// could not create it twice.
func (c *registryClient) createTenant(ctx context.Context, slug string) error {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.operator)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.tenants.CreateTenant(ctx, &registryv1.CreateTenantRequest{
		TenantId: slug,
		Tenant: &registryv1.Tenant{
			DisplayName: "Identity bench tenant " + slug,
			Labels:      map[string]string{"source": "identity-bench"},
		},
		RequestId: uuid.NewString(),
	})
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", slug, err)
	}
	if got := resp.GetTenant(); got.GetSlug() != slug || got.GetState() != registryv1.Tenant_STATE_ACTIVE {
		return fmt.Errorf("create tenant %s: got tenant %q in state %v, want it ACTIVE", slug, got.GetSlug(), got.GetState())
	}
	return nil
}

// tenantUID returns the immutable uid of the tenant slug.
func (c *registryClient) tenantUID(ctx context.Context, slug string) (string, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.operator)
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	t, err := c.tenants.GetTenant(ctx, &registryv1.GetTenantRequest{Name: "tenants/" + slug})
	if err != nil {
		return "", fmt.Errorf("get tenant %s: %w", slug, err)
	}
	return t.GetTenant().GetUid(), nil
}

// identityConn is one gRPC connection to identity with its service clients.
type identityConn struct {
	conn   *grpc.ClientConn
	auth   identityv1.AuthServiceClient
	users  identityv1.UserServiceClient
	tokens identityv1.TokenServiceClient
	health healthpb.HealthClient
}

// identityConns are connections to identity, plaintext over loopback TCP
// as other services and the HTTP gateway hold them.
type identityConns []identityConn

// dialIdentity opens one connection per source address (nil: the kernel's
// choice, 127.0.0.1). Identity keys its per-address rate limits on the
// connection's peer address, so connections from distinct loopback
// addresses are distinct clients to it. grpc.NewClient connects lazily:
// the first calls (the warm-ups) pay for the handshakes.
func dialIdentity(addr string, sources []netip.Addr) (identityConns, error) {
	var cs identityConns
	for _, src := range sources {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if src.IsValid() {
			opts = append(opts, grpc.WithContextDialer(dialFrom(src)))
		}
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			cs.close()
			return nil, fmt.Errorf("connect to identity at %s: %w", addr, err)
		}
		cs = append(cs, identityConn{
			conn:   conn,
			auth:   identityv1.NewAuthServiceClient(conn),
			users:  identityv1.NewUserServiceClient(conn),
			tokens: identityv1.NewTokenServiceClient(conn),
			health: healthpb.NewHealthClient(conn),
		})
	}
	return cs, nil
}

// dialFrom returns a dialer whose connections leave from src.
func dialFrom(src netip.Addr) func(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}
}

func (cs identityConns) close() {
	for _, c := range cs {
		_ = c.conn.Close()
	}
}

// pick returns the connection for call i, round robin.
func (cs identityConns) pick(i int) identityConn { return cs[i%len(cs)] }

// sourceAddrs returns n loopback addresses to dial identity from, from
// 127.0.0.2 upwards: Linux routes all of 127.0.0.0/8 to the loopback
// interface, so each is a distinct client address without any set-up.
func sourceAddrs(n int) ([]netip.Addr, error) {
	if n < 1 || n > maxSourceAddrs {
		return nil, fmt.Errorf("source addresses: %d is not from 1 to %d", n, maxSourceAddrs)
	}
	addrs := make([]netip.Addr, n)
	a := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	for i := range addrs {
		// x.y.z.0 and x.y.z.255 are skipped: they look like network and
		// broadcast addresses, which some tooling treats specially.
		for a = a.Next(); a.As4()[3] == 0 || a.As4()[3] == 255; a = a.Next() {
		}
		addrs[i] = a
	}
	return addrs, nil
}

// maxSourceAddrs keeps every source address inside 127.0.0.0/8 with room.
const maxSourceAddrs = 60000

// withTenant names the tenant of an identity call.
func withTenant(ctx context.Context, slug string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-tenant", slug)
}

// withUser adds a user's access token to an identity call.
func withUser(ctx context.Context, slug, accessToken string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-tenant", slug, "authorization", "Bearer "+accessToken)
}

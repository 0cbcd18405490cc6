package server

import (
	"context"
	"log/slog"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/tenancy"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/rpcserver"
)

// Metadata keys naming the tenant of a call: a slug from internal callers
// and grpcurl, or the request's host as seen by the HTTP gateway.
const (
	MetadataTenant     = "x-tenant"
	MetadataTenantHost = "x-tenant-host"
)

// tenantless lists the methods that work without a tenant: the signing keys
// are shared by all tenants, and an access token names its own tenant.
var tenantless = map[string]bool{
	identityv1.TokenService_GetJwks_FullMethodName:         true,
	identityv1.TokenService_IntrospectToken_FullMethodName: true,
}

type tenantKey struct{}

// tenantFrom returns the tenant of the current call, set by the interceptor.
func tenantFrom(ctx context.Context) tenancy.Tenant {
	t, _ := ctx.Value(tenantKey{}).(tenancy.Tenant)
	return t
}

// tenantScope resolves the tenant of each call before its handler runs:
// unknown tenants are NotFound, suspended ones FailedPrecondition, and a
// credential bound to another tenant is refused, so a user of tenant A can
// never act in tenant B.
type tenantScope struct {
	resolver *tenancy.Resolver
}

func (s *tenantScope) scope(ctx context.Context, method string) (context.Context, error) {
	if tenantless[method] || !strings.HasPrefix(method, "/tenantry.identity.") {
		return ctx, nil
	}
	var (
		t   tenancy.Tenant
		err error
	)
	if slug := firstValue(ctx, MetadataTenant); slug != "" {
		t, err = s.resolver.BySlug(ctx, slug)
	} else if host := firstValue(ctx, MetadataTenantHost); host != "" {
		t, err = s.resolver.ByHost(ctx, host)
	} else {
		return ctx, fault.Invalid(MetadataTenant, "TENANT_REQUIRED",
			"say which tenant this call is for: send the metadata 'x-tenant: <tenant slug>'")
	}
	if err != nil {
		return ctx, err
	}
	if err := tenancy.RequireActive(t); err != nil {
		return ctx, err
	}
	if p, ok := authn.PrincipalFrom(ctx); ok && p.Tenant != "" && p.Tenant != t.Slug {
		return ctx, fault.New(fault.Unauthenticated, "ACCESS_TOKEN_WRONG_TENANT",
			"this access token belongs to another tenant; log in to %q", t.Slug)
	}
	rpcserver.AddLogAttrs(ctx, slog.String("tenant", t.Slug))
	return context.WithValue(ctx, tenantKey{}, t), nil
}

func (s *tenantScope) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := s.scope(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (s *tenantScope) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := s.scope(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &scopedStream{ServerStream: ss, ctx: ctx})
	}
}

type scopedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *scopedStream) Context() context.Context { return s.ctx }

func firstValue(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// clientOf describes the caller for sessions, rate limits and the audit log.
func clientOf(ctx context.Context) account.Client {
	c := account.Client{UserAgent: firstValue(ctx, "user-agent")}
	if ua, ok := restgateway.UserAgent(ctx); ok {
		c.UserAgent = ua
	}
	if ip, ok := restgateway.ClientIP(ctx); ok {
		// Through the REST gateway the peer is the gateway itself; it
		// says who the HTTP client was.
		c.IP = ip
	} else if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			c.IP = host
		} else {
			c.IP = p.Addr.String()
		}
	}
	if pr, ok := authn.PrincipalFrom(ctx); ok && pr.Subject == "" {
		c.Actor = pr.Role
	}
	return c
}

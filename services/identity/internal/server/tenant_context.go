package server

import (
	"context"
	"log/slog"
	"net"
	"strings"

	"golang.org/x/text/language"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/i18n"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/rpcserver"
)

// Metadata keys naming the tenant of a call (see tenancy).
const (
	MetadataTenant     = tenancy.MetadataTenant
	MetadataTenantHost = tenancy.MetadataTenantHost
)

// tenantless lists the methods that work without a tenant: an access token
// names its own tenant. When such a call names a tenant anyway, it is bound
// to it (IntrospectToken then answers only for that tenant's tokens).
var tenantless = map[string]bool{
	identityv1.TokenService_IntrospectToken_FullMethodName: true,
}

type tenantKey struct{}

// tenantFrom returns the tenant of the current call, set by the interceptor.
func tenantFrom(ctx context.Context) tenancy.Tenant {
	t, _ := ctx.Value(tenantKey{}).(tenancy.Tenant)
	return t
}

// scopedTenant returns the tenant of the current call and whether it has
// one; tenantless methods may have none.
func scopedTenant(ctx context.Context) (tenancy.Tenant, bool) {
	t, ok := ctx.Value(tenantKey{}).(tenancy.Tenant)
	return t, ok
}

// tenantScope resolves the tenant of each call before it is authenticated
// (the server runs it ahead of the Guard): unknown tenants are NotFound,
// suspended ones FailedPrecondition. Authentication then checks a user's
// credential against this tenant (see accessTokens), so a user of tenant A
// can never act in tenant B.
type tenantScope struct {
	resolver *tenancy.Resolver
}

func (s *tenantScope) scope(ctx context.Context, method string) (context.Context, error) {
	if !strings.HasPrefix(method, "/tenantry.identity.") {
		return ctx, nil
	}
	ctx = i18n.WithLanguage(ctx, languageOf(ctx))
	named, err := tenancy.NamedIn(ctx)
	if err != nil {
		return ctx, err
	}
	var t tenancy.Tenant
	switch {
	case named.None() && tenantless[method]:
		return ctx, nil
	case named.Slug == "" && tenantless[method]:
		// A call that names a host no tenant has is bound to no tenant:
		// nothing is vouched for in it (over REST the gateway already
		// refused such a host).
		t, err = s.resolver.ByHost(ctx, named.Host)
		if f, ok := fault.As(err); ok && (f.Kind == fault.NotFound || f.Kind == fault.InvalidArgument) {
			return context.WithValue(ctx, tenantKey{}, tenancy.Tenant{}), nil
		}
	default:
		t, err = s.resolver.Resolve(ctx, named)
	}
	if err != nil {
		return ctx, err
	}
	if err := tenancy.RequireActive(t); err != nil {
		return ctx, err
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
	if pr, ok := authn.PrincipalFrom(ctx); ok {
		// The audit log names who acted: a credential's role, or the
		// user (a tenant admin acting on another account, say).
		c.Actor = pr.Role
		if pr.Subject != "" {
			c.Actor = "users/" + pr.Subject
			c.UserID, c.SessionID = pr.Subject, pr.Session
		}
	}
	return c
}

// metadataLanguage is the metadata key of a call's language: what a gRPC
// client prefers, as an Accept-Language value, and what the REST gateway
// chose from the request's cookie and Accept-Language header.
const metadataLanguage = "accept-language"

// languageOf is the language of the call in ctx, for the mails it causes
// (i18n.Match of its accept-language metadata; English without).
func languageOf(ctx context.Context) language.Tag {
	md, _ := metadata.FromIncomingContext(ctx)
	return i18n.Match(md.Get(metadataLanguage)...)
}

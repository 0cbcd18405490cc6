package authn_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
)

const (
	createTenant = "/tenantry.registry.v1.TenantService/CreateTenant"
	getTenant    = "/tenantry.registry.v1.TenantService/GetTenant"
	unlisted     = "/tenantry.registry.v1.TenantService/DeleteTenant"
	version      = "/tenantry.registry.v1.TenantService/GetVersion"
)

func newGuard(t *testing.T) *authn.Guard {
	t.Helper()
	static, err := authn.NewStaticTokens(
		authn.Credential{Role: "operator", Token: "op-token"},
		authn.Credential{Role: "service", Token: "svc-token"},
	)
	require.NoError(t, err)
	failing := authn.AuthenticatorFunc(func(ctx context.Context, token string) (authn.Principal, error) {
		switch token {
		case "unavailable":
			return authn.Principal{}, fault.New(fault.Unavailable, "IDENTITY_UNAVAILABLE", "identity is unavailable")
		case "broken":
			return authn.Principal{}, errors.New("dial tcp 10.0.0.7:5432: connection refused")
		case "roleless":
			return authn.Principal{Subject: "someone"}, nil
		}
		return authn.Principal{}, authn.ErrUnknownToken
	})
	g, err := authn.NewGuard(authn.Policy{
		createTenant: {"operator"},
		getTenant:    {"operator", "service"},
	}, authn.Chain(static, failing), authn.Public(version))
	require.NoError(t, err)
	return g
}

// incoming returns a context as a server sees it, with the given
// authorization header values.
func incoming(authorization ...string) context.Context {
	md := metadata.MD{}
	for _, v := range authorization {
		md.Append("authorization", v)
	}
	return metadata.NewIncomingContext(context.Background(), md)
}

func TestGuardAuthorize(t *testing.T) {
	t.Parallel()
	g := newGuard(t)

	cases := []struct {
		name   string
		ctx    context.Context
		method string
		kind   fault.Kind // checked when reason is set
		reason string
		role   string // expected principal's role on success; "" for none
	}{
		{name: "health checks need no credentials", ctx: incoming(), method: "/grpc.health.v1.Health/Check"},
		{name: "reflection needs no credentials", ctx: incoming(), method: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"},
		{name: "old reflection needs no credentials", ctx: incoming(), method: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"},
		{name: "a method marked public needs no credentials", ctx: incoming(), method: version},
		{name: "a public method ignores a bad token", ctx: incoming("Bearer nonsense"), method: version},
		{name: "no metadata at all is unauthenticated", ctx: context.Background(), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonMissingBearerToken},
		{name: "no authorization header is unauthenticated", ctx: incoming(), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonMissingBearerToken},
		{name: "another scheme is unauthenticated", ctx: incoming("Basic b3A6dG9rZW4="), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonMissingBearerToken},
		{name: "a bare token without scheme is unauthenticated", ctx: incoming("op-token"), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonMissingBearerToken},
		{name: "an empty bearer token is unauthenticated", ctx: incoming("Bearer "), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonMissingBearerToken},
		{name: "a token with a space is unauthenticated", ctx: incoming("Bearer op token"), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonMissingBearerToken},
		{name: "two authorization headers are unauthenticated", ctx: incoming("Bearer op-token", "Bearer svc-token"), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonMissingBearerToken},
		{name: "an unknown token is unauthenticated", ctx: incoming("Bearer wrong"), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonInvalidCredentials},
		{name: "an unknown token on an unlisted method is still unauthenticated", ctx: incoming("Bearer wrong"), method: unlisted,
			kind: fault.Unauthenticated, reason: authn.ReasonInvalidCredentials},
		{name: "a principal without a role is unauthenticated", ctx: incoming("Bearer roleless"), method: getTenant,
			kind: fault.Unauthenticated, reason: authn.ReasonInvalidCredentials},
		{name: "a role the policy does not allow is denied", ctx: incoming("Bearer svc-token"), method: createTenant,
			kind: fault.PermissionDenied, reason: authn.ReasonRoleNotAllowed},
		{name: "a method not in the policy is denied to every role", ctx: incoming("Bearer op-token"), method: unlisted,
			kind: fault.PermissionDenied, reason: authn.ReasonRoleNotAllowed},
		{name: "a failing authenticator's fault is kept", ctx: incoming("Bearer unavailable"), method: getTenant,
			kind: fault.Unavailable, reason: "IDENTITY_UNAVAILABLE"},
		{name: "a failing authenticator's plain error becomes internal", ctx: incoming("Bearer broken"), method: getTenant,
			kind: fault.Internal, reason: authn.ReasonAuthFailed},
		{name: "an allowed role passes", ctx: incoming("Bearer op-token"), method: createTenant, role: "operator"},
		{name: "the scheme is case-insensitive", ctx: incoming("bearer svc-token"), method: getTenant, role: "service"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, err := g.Authorize(tc.ctx, tc.method)
			// The same call over HTTP, its Authorization headers given
			// as they are: the same answer.
			httpCtx, httpErr := g.AuthorizeHeader(context.Background(), tc.method, metadata.ValueFromIncomingContext(tc.ctx, "authorization"))
			require.Equal(t, fmt.Sprint(err), fmt.Sprint(httpErr), "AuthorizeHeader's error")
			httpRole, _ := authn.RoleFrom(httpCtx)
			wantRole, _ := authn.RoleFrom(ctx)
			require.Equal(t, wantRole, httpRole, "AuthorizeHeader's principal")
			if tc.reason != "" {
				f, ok := fault.As(err)
				require.True(t, ok, "want a fault, got %v", err)
				require.Equal(t, tc.kind, f.Kind)
				require.Equal(t, tc.reason, f.Reason)
				require.NotContains(t, err.Error(), "op-token", "errors must never show a token")
				require.NotContains(t, err.Error(), "svc-token", "errors must never show a token")
				return
			}
			require.NoError(t, err)
			role, ok := authn.RoleFrom(ctx)
			require.Equal(t, tc.role != "", ok)
			require.Equal(t, tc.role, role)
		})
	}

	t.Run("the denial names the role and the method", func(t *testing.T) {
		t.Parallel()
		_, err := g.Authorize(incoming("Bearer svc-token"), createTenant)
		f, ok := fault.As(err)
		require.True(t, ok)
		require.Contains(t, f.Message, `"service"`)
		require.Contains(t, f.Message, createTenant)
	})

	t.Run("a cancelled authentication stays a cancellation", func(t *testing.T) {
		t.Parallel()
		cancelling := authn.AuthenticatorFunc(func(ctx context.Context, _ string) (authn.Principal, error) {
			return authn.Principal{}, context.Canceled
		})
		g, err := authn.NewGuard(authn.Policy{getTenant: {"operator"}}, cancelling)
		require.NoError(t, err)
		_, err = g.Authorize(incoming("Bearer x"), getTenant)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestNewGuardRejectsBadPolicies(t *testing.T) {
	t.Parallel()
	none := authn.Chain()
	cases := []struct {
		name   string
		policy authn.Policy
		auth   authn.Authenticator
		opts   []authn.Option
		want   string
	}{
		{"no authenticator", authn.Policy{}, nil, nil, "needs an Authenticator"},
		{"a method name without a service", authn.Policy{"/GetTenant": {"operator"}}, none, nil, "not a full method name"},
		{"a method name without the leading slash", authn.Policy{"pkg.S/M": {"operator"}}, none, nil, "not a full method name"},
		{"a method with no roles", authn.Policy{getTenant: {}}, none, nil, "lists no roles"},
		{"a method with an empty role", authn.Policy{getTenant: {""}}, none, nil, "empty role"},
		{"a method both public and restricted", authn.Policy{getTenant: {"operator"}}, none, []authn.Option{authn.Public(getTenant)}, "both public and restricted"},
		{"a malformed public method", authn.Policy{}, none, []authn.Option{authn.Public("Check")}, "public method"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := authn.NewGuard(tc.policy, tc.auth, tc.opts...)
			require.ErrorContains(t, err, tc.want)
		})
	}

	t.Run("the guard reports its policy", func(t *testing.T) {
		t.Parallel()
		g := newGuard(t)
		require.Equal(t, []string{createTenant, getTenant}, g.Methods())
		require.Equal(t, []string{"operator", "service"}, g.Roles(getTenant))
		require.Empty(t, g.Roles(unlisted))
		require.True(t, g.IsPublic(version))
		require.False(t, g.IsPublic(getTenant))
	})
}

func TestGuardInterceptors(t *testing.T) {
	t.Parallel()
	g := newGuard(t)

	t.Run("the unary interceptor returns statuses and passes the principal on", func(t *testing.T) {
		t.Parallel()
		unary := g.UnaryServerInterceptor()
		var seen string
		handler := func(ctx context.Context, _ any) (any, error) {
			seen, _ = authn.RoleFrom(ctx)
			return "ok", nil
		}

		_, err := unary(incoming(), nil, &grpc.UnaryServerInfo{FullMethod: getTenant}, handler)
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, authn.MessageMissingBearerToken, status.Convert(err).Message())

		_, err = unary(incoming("Bearer wrong"), nil, &grpc.UnaryServerInfo{FullMethod: getTenant}, handler)
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, "invalid credentials", status.Convert(err).Message())

		_, err = unary(incoming("Bearer svc-token"), nil, &grpc.UnaryServerInfo{FullMethod: createTenant}, handler)
		require.Equal(t, codes.PermissionDenied, status.Code(err))

		_, err = unary(incoming("Bearer broken"), nil, &grpc.UnaryServerInfo{FullMethod: getTenant}, handler)
		require.Equal(t, codes.Internal, status.Code(err))
		require.NotContains(t, status.Convert(err).Message(), "10.0.0.7", "the cause stays out of the status")

		resp, err := unary(incoming("Bearer op-token"), nil, &grpc.UnaryServerInfo{FullMethod: createTenant}, handler)
		require.NoError(t, err)
		require.Equal(t, "ok", resp)
		require.Equal(t, "operator", seen)
	})

	t.Run("the stream interceptor passes the principal in the stream's context", func(t *testing.T) {
		t.Parallel()
		stream := g.StreamServerInterceptor()
		var seen string
		handler := func(_ any, ss grpc.ServerStream) error {
			seen, _ = authn.RoleFrom(ss.Context())
			return nil
		}

		err := stream(nil, fakeStream{ctx: incoming("Bearer wrong")}, &grpc.StreamServerInfo{FullMethod: getTenant}, handler)
		require.Equal(t, codes.Unauthenticated, status.Code(err))

		err = stream(nil, fakeStream{ctx: incoming("Bearer svc-token")}, &grpc.StreamServerInfo{FullMethod: getTenant}, handler)
		require.NoError(t, err)
		require.Equal(t, "service", seen)
	})
}

// fakeStream is the least of a ServerStream that the interceptor touches.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

package authn_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
)

const (
	watch  = "/tenantry.identity.v1.AccountEventService/WatchAccountEvents"
	health = "/grpc.health.v1.Health/Watch"
)

// answer is what the users' authenticator says of a token.
type answer struct {
	p   authn.Principal
	err error
}

// users stands in for an authenticator of users' tokens whose answers
// change while a call lives (sessions end, roles change). Like identity's,
// it needs the call's tenant, which an earlier interceptor put in the
// call's context, so it also shows that Recheck authenticates in that
// context.
type users struct{ answers sync.Map } // token → answer

type tenantKey struct{}

func (u *users) Authenticate(ctx context.Context, token string) (authn.Principal, error) {
	if ctx.Value(tenantKey{}) != "acme" {
		return authn.Principal{}, fault.New(fault.Unauthenticated, "USER_TOKEN_NOT_ACCEPTED", "no tenant in the call")
	}
	a, ok := u.answers.Load(token)
	if !ok {
		return authn.Principal{}, authn.ErrUnknownToken
	}
	return a.(answer).p, a.(answer).err
}

func TestRecheck(t *testing.T) {
	t.Parallel()
	static, err := authn.NewStaticTokens(
		authn.Credential{Role: "operator", Token: "op-token"},
		authn.Credential{Role: "service", Token: "svc-token"},
	)
	require.NoError(t, err)
	u := &users{}
	g, err := authn.NewGuard(authn.Policy{watch: {"admin", "operator", "service"}}, authn.Chain(static, u))
	require.NoError(t, err)

	admin := answer{p: authn.Principal{Role: "admin", Subject: "user-1", Session: "s-1"}}
	cases := []struct {
		name   string
		token  string // a case's own, so that cases run in parallel
		via    string // how the call came in: "unary", "stream" or "http"
		method string
		before answer // the authenticator's answer when the call began
		after  answer // and when it is checked again
		kind   fault.Kind
		reason string // "" when the call still stands
	}{
		{name: "an admin who still is one passes", token: "t-still", via: "stream", method: watch,
			before: admin, after: admin},
		{name: "a static service token stays valid", token: "svc-token", via: "stream", method: watch},
		{name: "a static operator token stays valid over HTTP", token: "op-token", via: "http", method: watch},
		{name: "an admin whose session ended gets the authenticator's fault", token: "t-logout", via: "stream", method: watch,
			before: admin, after: answer{err: fault.New(fault.Unauthenticated, "SESSION_ENDED", "the session has ended")},
			kind: fault.Unauthenticated, reason: "SESSION_ENDED"},
		{name: "an admin whose token expired gets the authenticator's fault", token: "t-expired", via: "unary", method: watch,
			before: admin, after: answer{err: fault.New(fault.Unauthenticated, "ACCESS_TOKEN_EXPIRED", "the access token has expired")},
			kind: fault.Unauthenticated, reason: "ACCESS_TOKEN_EXPIRED"},
		{name: "an admin demoted to a role the method does not allow is denied", token: "t-demoted", via: "stream", method: watch,
			before: admin, after: answer{p: authn.Principal{Role: "user", Subject: "user-1", Session: "s-1"}},
			kind: fault.PermissionDenied, reason: authn.ReasonRoleNotAllowed},
		{name: "a demotion is seen over HTTP too", token: "t-demoted-http", via: "http", method: watch,
			before: admin, after: answer{p: authn.Principal{Role: "user", Subject: "user-1", Session: "s-1"}},
			kind: fault.PermissionDenied, reason: authn.ReasonRoleNotAllowed},
		{name: "a token no authenticator knows any more is invalid", token: "t-forgotten", via: "stream", method: watch,
			before: admin, after: answer{err: fmt.Errorf("users: %w", authn.ErrUnknownToken)},
			kind: fault.Unauthenticated, reason: authn.ReasonInvalidCredentials},
		{name: "a principal that lost its role is invalid", token: "t-roleless", via: "stream", method: watch,
			before: admin, after: answer{p: authn.Principal{Subject: "user-1"}},
			kind: fault.Unauthenticated, reason: authn.ReasonInvalidCredentials},
		{name: "an authenticator that cannot check is an internal error", token: "t-broken", via: "stream", method: watch,
			before: admin, after: answer{err: errors.New("dial tcp 10.0.0.7:5432: connection refused")},
			kind: fault.Internal, reason: authn.ReasonAuthFailed},
		{name: "a public method has nothing to check again", token: "t-public", via: "stream", method: health,
			before: admin, after: answer{err: fault.New(fault.Unauthenticated, "SESSION_ENDED", "the session has ended")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.before != (answer{}) {
				u.answers.Store(tc.token, tc.before)
			}
			ctx := callContext(t, g, tc.via, tc.method, tc.token)
			require.NoError(t, authn.Recheck(ctx), "nothing changed yet")
			if tc.after != (answer{}) {
				u.answers.Store(tc.token, tc.after)
			}

			err := authn.Recheck(ctx)
			if tc.reason == "" {
				require.NoError(t, err)
				return
			}
			f, ok := fault.As(err)
			require.True(t, ok, "want a fault, got %v", err)
			require.Equal(t, tc.kind, f.Kind)
			require.Equal(t, tc.reason, f.Reason)
			require.NotContains(t, err.Error(), tc.token, "errors must never show a token")
			// The answer is the one a call made now gets.
			_, now := g.AuthorizeHeader(context.WithValue(context.Background(), tenantKey{}, "acme"), tc.method, []string{"Bearer " + tc.token})
			require.Equal(t, fmt.Sprint(now), fmt.Sprint(err))
		})
	}

	t.Run("a principal set in-process has nothing to check again", func(t *testing.T) {
		t.Parallel()
		ctx := authn.WithPrincipal(context.Background(), authn.Principal{Role: "admin"})
		require.NoError(t, authn.Recheck(ctx))
	})

	t.Run("a context that no call has has nothing to check again", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, authn.Recheck(context.Background()))
	})

	t.Run("a Principal replaced in a checked call is still checked again", func(t *testing.T) {
		t.Parallel()
		u.answers.Store("t-enriched", admin)
		ctx := callContext(t, g, "unary", watch, "t-enriched")
		ctx = authn.WithPrincipal(ctx, authn.Principal{Role: "admin", Subject: "enriched"})
		require.NoError(t, authn.Recheck(ctx))
		u.answers.Delete("t-enriched")
		require.Error(t, authn.Recheck(ctx), "the enriched Principal kept the Guard's re-check")
	})

	t.Run("a cancelled recheck stays a cancellation", func(t *testing.T) {
		t.Parallel()
		var calls int
		cancelling := authn.AuthenticatorFunc(func(ctx context.Context, _ string) (authn.Principal, error) {
			calls++
			if calls > 1 {
				return authn.Principal{}, context.Canceled
			}
			return authn.Principal{Role: "admin"}, nil
		})
		g, err := authn.NewGuard(authn.Policy{watch: {"admin"}}, cancelling)
		require.NoError(t, err)
		ctx, err := g.Authorize(incoming("Bearer x"), watch)
		require.NoError(t, err)
		require.ErrorIs(t, authn.Recheck(ctx), context.Canceled)
	})
}

// callContext lets a call of method with token in through g the way via
// names, in the tenant "acme", and returns the context its handler sees.
func callContext(t *testing.T, g *authn.Guard, via, method, token string) context.Context {
	t.Helper()
	md := metadata.Pairs("authorization", "Bearer "+token)
	ctx := context.WithValue(metadata.NewIncomingContext(context.Background(), md), tenantKey{}, "acme")
	switch via {
	case "unary":
		ctx, err := g.Authorize(ctx, method)
		require.NoError(t, err)
		return ctx
	case "http":
		ctx, err := g.AuthorizeHeader(context.WithValue(context.Background(), tenantKey{}, "acme"), method, md.Get("authorization"))
		require.NoError(t, err)
		return ctx
	case "stream":
		var seen context.Context
		err := g.StreamServerInterceptor()(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: method},
			func(_ any, ss grpc.ServerStream) error {
				seen = ss.Context()
				return nil
			})
		require.NoError(t, err)
		return seen
	}
	t.Fatalf("unknown way in %q", via)
	return nil
}

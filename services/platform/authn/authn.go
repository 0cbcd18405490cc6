package authn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
)

// Reasons of the faults the Guard returns; clients may rely on them.
const (
	ReasonMissingBearerToken = "MISSING_BEARER_TOKEN"
	ReasonInvalidCredentials = "INVALID_CREDENTIALS"
	ReasonRoleNotAllowed     = "ROLE_NOT_ALLOWED"
	ReasonAuthFailed         = "AUTHENTICATION_FAILED"
)

// MessageMissingBearerToken tells a caller without a usable authorization
// header exactly what to send.
const MessageMissingBearerToken = "missing bearer token: send 'authorization: Bearer <token>'"

// defaultPublicPrefixes are method prefixes that never need credentials:
// load balancers and orchestrators probe health without any, and operators
// run `grpcurl list/describe` before they have a token at hand.
var defaultPublicPrefixes = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.",
}

// Policy maps a full gRPC method name ("/package.Service/Method") to the
// roles allowed to call it. Methods it does not list are denied to all.
type Policy map[string][]string

// Option adjusts a Guard.
type Option func(*Guard)

// Public marks methods (full names) as callable without credentials.
func Public(methods ...string) Option {
	return func(g *Guard) {
		for _, m := range methods {
			g.public[m] = true
		}
	}
}

// Guard authenticates callers and enforces a Policy. It is safe for
// concurrent use and immutable once built.
type Guard struct {
	auth   Authenticator
	roles  map[string]map[string]bool
	public map[string]bool
}

// NewGuard returns a Guard enforcing policy with the principals that auth
// finds. It rejects a nil authenticator, malformed method names, methods
// with no roles, and methods both public and in the policy, since each of
// these is a mistake that would otherwise surface only as a denied call.
func NewGuard(policy Policy, auth Authenticator, opts ...Option) (*Guard, error) {
	if auth == nil {
		return nil, errors.New("authn: a Guard needs an Authenticator (use authn.Chain() to accept no tokens at all)")
	}
	g := &Guard{
		auth:   auth,
		roles:  make(map[string]map[string]bool, len(policy)),
		public: make(map[string]bool),
	}
	for _, opt := range opts {
		opt(g)
	}

	var errs []error
	for _, m := range slices.Sorted(maps.Keys(g.public)) {
		if err := checkMethodName(m); err != nil {
			errs = append(errs, fmt.Errorf("authn: public method: %w", err))
		}
	}
	for _, m := range slices.Sorted(maps.Keys(policy)) {
		roles := policy[m]
		if err := checkMethodName(m); err != nil {
			errs = append(errs, fmt.Errorf("authn: policy: %w", err))
			continue
		}
		if g.public[m] {
			errs = append(errs, fmt.Errorf("authn: policy: %s is both public and restricted to roles %v; choose one", m, roles))
			continue
		}
		if len(roles) == 0 {
			errs = append(errs, fmt.Errorf("authn: policy: %s lists no roles; list the roles allowed or remove it (unlisted methods are denied)", m))
			continue
		}
		allowed := make(map[string]bool, len(roles))
		for _, r := range roles {
			if r == "" {
				errs = append(errs, fmt.Errorf("authn: policy: %s lists an empty role", m))
				continue
			}
			allowed[r] = true
		}
		g.roles[m] = allowed
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return g, nil
}

// IsPublic reports whether fullMethod can be called without credentials.
func (g *Guard) IsPublic(fullMethod string) bool {
	if g.public[fullMethod] {
		return true
	}
	for _, p := range defaultPublicPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// Roles returns, sorted, the roles allowed to call fullMethod; none for a
// method the policy does not list.
func (g *Guard) Roles(fullMethod string) []string {
	return slices.Sorted(maps.Keys(g.roles[fullMethod]))
}

// Methods returns, sorted, the methods the policy lists. Servers use it to
// warn about entries that match no registered method (usually a typo).
func (g *Guard) Methods() []string {
	return slices.Sorted(maps.Keys(g.roles))
}

// Authorize checks the caller of fullMethod, whose incoming gRPC metadata
// is in ctx, and returns ctx carrying the caller's Principal. Public methods
// pass without looking at credentials (and without a Principal).
//
// Its errors are *fault.Error values, with any underlying cause kept for
// logs; grpcerr turns them into statuses. Callers are authenticated before
// the method is looked up, so that callers without credentials learn
// nothing about which methods exist.
func (g *Guard) Authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	if g.IsPublic(fullMethod) {
		return ctx, nil
	}
	// ValueFromIncomingContext reads the one key without copying the whole
	// metadata map, which matters on every call of a hot path like resolution.
	return g.authorize(ctx, fullMethod, metadata.ValueFromIncomingContext(ctx, "authorization"))
}

// AuthorizeHeader is Authorize for a call of fullMethod that does not
// arrive over gRPC, such as an HTTP route a service answers itself instead
// of through its REST gateway's in-process gRPC hop: authorization holds
// the values of the request's Authorization headers, those the gateway
// would have passed on as the call's "authorization" metadata. The checks,
// the Principal and the errors are Authorize's.
func (g *Guard) AuthorizeHeader(ctx context.Context, fullMethod string, authorization []string) (context.Context, error) {
	if g.IsPublic(fullMethod) {
		return ctx, nil
	}
	return g.authorize(ctx, fullMethod, authorization)
}

// authorize authenticates the bearer token among authorization, the
// values of the call's authorization header, and checks its role. The
// context it returns keeps the token and the method for Recheck.
func (g *Guard) authorize(ctx context.Context, fullMethod string, authorization []string) (context.Context, error) {
	token, ok := bearerToken(authorization)
	if !ok {
		return ctx, fault.New(fault.Unauthenticated, ReasonMissingBearerToken, MessageMissingBearerToken)
	}
	p, err := g.admit(ctx, fullMethod, token)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, principalKey{}, &admission{principal: p, guard: g, method: fullMethod, token: token}), nil
}

// admit authenticates token and checks that its role may call fullMethod:
// the decision both authorize and Recheck take, so that a call checked
// again gets exactly the answer it would get if it were made now.
func (g *Guard) admit(ctx context.Context, fullMethod, token string) (Principal, error) {
	p, err := g.auth.Authenticate(ctx, token)
	switch {
	case errors.Is(err, ErrUnknownToken):
		return Principal{}, fault.New(fault.Unauthenticated, ReasonInvalidCredentials, "invalid credentials")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	case err != nil:
		if _, isFault := fault.As(err); isFault {
			return Principal{}, err
		}
		return Principal{}, fault.New(fault.Internal, ReasonAuthFailed, "could not verify credentials").
			WithCause(fmt.Errorf("authenticate: %w", err))
	case p.Role == "":
		// An authenticator that vouches for nobody in particular must not
		// open any door.
		return Principal{}, fault.New(fault.Unauthenticated, ReasonInvalidCredentials, "invalid credentials").
			WithCause(errors.New("authenticator returned a principal without a role"))
	}

	allowed, listed := g.roles[fullMethod]
	if !allowed[p.Role] {
		f := fault.New(fault.PermissionDenied, ReasonRoleNotAllowed, "role %q may not call %s", p.Role, fullMethod).
			WithMetadata("role", p.Role).
			WithMetadata("method", fullMethod)
		if !listed {
			// Only the logs learn why: it is configuration, not the caller's business.
			f = f.WithCause(errors.New("method is not in the authorization policy; it is denied to every role"))
		}
		return Principal{}, f
	}
	return p, nil
}

// UnaryServerInterceptor returns an interceptor that authorizes each call
// before it reaches the handler.
func (g *Guard) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := g.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, grpcerr.Error(err)
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns an interceptor that authorizes each
// stream before it reaches the handler.
func (g *Guard) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := g.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return grpcerr.Error(err)
		}
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

// bearerToken returns the token of the single "authorization: Bearer"
// header among values. More than one authorization header is refused
// rather than guessed at.
func bearerToken(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsFunc(token, isSpaceOrControl) {
		return "", false
	}
	return token, true
}

// checkMethodName accepts "/package.Service/Method".
func checkMethodName(m string) error {
	service, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
	if !strings.HasPrefix(m, "/") || !ok || service == "" || method == "" || strings.Contains(method, "/") {
		return fmt.Errorf("%q is not a full method name like /package.Service/Method", m)
	}
	return nil
}

// contextStream is a ServerStream whose context carries the Principal.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the stream's context with the Principal.
func (s *contextStream) Context() context.Context { return s.ctx }

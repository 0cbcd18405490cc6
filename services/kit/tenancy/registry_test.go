package tenancy_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	operatorToken = registrytest.OperatorToken
	serviceToken  = registrytest.ServiceToken
	waitFor       = registrytest.WaitFor
)

var (
	dial     = registrytest.Dial
	freeAddr = registrytest.FreeAddr
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	registrytest.Eventually(t, what, cond)
}

// registry is a real tenant-registry process (see registrytest).
type registry = registrytest.Registry

func buildRegistry(t *testing.T) string {
	t.Helper()
	bin, err := registrytest.Build(t.TempDir())
	require.NoError(t, err)
	return bin
}

func startRegistry(t *testing.T, bin string) *registry { return registrytest.Start(t, bin) }

// rpcCounter counts the ResolveTenant calls a resolver makes.
type rpcCounter struct{ n atomic.Int64 }

func (c *rpcCounter) resolves() int64 { return c.n.Load() }

func (c *rpcCounter) intercept(ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption,
) error {
	if method == registryv1.TenantService_ResolveTenant_FullMethodName {
		c.n.Add(1)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// newResolver returns a resolver talking to r through a connection of its
// own, and the counter of its ResolveTenant calls.
func newResolver(t *testing.T, r *registry, token string, opts tenancy.Options) (*tenancy.Resolver, *rpcCounter) {
	t.Helper()
	calls := &rpcCounter{}
	conn := dial(t, r.Addr, grpc.WithUnaryInterceptor(calls.intercept))
	opts.Logger = testLogger(t)
	return tenancy.NewResolver(registryv1.NewTenantServiceClient(conn), token, opts), calls
}

// run runs the resolver's watch until the end of the test and waits until
// it is ready.
func run(t *testing.T, res *tenancy.Resolver) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		res.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	eventually(t, "the resolver to be ready", res.Ready)
}

// testLogger shows the resolver's logs with TENANTRY_TEST_LOGS set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("TENANTRY_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// receive returns the next value from ch, failing the test after waitFor.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		require.FailNow(t, "nothing received", "timed out after %s waiting for %s", waitFor, what)
		var zero T
		return zero
	}
}

// requireFault requires err to be a fault of the given kind and reason.
func requireFault(t *testing.T, err error, kind fault.Kind, reason string) {
	t.Helper()
	require.Error(t, err)
	f, ok := fault.As(err)
	require.True(t, ok, "not a fault: %v", err)
	require.Equal(t, kind, f.Kind, "fault: %v", err)
	require.Equal(t, reason, f.Reason, "fault: %v", err)
}

// Package registrytest runs a real tenant-registry process for the tests of
// services built on Tenantry (identity's among them). The registry's
// packages are internal to its module, so a test builds its binary once and
// starts it as a subprocess on a fresh database and a free port.
package registrytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/pgtest"
)

// Credentials of every registry started here.
const (
	OperatorToken = "operator-token-for-tests-0123456789"
	ServiceToken  = "service-token-for-tests-0123456789"
	// ComponentKey derives the component tokens (ComponentToken).
	ComponentKey = "component-key-for-tests-0123456789abcdef"
	// WaitFor bounds every wait for a condition. Generous, since CI
	// machines can be slow; tests only take that long when they fail.
	WaitFor     = 20 * time.Second
	pollEvery   = 20 * time.Millisecond
	callTimeout = 10 * time.Second
)

// Build builds the tenant-registry binary into dir and returns its path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "tenant-registry")
	cmd := exec.Command("go", "build", "-o", bin, "tenantry.dev/tenant-registry/cmd/tenant-registry")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string {
	return "go build tenant-registry: " + e.err.Error() + "\n" + e.out
}

// Registry is a tenant-registry process serving on a fixed address, so that
// it can be killed and started again where clients expect it.
type Registry struct {
	t     *testing.T
	bin   string
	Addr  string
	DBURL string
	// Operator is a client of the registry; call with OperatorCtx.
	Operator registryv1.TenantServiceClient
	health   healthpb.HealthClient
	logs     *LockedBuffer

	args   []string // extra flags
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts a registry from bin on a fresh database and a free port, and
// kills it at the end of the test.
func Start(t *testing.T, bin string) *Registry {
	t.Helper()
	return StartOn(t, bin, pgtest.NewDatabase(t))
}

// StartOn starts a registry from bin on the given database (e.g. one of a
// private cluster the test restarts) and a free port.
func StartOn(t *testing.T, bin, databaseURL string) *Registry {
	t.Helper()
	return StartWith(t, bin, databaseURL)
}

// StartWith is StartOn with extra flags for the registry, such as
// "-placements", "second=postgres://...".
func StartWith(t *testing.T, bin, databaseURL string, args ...string) *Registry {
	t.Helper()
	r := &Registry{t: t, bin: bin, DBURL: databaseURL, logs: &LockedBuffer{}, args: args}
	t.Cleanup(func() {
		r.Kill()
		if t.Failed() {
			t.Logf("tenant-registry output:\n%s", r.logs)
		}
	})
	// A port found free may be taken by another test process before the
	// registry binds it: try another one then.
	for attempt := 1; ; attempt++ {
		r.Addr = FreeAddr(t)
		err := r.launch()
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt == 5 {
			require.FailNow(t, "tenant-registry did not start", "%v; output:\n%s", err, r.logs)
		}
		r.logs.Reset()
	}
	conn := Dial(t, r.Addr)
	r.Operator = registryv1.NewTenantServiceClient(conn)
	r.health = healthpb.NewHealthClient(conn)
	r.waitServing()
	return r
}

// errAddrInUse is launch's error when the port was taken.
var errAddrInUse = errors.New("the registry's port is in use")

// Restart runs the registry process (again) on its address and waits until
// it serves.
func (r *Registry) Restart() {
	r.t.Helper()
	if err := r.launch(); err != nil {
		require.FailNow(r.t, "tenant-registry did not start", "%v; output:\n%s", err, r.logs)
	}
	r.waitServing()
}

// servingLine is what the registry logs once it listens.
const servingLine = `msg="serving gRPC"`

// launch starts the process and returns once it says it listens, or with
// an error if it exits first.
func (r *Registry) launch() error {
	before := strings.Count(r.logs.String(), servingLine)
	cmd := exec.Command(r.bin,
		"-grpc-addr", r.Addr,
		"-http-addr", "", // no REST: registries of parallel tests would share its port
		"-database-url", r.DBURL,
		"-operator-token", OperatorToken,
		"-service-token", ServiceToken,
		"-component-key", ComponentKey,
		"-reconcile-interval", "1h",
		"-shutdown-timeout", "1s",
	)
	cmd.Args = append(cmd.Args, r.args...)
	cmd.Env = CleanEnv()
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited
	deadline := time.Now().Add(WaitFor)
	for {
		select {
		case <-exited:
			if strings.Contains(r.logs.String(), "address already in use") {
				return errAddrInUse
			}
			return errors.New("tenant-registry exited while starting")
		default:
		}
		if strings.Count(r.logs.String(), servingLine) > before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tenant-registry did not listen on %s within %s", r.Addr, WaitFor)
		}
		time.Sleep(pollEvery)
	}
}

// waitServing waits until the registry's health service says SERVING.
func (r *Registry) waitServing() {
	r.t.Helper()
	Eventually(r.t, "the registry to serve", func() bool {
		select {
		case <-r.exited:
			require.FailNow(r.t, "tenant-registry exited while starting", "output:\n%s", r.logs)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := r.health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
}

// Kill ends the registry process with SIGKILL, as a crash would, and waits
// for it to be gone.
func (r *Registry) Kill() {
	if r.cmd == nil {
		return
	}
	select {
	case <-r.exited:
	default:
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

// UseNewDatabase points the registry at a fresh, empty database for its
// next start.
func (r *Registry) UseNewDatabase() {
	r.DBURL = pgtest.NewDatabase(r.t)
	// Cleanups run last-registered first: stop the registry before its new
	// database is dropped.
	r.t.Cleanup(r.Kill)
}

// OperatorCtx returns a context for one operator call.
func (r *Registry) OperatorCtx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	r.t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+OperatorToken)
}

// Create creates an active tenant.
func (r *Registry) Create(slug string) *registryv1.Tenant {
	r.t.Helper()
	resp, err := r.Operator.CreateTenant(r.OperatorCtx(), &registryv1.CreateTenantRequest{
		TenantId: slug,
		Tenant:   &registryv1.Tenant{DisplayName: "Tenant " + slug},
	})
	require.NoError(r.t, err)
	return resp.GetTenant()
}

// ComponentToken returns the token of component id, as an operator gets
// it with GetComponentCredential.
func (r *Registry) ComponentToken(id string) string {
	r.t.Helper()
	resp, err := registryv1.NewComponentServiceClient(Dial(r.t, r.Addr)).GetComponentCredential(r.OperatorCtx(),
		&registryv1.GetComponentCredentialRequest{Name: "components/" + id})
	require.NoError(r.t, err)
	return resp.GetToken()
}

// Suspend suspends a tenant.
func (r *Registry) Suspend(slug string) {
	r.t.Helper()
	_, err := r.Operator.SuspendTenant(r.OperatorCtx(), &registryv1.SuspendTenantRequest{Name: "tenants/" + slug})
	require.NoError(r.t, err)
}

// Resume resumes a tenant.
func (r *Registry) Resume(slug string) {
	r.t.Helper()
	_, err := r.Operator.ResumeTenant(r.OperatorCtx(), &registryv1.ResumeTenantRequest{Name: "tenants/" + slug})
	require.NoError(r.t, err)
}

// Delete deletes a tenant, purging it at once with force.
func (r *Registry) Delete(slug string, force bool) {
	r.t.Helper()
	_, err := r.Operator.DeleteTenant(r.OperatorCtx(), &registryv1.DeleteTenantRequest{Name: "tenants/" + slug, Force: force})
	require.NoError(r.t, err)
}

// AddDomain attaches the custom domain host to a tenant.
func (r *Registry) AddDomain(slug, host string) {
	r.t.Helper()
	_, err := r.Operator.AddDomain(r.OperatorCtx(), &registryv1.AddDomainRequest{Name: "tenants/" + slug, Host: host})
	require.NoError(r.t, err)
}

// RemoveDomain detaches the custom domain host from a tenant.
func (r *Registry) RemoveDomain(slug, host string) {
	r.t.Helper()
	_, err := r.Operator.RemoveDomain(r.OperatorCtx(), &registryv1.RemoveDomainRequest{Name: "tenants/" + slug, Host: host})
	require.NoError(r.t, err)
}

// Logs returns what the registry printed.
func (r *Registry) Logs() string { return r.logs.String() }

// Dial connects to addr. Reconnection is quick so that a restarted process
// is found again at once; the defaults wait up to two minutes.
func Dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}),
	}, opts...)
	conn, err := grpc.NewClient(addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// FreeAddr returns a loopback address with a port that is free right now.
func FreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// CleanEnv is this process's environment without what would steer a
// service: its database and the TENANTRY_* settings.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || strings.HasPrefix(name, "TENANTRY_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Eventually polls cond until it holds, failing the test after WaitFor.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitFor)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "condition not met", "timed out after %s waiting for %s", WaitFor, what)
		}
		time.Sleep(pollEvery)
	}
}

// LockedBuffer collects a process's output, written and read concurrently.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Reset forgets what was written so far.
func (b *LockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// String returns everything written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

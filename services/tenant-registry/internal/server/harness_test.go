package server_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/tenant-registry/internal/config"
	"tenantry.dev/tenant-registry/internal/server"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	operatorToken = "operator-token-for-tests-0123456789"
	serviceToken  = "service-token-for-tests-0123456789"
	componentKey  = "component-key-for-tests-0123456789abcdef"
)

// registry is a tenant-registry running in the test process on a real
// socket, with a client connected to it.
type registry struct {
	t      *testing.T
	app    *server.App
	client registryv1.TenantServiceClient
	conn   *grpc.ClientConn
	db     *pgxpool.Pool
	stop   func()
}

type registryOption func(*config.Config)

func withPlacement(name, url string) registryOption {
	return func(c *config.Config) { c.Placements[name] = url }
}

func withPurgeGrace(d time.Duration) registryOption {
	return func(c *config.Config) { c.PurgeGrace = d }
}

// startRegistry starts a registry on databaseURL (a fresh database when
// empty) and stops it at the end of the test.
func startRegistry(t *testing.T, databaseURL string, opts ...registryOption) *registry {
	t.Helper()
	if databaseURL == "" {
		databaseURL = pgtest.NewDatabase(t)
	}
	cfg, err := config.Load([]string{
		"-grpc-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0",
		"-database-url", databaseURL,
		"-operator-token", operatorToken,
		"-service-token", serviceToken,
		"-component-key", componentKey,
		"-reconcile-interval", "1h",
		"-shutdown-timeout", "2s",
		// Background work (spare schemas, resuming operations) starts on
		// the leader 2.5 intervals after it is elected.
		"-leader-check-interval", "100ms",
	}, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	for _, o := range opts {
		o(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := server.New(ctx, cfg, testLogger(t))
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()

	conn, err := grpc.NewClient(app.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	db, err := pgxpool.New(context.Background(), databaseURL)
	require.NoError(t, err)
	r := &registry{t: t, app: app, client: registryv1.NewTenantServiceClient(conn), conn: conn, db: db}
	var stopped bool
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		require.NoError(t, <-done)
		conn.Close()
		db.Close()
	}
	t.Cleanup(r.stop)
	return r
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("TENANTRY_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// operator returns a context carrying the operator credential.
func operator() context.Context { return as(operatorToken) }

func (r *registry) create(slug string) *registryv1.Tenant {
	r.t.Helper()
	resp, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{
		TenantId: slug,
		Tenant:   &registryv1.Tenant{DisplayName: "Tenant " + slug},
	})
	require.NoError(r.t, err)
	return resp.GetTenant()
}

// schemaExists asks PostgreSQL itself whether a schema exists.
func schemaExists(t *testing.T, db *pgxpool.Pool, schema string) bool {
	t.Helper()
	var exists bool
	err := db.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists)
	require.NoError(t, err)
	return exists
}

func requireCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a gRPC status: %v", err)
	require.Equal(t, code, st.Code(), "message: %s", st.Message())
	return st
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

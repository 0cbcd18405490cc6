package restgateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/rpcserver"
)

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startGateway serves a gRPC server with only health, and a gateway in
// front of it with one echo route, on real sockets.
func startGateway(t *testing.T, logs io.Writer) (base string) {
	t.Helper()
	static, err := authn.NewStaticTokens(authn.Credential{Role: "operator", Token: "operator-token-0123456789"})
	require.NoError(t, err)
	guard, err := authn.NewGuard(authn.Policy{}, static)
	require.NoError(t, err)
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	srv, err := rpcserver.New(rpcserver.Config{Addr: "127.0.0.1:0", Auth: guard, Logger: logger, ShutdownTimeout: time.Second})
	require.NoError(t, err)
	echo := func(_ context.Context, mux *runtime.ServeMux, _ *grpc.ClientConn) error {
		return mux.HandlePath(http.MethodPost, "/v1/echo", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
			body, _ := io.ReadAll(r.Body)
			_, _ = w.Write(body)
		})
	}
	gw, err := restgateway.New(context.Background(), restgateway.Config{
		Name: "test", Addr: "127.0.0.1:0", GRPC: srv.GRPC(), Logger: logger,
		Register:     []restgateway.RegisterFunc{echo},
		OpenAPI:      []byte(`{"swagger":"2.0"}`),
		MaxBodyBytes: 1000,
	})
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	grpcDone, httpDone := make(chan error, 1), make(chan error, 1)
	go func() { grpcDone <- srv.Serve(ctx) }()
	go func() { httpDone <- gw.Serve(ctx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-httpDone)
		require.NoError(t, <-grpcDone)
	})
	return "http://" + gw.Addr().String()
}

func TestGateway(t *testing.T) {
	t.Parallel()
	logs := &logBuffer{}
	base := startGateway(t, logs)

	t.Run("healthz answers while the server runs", func(t *testing.T) {
		resp, err := http.Get(base + "/healthz")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
	t.Run("readyz follows the gRPC health service", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Get(base + "/readyz")
			require.NoError(t, err)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			require.True(t, time.Now().Before(deadline), "readyz never became 200")
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("openapi.json is served", func(t *testing.T) {
		resp, err := http.Get(base + "/openapi.json")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.JSONEq(t, `{"swagger":"2.0"}`, string(body))
	})
	t.Run("a body within the limit reaches the route", func(t *testing.T) {
		resp, err := http.Post(base+"/v1/echo", "application/json", strings.NewReader(`{"a":1}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, `{"a":1}`, string(body))
	})
	for _, chunked := range []bool{false, true} {
		name := "a body over the limit is 413 with a JSON error"
		if chunked {
			name += ", also when chunked"
		}
		t.Run(name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(strings.Repeat("x", 2000))
			if chunked {
				body = io.MultiReader(body) // unknown length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, base+"/v1/echo", body)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
			var st struct {
				Code    int
				Message string
				Details []map[string]any
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
			require.Equal(t, 8, st.Code) // RESOURCE_EXHAUSTED
			require.Contains(t, st.Message, "1000 bytes")
			require.Equal(t, "REQUEST_BODY_TOO_LARGE", st.Details[0]["reason"])
		})
	}
	t.Run("an unknown route is 404 with a JSON error", func(t *testing.T) {
		resp, err := http.Get(base + "/v1/nothing")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var st struct{ Code int }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
		require.Equal(t, 5, st.Code)
	})
	t.Run("a sane request id comes back and is logged", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, base+"/healthz", nil)
		require.NoError(t, err)
		req.Header.Set("X-Request-Id", "rest-test-id-1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "rest-test-id-1", resp.Header.Get("X-Request-Id"))
	})
	t.Run("an insane request id is replaced", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, base+"/v1/echo", strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header.Set("X-Request-Id", "has spaces in it")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		require.NotEmpty(t, id)
		require.NotEqual(t, "has spaces in it", id)
		require.Contains(t, logs.String(), `"request_id":"`+id+`"`)
		require.Contains(t, logs.String(), `"path":"/v1/echo"`)
	})
}

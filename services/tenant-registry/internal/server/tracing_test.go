package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"tenantry.dev/platform/logging"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tracing"
	"tenantry.dev/tenant-registry/internal/config"
	"tenantry.dev/tenant-registry/internal/server"
)

// The instrumentation scopes of the spans of each layer.
const (
	scopeHTTP = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	scopeGRPC = "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	scopePGX  = "github.com/exaring/otelpgx"
)

func TestTracesFollowARESTRequestThroughGRPCIntoSQL(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	var logs lockedLog
	base := startTracedRegistry(t, tracing.New(provider), slog.New(logging.WithTraceContext(slog.NewJSONHandler(&logs, nil))))

	// post creates a tenant over REST, sending traceparent when not empty.
	post := func(slug, traceparent string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/v1/tenants?tenantId="+slug, strings.NewReader(`{"displayName":"Traced"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		req.Header.Set("Content-Type", "application/json")
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	// awaitHTTPSpan waits for the HTTP server span of a POST /v1/tenants that
	// match accepts (it ends once the response is written, which the
	// client may see first) and returns it with the rest of its trace.
	awaitHTTPSpan := func(what string, match func(tracetest.SpanStub) bool) (tracetest.SpanStub, []tracetest.SpanStub) {
		t.Helper()
		var root tracetest.SpanStub
		eventually(t, 10*time.Second, "the HTTP server span of "+what, func() bool {
			for _, s := range spans.GetSpans() {
				if s.InstrumentationScope.Name == scopeHTTP && s.SpanKind == trace.SpanKindServer &&
					hasAttr(s, "http.request.method", "POST") && hasAttr(s, "url.path", "/v1/tenants") && match(s) {
					root = s
					return true
				}
			}
			return false
		})
		var inTrace []tracetest.SpanStub
		for _, s := range spans.GetSpans() {
			if s.SpanContext.TraceID() == root.SpanContext.TraceID() {
				inTrace = append(inTrace, s)
			}
		}
		return root, inTrace
	}

	t.Run("a client's traceparent is honoured and the chain runs HTTP, gRPC client, gRPC server, SQL", func(t *testing.T) {
		const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		post("traced", "00-"+clientTrace+"-"+clientSpan+"-01")
		httpSpan, inTrace := awaitHTTPSpan("the request with the client's traceparent", func(s tracetest.SpanStub) bool {
			return s.SpanContext.TraceID().String() == clientTrace
		})
		require.Equal(t, clientSpan, httpSpan.Parent.SpanID().String(), "the HTTP span is the child of the client's")
		require.True(t, httpSpan.Parent.IsRemote())

		client := onlyChild(t, inTrace, httpSpan, scopeGRPC, trace.SpanKindClient)
		require.Equal(t, "tenantry.registry.v1.TenantService/CreateTenant", client.Name)
		server := onlyChild(t, inTrace, client, scopeGRPC, trace.SpanKindServer)
		require.Equal(t, "tenantry.registry.v1.TenantService/CreateTenant", server.Name)

		var queries []tracetest.SpanStub
		for _, s := range inTrace {
			if s.InstrumentationScope.Name == scopePGX && s.Parent.SpanID() == server.SpanContext.SpanID() && hasAttrKey(s, "db.query.text") {
				queries = append(queries, s)
			}
		}
		require.NotEmpty(t, queries, "no query span is the child of the gRPC server span; trace: %s", describe(inTrace))
		var createsSchema bool
		for _, q := range queries {
			createsSchema = createsSchema || strings.Contains(attr(q, "db.query.text"), "CREATE SCHEMA")
		}
		require.True(t, createsSchema, "CreateTenant's CREATE SCHEMA is among its query spans: %s", describe(queries))
		for _, s := range inTrace {
			if s.InstrumentationScope.Name == scopePGX {
				require.True(t, descendsFrom(inTrace, s, server), "pgx span %q hangs outside the gRPC call: %s", s.Name, describe(inTrace))
			}
		}

		// Both log lines of the request carry its trace, each with the span
		// it was written in.
		access := logs.find(t, func(rec map[string]any) bool {
			return rec["msg"] == "http" && rec["path"] == "/v1/tenants" && rec["trace_id"] == clientTrace
		})
		require.Equal(t, httpSpan.SpanContext.SpanID().String(), access["span_id"])
		rpc := logs.find(t, func(rec map[string]any) bool {
			return rec["msg"] == "rpc" && rec["method"] == "/tenantry.registry.v1.TenantService/CreateTenant" && rec["trace_id"] == clientTrace
		})
		require.Equal(t, server.SpanContext.SpanID().String(), rpc["span_id"])
	})

	t.Run("a request without traceparent starts a trace of its own at the gateway", func(t *testing.T) {
		post("untraced", "")
		httpSpan, inTrace := awaitHTTPSpan("the request without traceparent", func(s tracetest.SpanStub) bool {
			return s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736"
		})
		require.False(t, httpSpan.Parent.IsValid(), "the HTTP span is the root")
		client := onlyChild(t, inTrace, httpSpan, scopeGRPC, trace.SpanKindClient)
		onlyChild(t, inTrace, client, scopeGRPC, trace.SpanKindServer)
	})

	t.Run("health probes make no spans", func(t *testing.T) {
		before := len(spans.GetSpans())
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(base + path)
			require.NoError(t, err)
			resp.Body.Close()
		}
		// The probes have answered; their spans, had there been any, would
		// have been exported before the response (readyz's gRPC spans end
		// before its handler writes).
		for _, s := range spans.GetSpans()[before:] {
			require.NotContains(t, s.Name, "Health", "a span for a health probe")
			require.False(t, hasAttr(s, "url.path", "/healthz") || hasAttr(s, "url.path", "/readyz"), "a span for a probe: %s", s.Name)
		}
	})
}

// startTracedRegistry starts a registry with tr and logger, and returns
// its REST base URL.
func startTracedRegistry(t *testing.T, tr *tracing.Tracing, logger *slog.Logger) string {
	t.Helper()
	cfg, err := config.Load([]string{
		"-grpc-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0",
		"-database-url", pgtest.NewDatabase(t),
		"-operator-token", operatorToken,
		"-reconcile-interval", "1h",
		"-shutdown-timeout", "2s",
		// Every call's record: the test looks for particular ones.
		"-access-log-sample", "1",
	}, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.Tracing = tr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := server.New(ctx, cfg, logger)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})
	return "http://" + app.HTTPAddr().String()
}

// onlyChild returns the one span of scope and kind whose parent is parent.
func onlyChild(t *testing.T, spans []tracetest.SpanStub, parent tracetest.SpanStub, scope string, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() && s.InstrumentationScope.Name == scope && s.SpanKind == kind {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "children of %q of scope %s and kind %s; trace: %s", parent.Name, scope, kind, describe(spans))
	return found[0]
}

// descendsFrom reports whether ancestor is s's parent, or its parent's.
func descendsFrom(spans []tracetest.SpanStub, s, ancestor tracetest.SpanStub) bool {
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, x := range spans {
		byID[x.SpanContext.SpanID()] = x
	}
	for hops := 0; hops < len(spans); hops++ {
		if s.Parent.SpanID() == ancestor.SpanContext.SpanID() {
			return true
		}
		parent, ok := byID[s.Parent.SpanID()]
		if !ok {
			return false
		}
		s = parent
	}
	return false
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

func hasAttr(s tracetest.SpanStub, key, value string) bool { return attr(s, key) == value }

func hasAttrKey(s tracetest.SpanStub, key string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return true
		}
	}
	return false
}

// describe lists spans as name (scope, kind) id ← parent, for failures.
func describe(spans []tracetest.SpanStub) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString("\n  " + s.Name + " (" + s.InstrumentationScope.Name + ", " + s.SpanKind.String() + ") " +
			s.SpanContext.SpanID().String() + " ← " + s.Parent.SpanID().String())
	}
	return b.String()
}

// lockedLog collects JSON log records written from many goroutines.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// find returns the first record match accepts.
func (l *lockedLog) find(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	l.mu.Lock()
	text := l.buf.String()
	l.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "a log line is not JSON: %s", sc.Text())
		if match(rec) {
			return rec
		}
	}
	require.Fail(t, "no such log record", "log:\n%s", text)
	return nil
}

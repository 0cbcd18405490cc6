package notes_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	notesv1 "tenantry.dev/gen/tenantry/notes/v1"
	"tenantry.dev/notes"
	"tenantry.dev/platform/tracing"
)

// A REST read of notes is one trace from the gateway into the tenant's
// pool (kit/tenantpool), under the client's trace.
func TestTracesFollowARESTReadIntoTheTenantsPool(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	s := startSystemWith(t, func(c *notes.Config) { c.Tracing = tracing.New(provider) }, nil, "acme")
	token, _ := s.signUp("acme", "ann@example.com")
	_, err := s.client.CreateNote(call("acme", token), &notesv1.CreateNoteRequest{Note: &notesv1.Note{Body: "traced"}})
	require.NoError(t, err)

	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	req, err := http.NewRequest(http.MethodGet, "http://"+s.http+"/v1/notes", nil)
	require.NoError(t, err)
	req.Host = "acme.localhost"
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("traceparent", "00-"+clientTrace+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	// The HTTP span ends after the response is written: wait for it.
	var inTrace []tracetest.SpanStub
	var root tracetest.SpanStub
	deadline := time.Now().Add(10 * time.Second)
	for root.Name == "" {
		require.False(t, time.Now().After(deadline), "no HTTP server span in the client's trace")
		inTrace = inTrace[:0]
		for _, sp := range spans.GetSpans() {
			if sp.SpanContext.TraceID().String() != clientTrace {
				continue
			}
			inTrace = append(inTrace, sp)
			if sp.InstrumentationScope.Name == "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp" {
				root = sp
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, "b7ad6b7169203331", root.Parent.SpanID().String())
	child := func(parent tracetest.SpanStub, scope string, kind trace.SpanKind) tracetest.SpanStub {
		t.Helper()
		for _, sp := range inTrace {
			if sp.Parent.SpanID() == parent.SpanContext.SpanID() && sp.InstrumentationScope.Name == scope && sp.SpanKind == kind {
				return sp
			}
		}
		require.Failf(t, "missing span", "no %s span of %s under %q among %d spans", kind, scope, parent.Name, len(inTrace))
		return tracetest.SpanStub{}
	}
	const grpcScope = "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	client := child(root, grpcScope, trace.SpanKindClient)
	require.Equal(t, "tenantry.notes.v1.NotesService/ListNotes", client.Name)
	server := child(client, grpcScope, trace.SpanKindServer)
	require.Equal(t, "tenantry.notes.v1.NotesService/ListNotes", server.Name)
	query := child(server, "github.com/exaring/otelpgx", trace.SpanKindClient)
	require.NotEmpty(t, query.Name)
}

package tracing

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestReadSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		env      map[string]string
		enabled  bool
		protocol string
		err      string
	}{
		{name: "nothing set leaves traces off", env: map[string]string{}, protocol: ProtocolHTTP},
		{name: "an endpoint turns them on over http/protobuf",
			env: map[string]string{EnvEndpoint: "http://collector:4318"}, enabled: true, protocol: ProtocolHTTP},
		{name: "a traces endpoint turns them on",
			env: map[string]string{EnvTracesEndpoint: "http://collector:4318/v1/traces"}, enabled: true, protocol: ProtocolHTTP},
		{name: "OTEL_TRACES_EXPORTER=otlp turns them on without an endpoint",
			env: map[string]string{EnvExporter: "otlp"}, enabled: true, protocol: ProtocolHTTP},
		{name: "OTEL_TRACES_EXPORTER=none keeps them off despite an endpoint",
			env: map[string]string{EnvExporter: "none", EnvEndpoint: "http://collector:4318"}, protocol: ProtocolHTTP},
		{name: "OTEL_SDK_DISABLED keeps them off",
			env: map[string]string{EnvSDKDisabled: "true", EnvEndpoint: "http://collector:4318"}, protocol: ProtocolHTTP},
		{name: "the grpc protocol is chosen",
			env: map[string]string{EnvEndpoint: "http://collector:4317", EnvProtocol: "grpc"}, enabled: true, protocol: ProtocolGRPC},
		{name: "the traces protocol wins over the general one",
			env: map[string]string{EnvEndpoint: "x", EnvProtocol: "grpc", EnvTracesProtocol: "http/protobuf"}, enabled: true, protocol: ProtocolHTTP},
		{name: "an unknown exporter is refused",
			env: map[string]string{EnvExporter: "zipkin"}, protocol: ProtocolHTTP, err: `OTEL_TRACES_EXPORTER="zipkin": use otlp or none`},
		{name: "http/json is refused",
			env: map[string]string{EnvEndpoint: "x", EnvProtocol: "http/json"}, enabled: true, err: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`},
		{name: "an unknown sampler is refused",
			env: map[string]string{EnvEndpoint: "x", EnvSampler: "sometimes"}, enabled: true, protocol: ProtocolHTTP, err: `OTEL_TRACES_SAMPLER="sometimes"`},
		{name: "a known sampler passes",
			env: map[string]string{EnvEndpoint: "x", EnvSampler: "parentbased_traceidratio"}, enabled: true, protocol: ProtocolHTTP},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := readSettings(func(name string) (string, bool) { v, ok := c.env[name]; return v, ok })
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.enabled, s.enabled)
			require.Equal(t, c.protocol, s.protocol)
		})
	}
}

func TestNilTracingInstrumentsNothing(t *testing.T) {
	t.Parallel()
	var off *Tracing
	require.Nil(t, off.GRPCServerHandler())
	require.Nil(t, off.GRPCClientHandler())
	require.Empty(t, off.DialOptions())
	require.Nil(t, off.WrapQueryTracer(nil))
	h := http.NotFoundHandler()
	require.NotNil(t, off.HTTPHandler(h))
	require.NoError(t, off.Shutdown(context.Background()))
}

// Not parallel: Setup reads the process environment and sets
// OpenTelemetry's globals.
func TestSetup(t *testing.T) {
	t.Run("without OTEL_ variables tracing is off", func(t *testing.T) {
		t.Setenv(EnvEndpoint, "")
		t.Setenv(EnvTracesEndpoint, "")
		t.Setenv(EnvExporter, "")
		tr, err := Setup(context.Background(), "notes", slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.Nil(t, tr)
	})

	t.Run("with an endpoint, Shutdown sends the spans to the collector over OTLP", func(t *testing.T) {
		var mu sync.Mutex
		var got []*collectortrace.ExportTraceServiceRequest
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/traces" {
				http.NotFound(w, r)
				return
			}
			body, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			req := &collectortrace.ExportTraceServiceRequest{}
			require.NoError(t, proto.Unmarshal(body, req))
			mu.Lock()
			got = append(got, req)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/x-protobuf")
			out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
			_, _ = w.Write(out)
		}))
		defer collector.Close()
		t.Setenv(EnvEndpoint, collector.URL)
		t.Setenv(EnvProtocol, "")
		t.Setenv(EnvTracesProtocol, "")
		t.Setenv("OTEL_SERVICE_NAME", "")
		t.Setenv(EnvSampler, "always_on") // the default samples one root in ten

		tr, err := Setup(context.Background(), "notes", slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NotNil(t, tr)
		_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "a span")
		span.End()
		require.NoError(t, tr.Shutdown(context.Background()))

		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, got, "Shutdown sent nothing")
		rs := got[0].GetResourceSpans()[0]
		var service string
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		require.Equal(t, "notes", service)
		require.Equal(t, "a span", rs.GetScopeSpans()[0].GetSpans()[0].GetName())
	})
}

// Without OTEL_TRACES_SAMPLER, Setup samples DefaultSampleRatio of the
// traces that start in the service and every trace its caller sampled.
func TestDefaultSampler(t *testing.T) {
	s, err := readSettings(func(name string) (string, bool) {
		return map[string]string{EnvEndpoint: "x"}[name], name == EnvEndpoint
	})
	require.NoError(t, err)
	require.False(t, s.samplerSet)
	s, err = readSettings(func(name string) (string, bool) {
		v, ok := map[string]string{EnvEndpoint: "x", EnvSampler: "always_on"}[name]
		return v, ok
	})
	require.NoError(t, err)
	require.True(t, s.samplerSet)
	require.Equal(t, sdktrace.AlwaysSample().Description(), s.sampler.Description(), "a sampler set in the environment applies")

	sampler := DefaultSampler()
	rng := rand.New(rand.NewPCG(1, 2))
	const roots = 20000
	sampled := 0
	for range roots {
		var id trace.TraceID
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		r := sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id, Name: "root"})
		if r.Decision == sdktrace.RecordAndSample {
			sampled++
		}
	}
	require.InDelta(t, DefaultSampleRatio, float64(sampled)/roots, 0.01, "share of root traces sampled")

	for _, parentSampled := range []bool{true, false} {
		flags := trace.TraceFlags(0)
		if parentSampled {
			flags = trace.FlagsSampled
		}
		parent := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: flags, Remote: true}))
		r := sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: parent, TraceID: trace.TraceID{1}, Name: "child"})
		require.Equal(t, parentSampled, r.Decision == sdktrace.RecordAndSample, "a caller's decision is followed")
	}
}

// Setup builds the sampler from OTEL_TRACES_SAMPLER(_ARG) itself; it must
// be the one the SDK would build from the same variables, and refuse what
// the SDK would only log.
func TestSamplerOf(t *testing.T) {
	for _, c := range []struct {
		name, arg string
		want      sdktrace.Sampler
		bad       bool
	}{
		{name: "always_on", want: sdktrace.AlwaysSample()},
		{name: "ALWAYS_OFF", want: sdktrace.NeverSample()},
		{name: "traceidratio", arg: "0.25", want: sdktrace.TraceIDRatioBased(0.25)},
		{name: "traceidratio", want: sdktrace.TraceIDRatioBased(1)},
		{name: "parentbased_always_on", want: sdktrace.ParentBased(sdktrace.AlwaysSample())},
		{name: "parentbased_always_off", want: sdktrace.ParentBased(sdktrace.NeverSample())},
		{name: "parentbased_traceidratio", arg: "0.01", want: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))},
		{name: "parentbased_traceidratio", arg: "1.5", bad: true},
		{name: "traceidratio", arg: "half", bad: true},
		{name: "jaeger_remote", bad: true},
	} {
		t.Run(c.name+"/"+c.arg, func(t *testing.T) {
			got, err := samplerOf(c.name, c.arg)
			if c.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want.Description(), got.Description())
		})
	}
}

package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The variables Setup reads itself, to decide whether tracing is on and
// which exporter to build; the SDK and the exporters read the others.
const (
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvExporter       = "OTEL_TRACES_EXPORTER"
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvSampler        = "OTEL_TRACES_SAMPLER"
	EnvSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
)

// Protocols of the OTLP exporter.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// samplers are the values of OTEL_TRACES_SAMPLER the SDK understands. The
// SDK only logs an unknown one and samples everything; Setup refuses it.
var samplers = []string{
	"always_on", "always_off", "traceidratio",
	"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
}

// samplerOf builds the sampler OTEL_TRACES_SAMPLER=name and
// OTEL_TRACES_SAMPLER_ARG=arg name, as the SDK would from the same
// variables (the specification's six samplers; a ratio defaults to 1),
// except that a bad ratio is refused rather than logged and replaced.
// Setup builds it itself, instead of leaving it to the SDK, because the
// gRPC server's interceptors ask it before otelgrpc does (serverTracer).
func samplerOf(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	name = strings.ToLower(name)
	if strings.HasSuffix(name, "traceidratio") && arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return DefaultSampler(), fmt.Errorf("tracing: %s=%q: give the share of traces to sample, from 0 to 1", EnvSamplerArg, arg)
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return DefaultSampler(), fmt.Errorf("tracing: %s=%q: use one of %s", EnvSampler, name, strings.Join(samplers, ", "))
}

// Tracing is a service's tracer provider and propagator. A nil *Tracing
// is tracing off: its methods return no instrumentation.
type Tracing struct {
	provider   trace.TracerProvider
	sdk        *sdktrace.TracerProvider // built by Setup, flushed by Shutdown
	propagator propagation.TextMapPropagator
	// sampler is the provider's sampler when Setup built the provider
	// (see serverTracer); nil when the provider came from New.
	sampler sdktrace.Sampler
}

// Propagator returns the propagator every service uses: W3C trace context
// (traceparent, tracestate) and W3C baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// New returns tracing that sends spans to provider, with Propagator. Its
// Shutdown does not shut provider down: that stays its owner's business.
// Tests pass an SDK provider with an in-memory exporter (tracetest).
func New(provider trace.TracerProvider) *Tracing {
	return &Tracing{provider: provider, propagator: Propagator()}
}

// DefaultSampleRatio is the share of new traces sampled when
// OTEL_TRACES_SAMPLER is unset (the SDK's own default samples every one):
// parent-based, so a request whose caller sampled it is always traced, and
// one in ten of the traces that start here. Measured by registry-bench,
// sampling every ResolveTenant cost 18% of its throughput ÷ health on two
// cores; at one in ten the cost is within the measure's noise. Set
// OTEL_TRACES_SAMPLER=parentbased_always_on to trace every request.
const DefaultSampleRatio = 0.1

// settings is what Setup decided from the environment.
type settings struct {
	enabled  bool
	protocol string
	// samplerSet says OTEL_TRACES_SAMPLER is set; sampler is what it and
	// OTEL_TRACES_SAMPLER_ARG say, or DefaultSampler when unset.
	samplerSet bool
	sampler    sdktrace.Sampler
}

// readSettings decides from the environment whether tracing is on and
// over which protocol, reporting every bad value at once.
func readSettings(lookup func(string) (string, bool)) (settings, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var s settings
	var errs []error
	switch exporter := strings.ToLower(get(EnvExporter)); exporter {
	case "":
		s.enabled = get(EnvEndpoint) != "" || get(EnvTracesEndpoint) != ""
	case "otlp":
		s.enabled = true
	case "none":
	default:
		errs = append(errs, fmt.Errorf("tracing: %s=%q: use otlp or none (unset, traces are exported over OTLP when %s or %s is set)",
			EnvExporter, exporter, EnvEndpoint, EnvTracesEndpoint))
	}
	s.protocol = get(EnvTracesProtocol)
	protocolVar := EnvTracesProtocol
	if s.protocol == "" {
		s.protocol, protocolVar = get(EnvProtocol), EnvProtocol
	}
	switch s.protocol {
	case "":
		s.protocol = ProtocolHTTP
	case ProtocolHTTP, ProtocolGRPC:
	default:
		errs = append(errs, fmt.Errorf("tracing: %s=%q: use %s (port 4318) or %s (port 4317)", protocolVar, s.protocol, ProtocolHTTP, ProtocolGRPC))
	}
	s.samplerSet = get(EnvSampler) != ""
	s.sampler = DefaultSampler()
	if s.samplerSet {
		sampler, err := samplerOf(get(EnvSampler), get(EnvSamplerArg))
		if err != nil {
			errs = append(errs, err)
		}
		s.sampler = sampler
	}
	if strings.EqualFold(get(EnvSDKDisabled), "true") {
		s.enabled = false
	}
	return s, errors.Join(errs...)
}

// Setup builds a service's tracing from the OTEL_* environment variables
// (see the package documentation). When they do not turn tracing on, it
// returns nil and no error: tracing is off. When on, it makes the provider
// and Propagator OpenTelemetry's global ones too, and sends the SDK's own
// errors (an unreachable collector, say) to logger. service is the
// service.name unless OTEL_SERVICE_NAME says otherwise. Call Shutdown at
// exit to send the spans still buffered.
func Setup(ctx context.Context, service string, logger *slog.Logger) (*Tracing, error) {
	s, err := readSettings(os.LookupEnv)
	if err != nil || !s.enabled {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	// The exporters read the endpoint, headers, timeout, compression and
	// TLS settings from the environment themselves, and connect lazily.
	var exporter sdktrace.SpanExporter
	if s.protocol == ProtocolGRPC {
		exporter, err = otlptracegrpc.New(ctx)
	} else {
		exporter, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter (%s): %w", s.protocol, err)
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the service's own name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("tracing: resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES): %w", err), exporter.Shutdown(ctx))
	}
	// The batcher reads OTEL_BSP_*. The sampler is built here from
	// OTEL_TRACES_SAMPLER(_ARG) (samplerOf), DefaultSampler when unset,
	// not the SDK's always-on default.
	t := withSampler(s.sampler, sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "opentelemetry", slog.String("error", err.Error()))
	}))
	otel.SetTracerProvider(t.sdk)
	otel.SetTextMapPropagator(Propagator())
	logger.LogAttrs(ctx, slog.LevelInfo, "tracing on: spans are exported over OTLP", slog.String("protocol", s.protocol))
	return t, nil
}

// withSampler returns tracing over a new SDK provider built with opts and
// sampler, whose gRPC server handler takes the sampling decision before
// otelgrpc does (decidingServerHandler).
func withSampler(sampler sdktrace.Sampler, opts ...sdktrace.TracerProviderOption) *Tracing {
	provider := sdktrace.NewTracerProvider(append(opts, sdktrace.WithSampler(sampler), sdktrace.WithIDGenerator(presetIDs{}))...)
	return &Tracing{provider: provider, sdk: provider, propagator: Propagator(), sampler: sampler}
}

// DefaultSampler is the sampler used when OTEL_TRACES_SAMPLER is unset.
func DefaultSampler() sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(DefaultSampleRatio))
}

// TracerProvider returns the provider spans go to; nil when t is off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.provider
}

// Shutdown sends the spans still buffered and stops the exporter of a
// provider Setup built; it does nothing when t is off or came from New.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}

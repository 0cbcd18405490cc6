// Package tracing is a service's OpenTelemetry tracing: where spans go,
// which requests are sampled, and the instrumentation of the three places a
// request passes through, the REST gateway (otelhttp), gRPC (otelgrpc, on
// the server and on the gateway's in-process client) and PostgreSQL
// (otelpgx, one span per query).
//
// Configuration is OpenTelemetry's own environment variables, read by the
// SDK (the sampler's two by Setup, see samplerOf): OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, the default, or grpc),
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*. Tracing is
// off unless an endpoint or OTEL_TRACES_EXPORTER=otlp is set: Setup then
// returns a nil *Tracing, nothing is instrumented, and a request costs
// nothing more than without this package.
//
// When on, trace context travels as W3C traceparent/tracestate (and
// baggage): an incoming traceparent header is honoured, so a request joins
// its caller's trace, and the gateway's call into its own gRPC server and
// the server's queries are children of the HTTP request's span. The log
// lines of a request carry its trace and span ids (see
// logging.WithTraceContext).
//
// What spans hold: SQL text without its arguments (otelpgx records no
// parameters unless asked), gRPC method names and codes, the HTTP method,
// path, status, client address and User-Agent. Paths carry tenant hosts
// and resource names but never secrets; query strings and other headers
// are not recorded. Health probes and /metrics make no spans.
package tracing

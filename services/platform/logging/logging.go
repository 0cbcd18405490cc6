// Package logging builds the structured logger every Tenantry binary uses,
// so that all services log in the same shape: log/slog, text for people or
// JSON for machines, with the service's name on every record, and the
// trace and span ids of the record's context when it carries a span.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// New returns a logger writing to w at level in format ("text" or "json"),
// tagging every record with service (and with trace_id and span_id when
// logged with a context that carries a span: see WithTraceContext), and
// makes it slog's default.
func New(w io.Writer, service string, level slog.Level, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler
	switch format {
	case "text":
		handler = slog.NewTextHandler(w, opts)
	case "json":
		handler = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: use text or json", format)
	}
	logger := slog.New(WithTraceContext(handler)).With("service", service)
	slog.SetDefault(logger)
	return logger, nil
}

// WithTraceContext wraps h so that a record logged with a context (the
// *Context methods, LogAttrs) that carries a valid OpenTelemetry span
// context gets its ids as trace_id and span_id, to find a request's
// trace from its log lines and back. Under a logger's WithGroup the ids
// land in the group, like any attribute added at that point.
func WithTraceContext(h slog.Handler) slog.Handler {
	if _, ok := h.(traceHandler); ok {
		return h
	}
	return traceHandler{h}
}

type traceHandler struct{ slog.Handler }

// Handle adds the ids, when there are any, to a copy of r: the caller's
// record is left as it was.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
		)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the new handler.
func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the new handler.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

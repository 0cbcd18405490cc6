package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	logger, err := New(&buf, "identity", slog.LevelInfo, "json")
	require.NoError(t, err)
	logger.Debug("hidden")
	logger.Info("shown", "tenant", "acme")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), "one JSON record: %s", buf.String())
	require.Equal(t, "identity", rec["service"])
	require.Equal(t, "acme", rec["tenant"])
	require.Equal(t, "shown", rec["msg"])

	_, err = New(&buf, "identity", slog.LevelInfo, "xml")
	require.ErrorContains(t, err, "use text or json")
}

func TestWithTraceContext(t *testing.T) {
	t.Parallel()
	traceID, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	spanID, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	spanCtx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))

	record := func(t *testing.T, log func(*slog.Logger)) map[string]any {
		var buf bytes.Buffer
		logger, err := New(&buf, "notes", slog.LevelInfo, "json")
		require.NoError(t, err)
		log(logger.With("tenant", "acme"))
		var rec map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), "one JSON record: %s", buf.String())
		require.Equal(t, "acme", rec["tenant"], "attributes given before still there")
		return rec
	}

	t.Run("a record logged with a span's context carries its trace and span ids", func(t *testing.T) {
		rec := record(t, func(l *slog.Logger) { l.InfoContext(spanCtx, "rpc", "code", "OK") })
		require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", rec["trace_id"])
		require.Equal(t, "00f067aa0ba902b7", rec["span_id"])
		require.Equal(t, "OK", rec["code"])
	})
	t.Run("LogAttrs with a span's context carries them too", func(t *testing.T) {
		rec := record(t, func(l *slog.Logger) { l.LogAttrs(spanCtx, slog.LevelInfo, "http") })
		require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", rec["trace_id"])
	})
	t.Run("a record without a span has no ids", func(t *testing.T) {
		rec := record(t, func(l *slog.Logger) { l.InfoContext(context.Background(), "rpc") })
		require.NotContains(t, rec, "trace_id")
		require.NotContains(t, rec, "span_id")
	})
	t.Run("an invalid span context adds nothing", func(t *testing.T) {
		ctx := trace.ContextWithSpanContext(context.Background(), trace.SpanContext{})
		rec := record(t, func(l *slog.Logger) { l.InfoContext(ctx, "rpc") })
		require.NotContains(t, rec, "trace_id")
	})
	t.Run("wrapping twice adds the ids once", func(t *testing.T) {
		var buf bytes.Buffer
		h := WithTraceContext(WithTraceContext(slog.NewTextHandler(&buf, nil)))
		slog.New(h).InfoContext(spanCtx, "rpc")
		require.Equal(t, 1, strings.Count(buf.String(), "trace_id="), buf.String())
	})
}

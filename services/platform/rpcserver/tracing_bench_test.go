package rpcserver_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"tenantry.dev/platform/rpcserver"
	"tenantry.dev/platform/tracing"
)

// BenchmarkTracedCall is what tracing costs a cheap unary call through
// the whole server (interceptors, authentication, access log at warn),
// client and server in this process over loopback: tracing off against
// tracing as a service runs it by default (tracing.Setup without
// OTEL_TRACES_SAMPLER: parent-based, one new trace in ten, spans exported
// over OTLP/HTTP to a collector that discards them). It reports the CPU
// time of the process per call ("cpu-µs/op"), which is what tracing takes
// from a loaded service; ns/op is wall time with the -cpu clients.
//
//	go test ./services/platform/rpcserver -run XXX -bench TracedCall -cpuprofile cpu.out
func BenchmarkTracedCall(b *testing.B) {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer collector.Close()
	for _, traced := range []bool{false, true} {
		name := "off"
		if traced {
			name = "default sampling"
		}
		b.Run(name, func(b *testing.B) {
			var tr *tracing.Tracing
			if traced {
				b.Setenv(tracing.EnvEndpoint, collector.URL)
				var err error
				tr, err = tracing.Setup(context.Background(), "bench", slog.New(slog.DiscardHandler))
				require.NoError(b, err)
				require.NotNil(b, tr)
				defer func() { require.NoError(b, tr.Shutdown(context.Background())) }()
			}
			h := start(b, func(c *rpcserver.Config) {
				c.Tracing = tr
				c.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
			})
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+operatorToken)
			call := func() {
				out := new(wrapperspb.StringValue)
				if err := h.conn.Invoke(ctx, echoMethod, wrapperspb.String("x"), out); err != nil {
					b.Fatal(err)
				}
			}
			for range 1000 {
				call()
			}
			cpu0 := processCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					call()
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

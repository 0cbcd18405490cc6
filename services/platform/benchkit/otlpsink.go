package benchkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// OTLPSink is an OTLP/HTTP trace receiver that accepts everything and
// keeps only counts, for measuring what tracing costs a service that
// exports its spans (a real collector would compete for the same cores).
type OTLPSink struct {
	// Addr is host:port, for OTEL_EXPORTER_OTLP_ENDPOINT=http://Addr.
	Addr     string
	srv      *http.Server
	requests atomic.Int64
	bytes    atomic.Int64
}

// StartOTLPSink listens on a free loopback port.
func StartOTLPSink() (*OTLPSink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP sink: %w", err)
	}
	s := &OTLPSink{Addr: lis.Addr().String()}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			s.requests.Add(1)
			s.bytes.Add(n)
		}
		// An empty ExportTraceServiceResponse is an empty body.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	// Serve ends with ErrServerClosed at close; a sink that failed earlier
	// shows as export requests missing.
	go func() { _ = s.srv.Serve(lis) }()
	return s, nil
}

// Env is the environment that makes a service export its spans here.
func (s *OTLPSink) Env() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + s.Addr, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"}
}

// Received returns the export requests and bytes received so far.
func (s *OTLPSink) Received() (requests, bytes int64) { return s.requests.Load(), s.bytes.Load() }

// Close stops the sink.
func (s *OTLPSink) Close() { _ = s.srv.Close() }

// Package metrics is a service's Prometheus registry: gRPC server metrics
// (go-grpc-middleware's prometheus provider: calls by service, method and
// code, with handling-time histograms), HTTP request metrics of the REST
// gateway (client_golang's promhttp: by HTTP method and status code),
// PostgreSQL pool statistics by placement, the Go runtime and the process.
//
// Labels are bounded by construction: gRPC methods are the service's own
// (pre-registered at start), HTTP requests are counted by method and code
// only (never by path, which carries tenant hosts and resource names), and
// pools by placement name. No metric carries a tenant.
//
// Exposition is client_golang's; nothing here writes the text format.
package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
)

// Path is where the metrics are served.
const Path = "/metrics"

// latencyBuckets cover a health check (tens of µs) to a password hash under
// load (hundreds of ms) and a slow fleet operation call.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry holds a service's metrics.
type Registry struct {
	reg *prometheus.Registry
	// labelled registers into reg with the service label.
	labelled prometheus.Registerer
	grpc     *grpcprom.ServerMetrics
	http     struct {
		requests *prometheus.CounterVec
		duration *prometheus.HistogramVec
		inFlight prometheus.Gauge
	}
}

// New returns a registry for the service named service (the label
// "service" on every metric), with the Go and process collectors.
func New(service string) *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, r.reg)
	r.labelled = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.grpc = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets)))
	reg.MustRegister(r.grpc)
	r.http.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests answered by the REST gateway, by method and status code.",
	}, []string{"method", "code"})
	r.http.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "Time to answer an HTTP request of the REST gateway, by method and status code.",
		Buckets: latencyBuckets,
	}, []string{"method", "code"})
	r.http.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "http_requests_in_flight", Help: "HTTP requests of the REST gateway being answered.",
	})
	reg.MustRegister(r.http.requests, r.http.duration, r.http.inFlight)
	return r
}

// MustRegister registers a service's own collectors (with the service label).
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	r.labelled.MustRegister(cs...)
}

// UnaryServerInterceptor counts and times unary calls.
func (r *Registry) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return r.grpc.UnaryServerInterceptor()
}

// StreamServerInterceptor counts and times streams.
func (r *Registry) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return r.grpc.StreamServerInterceptor()
}

// InitializeMetrics creates every method's series at zero, so that rates
// and absent-series alerts work before the first call.
func (r *Registry) InitializeMetrics(s *grpc.Server) { r.grpc.InitializeMetrics(s) }

// HTTPMiddleware counts and times the requests next answers. The metrics
// path itself is not counted.
func (r *Registry) HTTPMiddleware(next http.Handler) http.Handler {
	counted := promhttp.InstrumentHandlerInFlight(r.http.inFlight,
		promhttp.InstrumentHandlerDuration(r.http.duration,
			promhttp.InstrumentHandlerCounter(r.http.requests, next)))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == Path {
			next.ServeHTTP(w, req)
			return
		}
		counted.ServeHTTP(w, req)
	})
}

// Handler serves the metrics in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg, EnableOpenMetrics: true})
}

// Gatherer returns the registry, for tests.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Pools registers the statistics of the pools, one per placement, labelled
// placement.
func (r *Registry) Pools(pools map[string]*pgxpool.Pool) {
	r.MustRegister(&poolCollector{pools: pools})
}

// poolCollector reads pgxpool's statistics at scrape time.
type poolCollector struct{ pools map[string]*pgxpool.Pool }

var (
	poolTotal    = poolDesc("pgx_pool_connections", "Connections of the pool, open or being opened.")
	poolIdle     = poolDesc("pgx_pool_idle_connections", "Idle connections of the pool.")
	poolInUse    = poolDesc("pgx_pool_acquired_connections", "Connections of the pool in use.")
	poolMax      = poolDesc("pgx_pool_max_connections", "The pool's maximum size.")
	poolAcquires = poolDesc("pgx_pool_acquires_total", "Connections acquired from the pool.")
	poolEmpty    = poolDesc("pgx_pool_empty_acquires_total", "Acquires that had to wait for a connection.")
	poolWait     = poolDesc("pgx_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.")
	poolNew      = poolDesc("pgx_pool_new_connections_total", "Connections opened by the pool.")
)

func poolDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"placement"}, nil)
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTotal, poolIdle, poolInUse, poolMax, poolAcquires, poolEmpty, poolWait, poolNew} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, p := range c.pools {
		s := p.Stat()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
		}
		gauge(poolTotal, float64(s.TotalConns()))
		gauge(poolIdle, float64(s.IdleConns()))
		gauge(poolInUse, float64(s.AcquiredConns()))
		gauge(poolMax, float64(s.MaxConns()))
		counter(poolAcquires, float64(s.AcquireCount()))
		counter(poolEmpty, float64(s.EmptyAcquireCount()))
		counter(poolWait, s.AcquireDuration().Seconds())
		counter(poolNew, float64(s.NewConnsCount()))
	}
}

// ParseAddr reads TENANTRY_METRICS_ADDR's convention: "" serves the metrics
// on the service's HTTP port, "off" nowhere, anything else on a listener
// of its own at that address.
func ParseAddr(v string) (onHTTP bool, own string, off bool) {
	switch strings.TrimSpace(v) {
	case "":
		return true, "", false
	case "off":
		return false, "", true
	default:
		return false, strings.TrimSpace(v), false
	}
}

// Server serves the metrics on an address of their own
// (TENANTRY_METRICS_ADDR), apart from the service's public ports.
type Server struct {
	lis net.Listener
	srv *http.Server
}

// Listen binds addr for r's metrics; Serve serves them.
func (r *Registry) Listen(addr string) (*Server, error) {
	var lc net.ListenConfig
	lis, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on TENANTRY_METRICS_ADDR %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, r.Handler())
	return &Server{lis: lis, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(s.lis) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(shutdown)
		<-done
		return nil
	}
}

// ForService sets up service's metrics as TENANTRY_METRICS_ADDR (setting)
// says: nil for "off"; otherwise the registry, with onHTTP when the
// service's HTTP gateway serves them, or own, already listening, when they
// have an address of their own (serve it with own.Serve).
func ForService(service, setting string) (r *Registry, own *Server, onHTTP bool, err error) {
	onHTTP, addr, off := ParseAddr(setting)
	if off {
		return nil, nil, false, nil
	}
	r = New(service)
	if addr != "" {
		if own, err = r.Listen(addr); err != nil {
			return nil, nil, false, err
		}
	}
	return r, own, onHTTP, nil
}

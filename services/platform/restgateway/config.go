package restgateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"tenantry.dev/platform/accesslog"
	"tenantry.dev/platform/metrics"
	"tenantry.dev/platform/tracing"
)

// Defaults for zero Config fields.
const (
	// DefaultMaxBodyBytes bounds a request body: REST requests are small
	// JSON documents, and the limit keeps a client from making the server
	// buffer much.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultShutdownTimeout bounds how long Serve waits for requests in
	// flight after its context ends.
	DefaultShutdownTimeout = 10 * time.Second
)

// RegisterFunc registers a service's routes on mux, calling through conn:
// the generated Register<Service>Handler functions have this type.
type RegisterFunc func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error

// Config says how to run a Gateway.
type Config struct {
	// Name names the gateway in logs, e.g. "tenant-registry".
	Name string
	// Addr is the TCP address of the HTTP server, e.g. "localhost:8081";
	// port 0 picks a free port (see Gateway.Addr).
	Addr string
	// TLSCertFile and TLSKeyFile are PEM files; both or neither.
	TLSCertFile, TLSKeyFile string
	// AllowInsecure permits plaintext HTTP on a non-loopback address,
	// behind a proxy that terminates TLS.
	AllowInsecure bool
	// FlagAddr names the option that sets Addr, for error messages, e.g.
	// "--http-addr (TENANTRY_REGISTRY_HTTP_ADDR)".
	FlagAddr string

	// GRPC is the service's server, fully registered; the gateway serves it
	// on an in-memory listener of its own.
	GRPC *grpc.Server
	// GRPCUsesTLS says that GRPC was built with TLS credentials, so the
	// in-memory connection must speak TLS too.
	GRPCUsesTLS bool
	// Register lists the routes, e.g. registryv1.RegisterTenantServiceHandler.
	Register []RegisterFunc
	// OpenAPI is the service's OpenAPI (swagger) JSON document, served at
	// /openapi.json; nil serves none.
	OpenAPI []byte
	// Routes are extra handlers by http.ServeMux pattern, e.g.
	// "GET /.well-known/jwks.json". They get the access log, request ids
	// and body limit, and pass Admit.
	Routes map[string]http.Handler

	// Admit, when set, runs before every request except the health probes
	// and /openapi.json; an error is the request's answer, written like a
	// gRPC error (a fault or status; see WriteError), unless the error is
	// also an http.Handler, which then answers the request itself (say, an
	// HTML page for a browser). The service uses it to refuse, say, an
	// unknown tenant host before any other work.
	Admit func(*http.Request) error
	// Metadata, when set, adds gRPC metadata to every routed call, e.g. the
	// tenant host. Its keys replace any the gateway sets.
	Metadata func(*http.Request) map[string]string
	// Wrap, when set, wraps the REST routes (not Routes, probes or
	// /openapi.json), after Admit and CORS: the service uses it for what
	// concerns its own routes, e.g. session cookies and CSRF checks.
	Wrap func(http.Handler) http.Handler
	// BeforeResponse, when set, sees each successful REST response before
	// it is written, with the request's context: it may set headers (say,
	// cookies) and change the message. An error fails the request.
	BeforeResponse func(ctx context.Context, w http.ResponseWriter, resp proto.Message) error
	// CORS, when set, answers preflight requests and adds CORS headers for
	// the origins it allows; unset, the gateway sends no CORS headers.
	CORS *CORS

	// Metrics, when set, counts and times every request by HTTP method and
	// status code; with ServeMetrics, the gateway also serves them at
	// /metrics (on every host, like the health probes: put them on an
	// address of their own when this port faces the internet).
	Metrics      *metrics.Registry
	ServeMetrics bool
	// Tracing, when set, gives every request but the probes and /metrics
	// a server span (child of the client's when it sends a traceparent
	// header), and the gateway's calls into GRPC client spans under it
	// that carry the trace on to the server's spans. Give the gRPC server
	// the same Tracing.
	Tracing *tracing.Tracing

	// TrustedProxies are the peers whose X-Forwarded-For and
	// X-Forwarded-Host are believed. Empty believes no one.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes limits request bodies; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// ShutdownTimeout bounds the wait for requests in flight on shutdown;
	// zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives the access log; nil means slog.Default().
	Logger *slog.Logger
	// AccessLog says how routine requests' records (below 500) are
	// written (level, sampling); nil writes every one at info.
	AccessLog *accesslog.Policy
}

// validate checks c and returns its TLS configuration (nil for plaintext),
// reporting every problem at once.
func (c *Config) validate() (*tls.Config, error) {
	flagAddr := c.FlagAddr
	if flagAddr == "" {
		flagAddr = "the HTTP address"
	}
	var errs []error
	if c.GRPC == nil {
		errs = append(errs, errors.New("restgateway: Config.GRPC is nil; the gateway needs the service's gRPC server"))
	}
	if len(c.Register) == 0 {
		errs = append(errs, errors.New("restgateway: Config.Register is empty; the gateway would route nothing"))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("restgateway: MaxBodyBytes is negative (%d)", c.MaxBodyBytes))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("restgateway: ShutdownTimeout is negative (%s)", c.ShutdownTimeout))
	}
	var loopback bool
	if host, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("restgateway: %s %q is not host:port: %w", flagAddr, c.Addr, err))
	} else {
		loopback = isLoopback(host)
	}
	var tlsConfig *tls.Config
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		errs = append(errs, errors.New("restgateway: TLS needs both a certificate and a key file"))
	case c.TLSCertFile != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("restgateway: load TLS key pair %q, %q: %w", c.TLSCertFile, c.TLSKeyFile, err))
			break
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case c.Addr != "" && !loopback && !c.AllowInsecure:
		errs = append(errs, fmt.Errorf(
			"restgateway: refusing plaintext HTTP on %q, which is not a loopback address: "+
				"serve TLS (set the TLS certificate and key), listen on loopback (%s 127.0.0.1:PORT), "+
				"or, behind a proxy that terminates TLS, allow insecure serving", c.Addr, flagAddr))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tlsConfig, nil
}

// isLoopback reports whether host only ever reaches this machine; an empty
// host means every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// ParsePrefixes parses a comma-separated list of CIDRs or single addresses
// ("10.0.0.0/8, 192.168.1.7"), for TrustedProxies.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("%q is not a CIDR (10.0.0.0/8) or an IP address", item))
	}
	return out, errors.Join(errs...)
}

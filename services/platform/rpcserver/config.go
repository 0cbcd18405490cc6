package rpcserver

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/grpc"

	"tenantry.dev/platform/accesslog"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/metrics"
	"tenantry.dev/platform/tracing"
)

// Flag names for the operator-facing settings of Config. Error messages
// name these flags (and the environment variables Config.EnvVars gives for
// them), so services' main packages register them with RegisterFlags or by
// these exact names.
const (
	FlagAddr            = "grpc-addr"
	FlagTLSCert         = "tls-cert"
	FlagTLSKey          = "tls-key"
	FlagAllowInsecure   = "allow-insecure"
	FlagShutdownTimeout = "shutdown-timeout"
	FlagDrainDelay      = "drain-delay"
)

// Defaults for zero Config fields.
const (
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMaxMessageBytes matches gRPC's own default receive limit, so
	// that our clients and grpcurl agree with the server.
	DefaultMaxMessageBytes = 4 << 20
)

// Config says how to run a Server.
type Config struct {
	// Name names the server in logs, e.g. "tenant-registry".
	Name string
	// Addr is the TCP address to listen on, e.g. "127.0.0.1:8080" or ":8443".
	// Port 0 picks a free port; see Server.Addr.
	Addr string
	// TLSCertFile and TLSKeyFile are PEM files; both or neither.
	TLSCertFile, TLSKeyFile string
	// AllowInsecure permits plaintext on a non-loopback address, for use
	// behind a proxy or mesh that terminates TLS.
	AllowInsecure bool
	// Logger receives one record per call; nil means slog.Default().
	Logger *slog.Logger
	// AccessLog says how routine calls' records are written (level,
	// sampling); nil writes every one at info.
	AccessLog *accesslog.Policy
	// Auth authenticates and authorizes every call. It is required: a
	// server without a policy would serve everyone.
	Auth *authn.Guard
	// UnaryInterceptors and StreamInterceptors run innermost, in order,
	// just around the handler: they see the Principal and the handler's
	// unmapped errors, and their own errors are mapped like the handler's.
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// BeforeAuthUnaryInterceptors and BeforeAuthStreamInterceptors run, in
	// order, before Auth: they establish what authentication itself needs
	// to know about the call, such as the tenant it is for, so that a
	// credential can be checked against it (a user's session in that
	// tenant). They see no Principal and must not trust the caller; their
	// errors are mapped like the handler's.
	BeforeAuthUnaryInterceptors  []grpc.UnaryServerInterceptor
	BeforeAuthStreamInterceptors []grpc.StreamServerInterceptor
	// ShutdownTimeout bounds how long Serve waits for calls in flight after
	// ctx is cancelled before cutting them off; zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// DrainDelay is how long the server keeps serving, with health already
	// NOT_SERVING, before it stops accepting calls, so that load balancers
	// and readiness probes notice first. Zero stops accepting at once.
	DrainDelay time.Duration
	// MaxMessageBytes limits the size of a message in either direction;
	// zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Metrics, when set, counts and times every call by method and code
	// (outside the error mapping, so the codes are the ones callers get).
	Metrics *metrics.Registry
	// Tracing, when set, gives every call but the health checks a server
	// span (child of the caller's when its metadata carries a traceparent)
	// that the handler's context, its queries and its log lines carry.
	Tracing *tracing.Tracing
	// StreamWorkers, when positive, keeps that many goroutines serving
	// calls one after another; calls beyond them get a goroutine each, as
	// when it is zero. Worth it for handlers with deep stacks (signatures,
	// hashing): a fresh goroutine starts with a small stack and grows it by
	// copying, on every call, while a worker keeps the stack it grew.
	StreamWorkers int
	// EnvVars gives the environment variable the service reads for each
	// flag (flag name → variable, e.g. FlagAddr →
	// "TENANTRY_IDENTITY_GRPC_ADDR"; see flagenv.Set.EnvVars), for error
	// messages. Services name their variables themselves, so a flag
	// missing here is named alone: a guessed variable would send the
	// operator to set one that nothing reads.
	EnvVars map[string]string
}

// RegisterFlags defines the operator-facing flags on fs, storing into c.
// The current values of c are the defaults, so set them first.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, FlagAddr, c.Addr, "gRPC listen address (host:port)")
	fs.StringVar(&c.TLSCertFile, FlagTLSCert, c.TLSCertFile, "PEM certificate file for gRPC TLS; needs --"+FlagTLSKey)
	fs.StringVar(&c.TLSKeyFile, FlagTLSKey, c.TLSKeyFile, "PEM private key file for gRPC TLS; needs --"+FlagTLSCert)
	fs.BoolVar(&c.AllowInsecure, FlagAllowInsecure, c.AllowInsecure,
		"allow plaintext gRPC on a non-loopback address (only behind a TLS-terminating proxy)")
	fs.DurationVar(&c.ShutdownTimeout, FlagShutdownTimeout, c.ShutdownTimeout,
		"how long to wait for calls in flight on shutdown (0 means "+DefaultShutdownTimeout.String()+")")
	fs.DurationVar(&c.DrainDelay, FlagDrainDelay, c.DrainDelay,
		"how long to keep serving with health NOT_SERVING before shutting down")
}

// option names a flag, and its environment variable when c.EnvVars has
// one, for error messages.
func (c *Config) option(flagName string) string {
	if env := c.EnvVars[flagName]; env != "" {
		return "--" + flagName + " (" + env + ")"
	}
	return "--" + flagName
}

// validate checks c and returns its TLS configuration (nil for plaintext).
// It reports every problem at once, each saying what to change.
func (c *Config) validate() (*tls.Config, error) {
	var errs []error
	if c.Auth == nil {
		errs = append(errs, errors.New("rpcserver: Config.Auth is nil; every server needs an authn.Guard"))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("rpcserver: %s is negative (%s)", c.option(FlagShutdownTimeout), c.ShutdownTimeout))
	}
	if c.DrainDelay < 0 {
		errs = append(errs, fmt.Errorf("rpcserver: %s is negative (%s)", c.option(FlagDrainDelay), c.DrainDelay))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("rpcserver: MaxMessageBytes is negative (%d)", c.MaxMessageBytes))
	}

	var loopback bool
	if c.Addr == "" {
		errs = append(errs, fmt.Errorf("rpcserver: no listen address: set %s, e.g. 127.0.0.1:8080", c.option(FlagAddr)))
	} else if host, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("rpcserver: %s %q is not host:port: %w", c.option(FlagAddr), c.Addr, err))
	} else {
		loopback = isLoopback(host)
	}

	var tlsConfig *tls.Config
	switch {
	case c.TLSCertFile != "" && c.TLSKeyFile == "":
		errs = append(errs, fmt.Errorf("rpcserver: %s is set but %s is not; TLS needs both", c.option(FlagTLSCert), c.option(FlagTLSKey)))
	case c.TLSCertFile == "" && c.TLSKeyFile != "":
		errs = append(errs, fmt.Errorf("rpcserver: %s is set but %s is not; TLS needs both", c.option(FlagTLSKey), c.option(FlagTLSCert)))
	case c.TLSCertFile != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("rpcserver: load TLS key pair from %s %q and %s %q: %w",
				c.option(FlagTLSCert), c.TLSCertFile, c.option(FlagTLSKey), c.TLSKeyFile, err))
			break
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	case c.Addr != "" && !loopback && !c.AllowInsecure:
		errs = append(errs, fmt.Errorf(
			"rpcserver: refusing plaintext gRPC on %q, which is not a loopback address: "+
				"serve TLS with %s and %s, listen on loopback with %s 127.0.0.1:PORT, "+
				"or, behind a proxy that terminates TLS, set %s",
			c.Addr, c.option(FlagTLSCert), c.option(FlagTLSKey), c.option(FlagAddr), c.option(FlagAllowInsecure)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tlsConfig, nil
}

// isLoopback reports whether host only ever reaches this machine. An empty
// host (":8080") means every interface, and other names could resolve
// anywhere, so both count as not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

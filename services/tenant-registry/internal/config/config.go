// Package config reads the tenant-registry's configuration from flags with
// TENANTRY_* environment fallbacks and validates it, reporting every problem
// at once in words an operator can act on.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"tenantry.dev/platform/flagenv"
	"tenantry.dev/platform/tenantname"
)

// DefaultPlacement is the name of the placement backed by DATABASE_URL.
const DefaultPlacement = "default"

// Config is the tenant-registry's configuration.
type Config struct {
	GRPCAddr      string
	HTTPAddr      string // REST gateway; "" serves no HTTP
	DatabaseURL   string
	Placements    map[string]string // name → database URL, including the default
	BaseDomains   []string
	OperatorToken string
	ServiceToken  string
	TLSCertFile   string
	TLSKeyFile    string
	AllowInsecure bool

	PurgeGrace        time.Duration
	ReconcileInterval time.Duration
	MaxConns          int32
	MaxConnLifetime   time.Duration
	ShutdownTimeout   time.Duration

	LogLevel  slog.Level
	LogFormat string
}

var placementName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Load parses args with lookup as the environment.
func Load(args []string, lookup flagenv.Lookup) (*Config, error) {
	c := &Config{}
	fs := flagenv.New("tenant-registry", lookup)
	var placements, baseDomains, logLevel string
	var purgeGrace, reconcile, lifetime, shutdown string
	var maxConns string
	fs.String(&c.GRPCAddr, "grpc-addr", "TENANTRY_REGISTRY_GRPC_ADDR", "localhost:50051", "gRPC listen address")
	fs.String(&c.HTTPAddr, "http-addr", "TENANTRY_REGISTRY_HTTP_ADDR", "localhost:8081", "REST (HTTP/JSON) listen address; empty serves no HTTP")
	fs.String(&c.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL of the registry database (also the default placement)")
	fs.String(&placements, "placements", "TENANTRY_PLACEMENTS", "", "extra placements for tenant schemas: name=postgres-url,name2=postgres-url")
	fs.String(&baseDomains, "base-domains", "TENANTRY_BASE_DOMAINS", "localhost", "comma-separated base domains: {slug}.{base} resolves to the tenant")
	fs.String(&c.OperatorToken, "operator-token", "TENANTRY_OPERATOR_TOKEN", "", "bearer token of the operator credential (all methods)")
	fs.String(&c.ServiceToken, "service-token", "TENANTRY_SERVICE_TOKEN", "", "bearer token of the service credential (resolve and watch only)")
	fs.String(&c.TLSCertFile, "tls-cert", "TENANTRY_TLS_CERT", "", "TLS certificate file (PEM); plaintext when unset")
	fs.String(&c.TLSKeyFile, "tls-key", "TENANTRY_TLS_KEY", "", "TLS private key file (PEM)")
	fs.Bool(&c.AllowInsecure, "allow-insecure", "TENANTRY_ALLOW_INSECURE", false, "allow plaintext gRPC on non-loopback addresses")
	fs.String(&purgeGrace, "purge-grace", "TENANTRY_PURGE_GRACE", "720h", "how long a deleted tenant can be undeleted before its schema is dropped")
	fs.String(&reconcile, "reconcile-interval", "TENANTRY_RECONCILE_INTERVAL", "30s", "how often unfinished provisioning and expired deletions are handled")
	fs.String(&maxConns, "db-max-conns", "TENANTRY_DB_MAX_CONNS", "20", "maximum connections per database pool")
	fs.String(&lifetime, "db-max-conn-lifetime", "TENANTRY_DB_MAX_CONN_LIFETIME", "30m", "recycle database connections after this long (bounds catalog-cache memory)")
	fs.String(&shutdown, "shutdown-timeout", "TENANTRY_SHUTDOWN_TIMEOUT", "15s", "how long in-flight calls may take to finish on shutdown")
	fs.String(&logLevel, "log-level", "TENANTRY_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	fs.String(&c.LogFormat, "log-format", "TENANTRY_LOG_FORMAT", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	if c.DatabaseURL == "" {
		bad("DATABASE_URL (or -database-url) is required: the PostgreSQL database of the registry")
	} else if err := checkURL(c.DatabaseURL); err != nil {
		bad("DATABASE_URL: %v", err)
	}
	c.Placements = map[string]string{DefaultPlacement: c.DatabaseURL}
	for _, item := range splitList(placements) {
		name, u, ok := strings.Cut(item, "=")
		switch {
		case !ok:
			bad("TENANTRY_PLACEMENTS: %q is not name=postgres-url", item)
		case !placementName.MatchString(name):
			bad("TENANTRY_PLACEMENTS: placement name %q must be 1-63 of a-z, 0-9, '_', '-', starting with a letter", name)
		case name == DefaultPlacement:
			bad("TENANTRY_PLACEMENTS: %q is the DATABASE_URL placement; pick another name", name)
		case c.Placements[name] != "":
			bad("TENANTRY_PLACEMENTS: placement %q is listed twice", name)
		default:
			if err := checkURL(u); err != nil {
				bad("TENANTRY_PLACEMENTS: placement %q: %v", name, err)
			}
			c.Placements[name] = u
		}
	}
	for _, d := range splitList(baseDomains) {
		host, err := tenantname.NormalizeHost("base-domains", d)
		if err != nil {
			bad("TENANTRY_BASE_DOMAINS: %q is not a valid domain name", d)
			continue
		}
		c.BaseDomains = append(c.BaseDomains, host)
	}
	if c.OperatorToken == "" {
		bad("TENANTRY_OPERATOR_TOKEN (or -operator-token) is required: the operator's bearer token")
	} else if len(c.OperatorToken) < 16 {
		bad("TENANTRY_OPERATOR_TOKEN must be at least 16 characters; generate one with `openssl rand -hex 32`")
	}
	if c.ServiceToken != "" && len(c.ServiceToken) < 16 {
		bad("TENANTRY_SERVICE_TOKEN must be at least 16 characters; generate one with `openssl rand -hex 32`")
	}
	if c.ServiceToken != "" && c.ServiceToken == c.OperatorToken {
		bad("TENANTRY_SERVICE_TOKEN must differ from TENANTRY_OPERATOR_TOKEN")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("set both TENANTRY_TLS_CERT and TENANTRY_TLS_KEY, or neither")
	}
	c.PurgeGrace = duration(purgeGrace, "TENANTRY_PURGE_GRACE", 0, bad)
	c.ReconcileInterval = duration(reconcile, "TENANTRY_RECONCILE_INTERVAL", time.Second, bad)
	c.MaxConnLifetime = duration(lifetime, "TENANTRY_DB_MAX_CONN_LIFETIME", time.Minute, bad)
	c.ShutdownTimeout = duration(shutdown, "TENANTRY_SHUTDOWN_TIMEOUT", 0, bad)
	var n int
	if _, err := fmt.Sscanf(maxConns, "%d", &n); err != nil || n < 2 || n > 1000 {
		bad("TENANTRY_DB_MAX_CONNS must be a number from 2 to 1000, not %q", maxConns)
	}
	c.MaxConns = int32(n)
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		bad("TENANTRY_LOG_LEVEL must be debug, info, warn or error, not %q", logLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("TENANTRY_LOG_FORMAT must be text or json, not %q", c.LogFormat)
	}
	if len(problems) > 0 {
		return nil, errors.New("invalid configuration:\n  - " + strings.Join(problems, "\n  - "))
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("must be a postgres:// URL")
	}
	return nil
}

func duration(s, name string, minimum time.Duration, bad func(string, ...any)) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil || d < minimum {
		bad("%s must be a duration of at least %s such as 30s or 720h, not %q", name, minimum, s)
	}
	return d
}

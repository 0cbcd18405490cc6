// Package config reads the tenant-registry's configuration from flags with
// TENANTRY_* environment fallbacks and validates it, reporting every problem
// at once in words an operator can act on.
package config

import (
	"log/slog"
	"time"

	"tenantry.dev/platform/accesslog"
	"tenantry.dev/platform/flagenv"
	"tenantry.dev/platform/leader"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/platform/tracing"
)

// DefaultPlacement is the name of the placement backed by DATABASE_URL.
const DefaultPlacement = tenantdb.DefaultPlacement

// Config is the tenant-registry's configuration.
type Config struct {
	GRPCAddr      string
	HTTPAddr      string // REST gateway; "" serves no HTTP
	MetricsAddr   string // see metrics.ParseAddr
	DatabaseURL   string
	Placements    map[string]string // name → database URL, including the default
	BaseDomains   []string
	OperatorToken string
	ServiceToken  string
	// ComponentKey derives each component's token and its tenant roles'
	// passwords (package tenantrole); empty disables component logins.
	ComponentKey  string
	TLSCertFile   string
	TLSKeyFile    string
	AllowInsecure bool
	// EnvVars is the environment variable each flag reads, by flag name,
	// for messages that name a setting (rpcserver.Config.EnvVars).
	EnvVars map[string]string

	PurgeGrace        time.Duration
	ReconcileInterval time.Duration
	OperationLease    time.Duration
	SpareSchemas      int
	MaxConns          int32
	MaxConnLifetime   time.Duration
	ShutdownTimeout   time.Duration

	// LeaderCheckInterval paces the election of the replica that runs the
	// background work (package leader).
	LeaderCheckInterval time.Duration

	LogLevel  slog.Level
	LogFormat string
	// AccessLog says how routine calls' access-log records are written.
	AccessLog *accesslog.Policy

	// Tracing, when set, is used instead of what the OTEL_* variables say
	// (tracing.Setup): tests put an in-memory exporter here.
	Tracing *tracing.Tracing
}

// Load parses args with lookup as the environment.
func Load(args []string, lookup flagenv.Lookup) (*Config, error) {
	c := &Config{}
	fs := flagenv.New("tenant-registry", lookup)
	var placements, baseDomains, logLevel string
	var purgeGrace, reconcile, lifetime, shutdown, lease string
	var maxConns, spares, leaderCheck string
	fs.String(&c.GRPCAddr, "grpc-addr", "TENANTRY_REGISTRY_GRPC_ADDR", "localhost:50051", "gRPC listen address")
	fs.String(&c.HTTPAddr, "http-addr", "TENANTRY_REGISTRY_HTTP_ADDR", "localhost:8081", "REST (HTTP/JSON) listen address; empty serves no HTTP")
	fs.String(&c.MetricsAddr, "metrics-addr", "TENANTRY_METRICS_ADDR", "", "where Prometheus metrics are served: empty on the HTTP port at /metrics, \"off\" nowhere, host:port on a listener of their own")
	fs.String(&c.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL of the registry database (also the default placement)")
	fs.String(&placements, "placements", "TENANTRY_PLACEMENTS", "", "extra placements for tenant schemas: name=postgres-url,name2=postgres-url")
	fs.String(&baseDomains, "base-domains", "TENANTRY_BASE_DOMAINS", "localhost", "comma-separated base domains: {slug}.{base} resolves to the tenant")
	fs.String(&c.OperatorToken, "operator-token", "TENANTRY_OPERATOR_TOKEN", "", "bearer token of the operator credential (all methods)")
	fs.String(&c.ServiceToken, "service-token", "TENANTRY_SERVICE_TOKEN", "", "bearer token of the service credential (resolve and watch only)")
	fs.String(&c.ComponentKey, "component-key", "TENANTRY_COMPONENT_KEY", "", "secret from which each component's token and its tenant roles' database passwords are derived (at least 32 characters); unset: product services cannot log in to tenant schemas")
	fs.String(&c.TLSCertFile, "tls-cert", "TENANTRY_TLS_CERT", "", "TLS certificate file (PEM); plaintext when unset")
	fs.String(&c.TLSKeyFile, "tls-key", "TENANTRY_TLS_KEY", "", "TLS private key file (PEM)")
	fs.Bool(&c.AllowInsecure, "allow-insecure", "TENANTRY_ALLOW_INSECURE", false, "allow plaintext gRPC on non-loopback addresses")
	fs.String(&purgeGrace, "purge-grace", "TENANTRY_PURGE_GRACE", "720h", "how long a deleted tenant can be undeleted before its schema is dropped")
	fs.String(&reconcile, "reconcile-interval", "TENANTRY_RECONCILE_INTERVAL", "30s", "how often unfinished provisioning and expired deletions are handled")
	fs.String(&lease, "operation-lease", "TENANTRY_OPERATION_LEASE", "30s", "how long a running operation (fleet migration) stays with a replica that stopped renewing it before another resumes it")
	fs.String(&leaderCheck, "leader-check-interval", "TENANTRY_LEADER_CHECK_INTERVAL", "2s", "how often the replica running the background work (reconciler, purges, spare schemas, resuming operations) checks it still holds its lease, and the others try to take it; a new leader starts 2.5 intervals after taking it")
	fs.String(&spares, "spare-schemas", "TENANTRY_SPARE_SCHEMAS", "4", "schemas kept ready per placement with every component applied, renamed to a new tenant's at create (0: none)")
	fs.String(&maxConns, "db-max-conns", "TENANTRY_DB_MAX_CONNS", "20", "maximum connections per database pool")
	fs.String(&lifetime, "db-max-conn-lifetime", "TENANTRY_DB_MAX_CONN_LIFETIME", "30m", "recycle database connections after this long (bounds catalog-cache memory)")
	fs.String(&shutdown, "shutdown-timeout", "TENANTRY_SHUTDOWN_TIMEOUT", "15s", "how long in-flight calls may take to finish on shutdown")
	fs.String(&logLevel, "log-level", "TENANTRY_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	c.AccessLog = &accesslog.Policy{}
	accesslog.Flags(fs, c.AccessLog)
	fs.String(&c.LogFormat, "log-format", "TENANTRY_LOG_FORMAT", "text", "log format: text or json")
	c.EnvVars = fs.EnvVars()
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	var problems flagenv.Problems
	bad := problems.Addf

	if c.DatabaseURL == "" {
		bad("DATABASE_URL (or -database-url) is required: the PostgreSQL database of the registry")
	} else if !flagenv.IsPostgresURL(c.DatabaseURL) {
		bad("DATABASE_URL must be a postgres:// URL")
	}
	placementsFound, placementProblems := tenantdb.ParsePlacements("TENANTRY_PLACEMENTS", placements, c.DatabaseURL)
	c.Placements = placementsFound
	problems = append(problems, placementProblems...)
	// Not nil even when empty: identity's resolver takes nil for "not known".
	domains, invalid := tenantname.ParseBaseDomains(flagenv.List(baseDomains))
	c.BaseDomains = domains
	for _, d := range invalid {
		bad("TENANTRY_BASE_DOMAINS: %q is not a valid domain name", d)
	}
	if c.OperatorToken == "" {
		bad("TENANTRY_OPERATOR_TOKEN (or -operator-token) is required: the operator's bearer token")
	} else if len(c.OperatorToken) < 16 {
		bad("TENANTRY_OPERATOR_TOKEN must be at least 16 characters; generate one with `openssl rand -hex 32`")
	}
	if c.ServiceToken != "" && len(c.ServiceToken) < 16 {
		bad("TENANTRY_SERVICE_TOKEN must be at least 16 characters; generate one with `openssl rand -hex 32`")
	}
	if c.ComponentKey != "" && len(c.ComponentKey) < 32 {
		bad("TENANTRY_COMPONENT_KEY must be at least 32 characters; generate one with `openssl rand -hex 32`")
	}
	if c.ServiceToken != "" && c.ServiceToken == c.OperatorToken {
		bad("TENANTRY_SERVICE_TOKEN must differ from TENANTRY_OPERATOR_TOKEN")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("set both TENANTRY_TLS_CERT and TENANTRY_TLS_KEY, or neither")
	}
	c.PurgeGrace = problems.Duration("TENANTRY_PURGE_GRACE", purgeGrace, 0)
	c.ReconcileInterval = problems.Duration("TENANTRY_RECONCILE_INTERVAL", reconcile, time.Second)
	c.OperationLease = problems.Duration("TENANTRY_OPERATION_LEASE", lease, time.Second)
	c.LeaderCheckInterval = problems.Duration("TENANTRY_LEADER_CHECK_INTERVAL", leaderCheck, leader.MinCheckInterval)
	c.MaxConnLifetime = problems.Duration("TENANTRY_DB_MAX_CONN_LIFETIME", lifetime, time.Minute)
	c.ShutdownTimeout = problems.Duration("TENANTRY_SHUTDOWN_TIMEOUT", shutdown, 0)
	c.SpareSchemas = problems.Int("TENANTRY_SPARE_SCHEMAS", spares, 0, 1000)
	c.MaxConns = int32(problems.Int("TENANTRY_DB_MAX_CONNS", maxConns, 2, 1000))
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		bad("TENANTRY_LOG_LEVEL must be debug, info, warn or error, not %q", logLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("TENANTRY_LOG_FORMAT must be text or json, not %q", c.LogFormat)
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

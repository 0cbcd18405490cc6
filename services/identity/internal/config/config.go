// Package config reads the identity service's configuration from flags with
// TENANTRY_* environment fallbacks and validates it, reporting every problem
// at once.
package config

import (
	"log/slog"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/platform/accesslog"
	"tenantry.dev/platform/flagenv"
	"tenantry.dev/platform/restgateway"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/platform/tenantrole"
)

// DefaultPlacement is the placement backed by DATABASE_URL.
const DefaultPlacement = tenantdb.DefaultPlacement

// IdentityComponent is the component identity's tables are registered as.
const IdentityComponent = "identity"

// Config is the identity service's configuration.
type Config struct {
	GRPCAddr       string
	HTTPAddr       string         // REST gateway; "" serves no HTTP
	MetricsAddr    string         // see metrics.ParseAddr
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-* headers are believed
	CORSOrigins    []string       // origins every tenant's REST API accepts from browsers
	DatabaseURL    string
	Placements     map[string]string
	RegistryAddr   string
	BaseDomains    []string // the registry's, normalised; never nil ({slug}.{base} is a tenant's host)
	OperatorToken  string
	ServiceToken   string
	ComponentToken string // component "identity"'s: identity's tables are a component
	TLSCertFile    string
	TLSKeyFile     string
	AllowInsecure  bool
	// WebhookAllowPrivate lets webhook endpoints resolve to loopback and
	// private addresses (off: refused, against request forgery).
	WebhookAllowPrivate bool
	// WebhookBackoff is the first retry wait of a failed webhook delivery.
	WebhookBackoff time.Duration
	// SignUpsPerAddressPerHour is how many sign-ups one client address may
	// make in one tenant an hour, all at once if need be.
	SignUpsPerAddressPerHour int
	// EnvVars is the environment variable each flag reads, by flag name,
	// for messages that name a setting (rpcserver.Config.EnvVars).
	EnvVars map[string]string

	Issuer           string
	AccessTTL        time.Duration
	KeyEncryptionKey string
	KeyRotation      time.Duration
	PublicURL        string // with {tenant} for the tenant's slug

	SMTPAddr     string
	SMTPFrom     string
	SMTPUsername string
	SMTPPassword string
	SMTPStartTLS string

	HashConcurrency    int
	MigrateConcurrency int
	MaxConns           int32
	MaxConnLifetime    time.Duration
	SessionCacheTTL    time.Duration // 0: no session cache
	ShutdownTimeout    time.Duration
	LogLevel           slog.Level
	LogFormat          string
	// AccessLog says how routine calls' access-log records are written.
	AccessLog *accesslog.Policy
}

// Load parses args with lookup as the environment.
func Load(args []string, lookup flagenv.Lookup) (*Config, error) {
	c := &Config{}
	fs := flagenv.New("identity", lookup)
	var trustedProxies, corsOrigins, baseDomains string
	var sessionCache string
	var placements, accessTTL, rotation, lifetime, shutdown, logLevel, hashConc, migrateConc, maxConns string
	var webhookBackoff, signUpsPerAddress string
	fs.String(&c.GRPCAddr, "grpc-addr", "TENANTRY_IDENTITY_GRPC_ADDR", "localhost:50052", "gRPC listen address")
	fs.String(&c.HTTPAddr, "http-addr", "TENANTRY_IDENTITY_HTTP_ADDR", "localhost:8080", "REST (HTTP/JSON) listen address, on every tenant host; empty serves no HTTP")
	fs.String(&c.MetricsAddr, "metrics-addr", "TENANTRY_METRICS_ADDR", "", "where Prometheus metrics are served: empty on the HTTP port at /metrics, \"off\" nowhere, host:port on a listener of their own")
	fs.String(&trustedProxies, "trusted-proxies", "TENANTRY_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-Host/-For are believed; none by default")
	fs.String(&corsOrigins, "cors-origins", "TENANTRY_CORS_ORIGINS", "", "comma-separated origins (https://app.example.com) allowed to call every tenant's REST API from a browser, with credentials; tenants add their own in their settings (allowed_origins)")
	fs.String(&c.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL of the default placement (and of identity's shared tables)")
	fs.String(&placements, "placements", "TENANTRY_PLACEMENTS", "", "extra placements: name=postgres-url,... (as configured on the registry)")
	fs.String(&c.RegistryAddr, "registry-addr", "TENANTRY_REGISTRY_ADDR", "localhost:50051", "gRPC address of the tenant registry")
	fs.String(&baseDomains, "base-domains", "TENANTRY_BASE_DOMAINS", "localhost", "comma-separated base domains, as configured on the registry: {slug}.{base} is the tenant's host")
	fs.String(&c.OperatorToken, "operator-token", "TENANTRY_OPERATOR_TOKEN", "", "operator bearer token (UserService in any tenant)")
	fs.String(&c.ServiceToken, "service-token", "TENANTRY_SERVICE_TOKEN", "", "service bearer token: used to call the registry, accepted for IntrospectToken")
	fs.String(&c.ComponentToken, "component-token", "TENANTRY_COMPONENT_TOKEN", "", "the token of component \"identity\" (`tenantry components credential identity`): identity registers its tables with the registry as that component")
	fs.String(&c.TLSCertFile, "tls-cert", "TENANTRY_TLS_CERT", "", "TLS certificate file (PEM); plaintext when unset")
	fs.String(&c.TLSKeyFile, "tls-key", "TENANTRY_TLS_KEY", "", "TLS private key file (PEM)")
	fs.Bool(&c.AllowInsecure, "allow-insecure", "TENANTRY_ALLOW_INSECURE", false, "allow plaintext gRPC on non-loopback addresses")
	fs.Bool(&c.WebhookAllowPrivate, "webhook-allow-private-addresses", "TENANTRY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", false, "let webhook endpoints resolve to loopback, private and link-local addresses (tests, internal receivers); refused otherwise")
	fs.String(&webhookBackoff, "webhook-retry-backoff", "TENANTRY_WEBHOOK_RETRY_BACKOFF", "5s", "wait before the first retry of a failed webhook delivery; doubles with each failure up to an hour, with jitter")
	fs.String(&signUpsPerAddress, "signup-limit-per-address", "TENANTRY_SIGNUP_LIMIT_PER_ADDRESS", strconv.Itoa(ratelimit.DefaultSignUpsPerAddressPerHour),
		"sign-ups an hour one client address may make in one tenant, all at once if need be; more are refused (RESOURCE_EXHAUSTED) until the hour refills")
	fs.String(&c.Issuer, "issuer", "TENANTRY_ISSUER", "tenantry-identity", "iss claim of access tokens")
	fs.String(&accessTTL, "access-ttl", "TENANTRY_ACCESS_TTL", "15m", "lifetime of access tokens")
	fs.String(&c.KeyEncryptionKey, "key-encryption-key", "TENANTRY_KEY_ENCRYPTION_KEY", "", "secret (>= 32 characters) that encrypts the token signing keys at rest")
	fs.String(&rotation, "key-rotation", "TENANTRY_KEY_ROTATION", "720h", "how often the token signing key is rotated")
	fs.String(&c.PublicURL, "public-url", "TENANTRY_PUBLIC_URL", "http://{tenant}.localhost:8080", "base URL of a tenant's pages, for links in emails; {tenant} is the slug")
	fs.String(&c.SMTPAddr, "smtp-addr", "TENANTRY_SMTP_ADDR", "", "SMTP server host:port; unset prints emails to the log (dev)")
	fs.String(&c.SMTPFrom, "smtp-from", "TENANTRY_SMTP_FROM", "Tenantry <no-reply@localhost>", "From address of emails")
	fs.String(&c.SMTPUsername, "smtp-username", "TENANTRY_SMTP_USERNAME", "", "SMTP user name")
	fs.String(&c.SMTPPassword, "smtp-password", "TENANTRY_SMTP_PASSWORD", "", "SMTP password")
	fs.String(&c.SMTPStartTLS, "smtp-starttls", "TENANTRY_SMTP_STARTTLS", "auto", "STARTTLS: auto, require or off")
	fs.String(&hashConc, "hash-concurrency", "TENANTRY_HASH_CONCURRENCY", strconv.Itoa(runtime.GOMAXPROCS(0)), "password hashes running at once (each takes 19 MiB)")
	fs.String(&migrateConc, "migrate-concurrency", "TENANTRY_MIGRATE_CONCURRENCY", "4", "tenant schemas the registry migrates at once when identity asks at start-up")
	fs.String(&maxConns, "db-max-conns", "TENANTRY_DB_MAX_CONNS", "20", "maximum connections per database pool")
	fs.String(&lifetime, "db-max-conn-lifetime", "TENANTRY_DB_MAX_CONN_LIFETIME", "30m", "recycle database connections after this long (bounds catalog-cache memory)")
	fs.String(&sessionCache, "session-cache-ttl", "TENANTRY_SESSION_CACHE_TTL", "30s", "how long a replica may answer from memory that a session is open (revocations reach every replica at once through PostgreSQL notifications; this bounds the rest); 0 turns the cache off")
	fs.String(&shutdown, "shutdown-timeout", "TENANTRY_SHUTDOWN_TIMEOUT", "15s", "how long in-flight calls may take on shutdown")
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
		bad("DATABASE_URL (or -database-url) is required")
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
	if p, err := restgateway.ParsePrefixes(trustedProxies); err != nil {
		bad("TENANTRY_TRUSTED_PROXIES: %v", err)
	} else {
		c.TrustedProxies = p
	}
	for _, item := range flagenv.List(corsOrigins) {
		if o, ok := restgateway.NormalizeOrigin(item); ok {
			c.CORSOrigins = append(c.CORSOrigins, o)
		} else {
			bad("TENANTRY_CORS_ORIGINS: %q is not an origin like https://app.example.com (scheme and host, optional port, no path; \"*\" is not allowed)", item)
		}
	}
	if c.OperatorToken == "" || len(c.OperatorToken) < 16 {
		bad("TENANTRY_OPERATOR_TOKEN is required, at least 16 characters")
	}
	if c.ServiceToken == "" || len(c.ServiceToken) < 16 {
		bad("TENANTRY_SERVICE_TOKEN is required, at least 16 characters: identity uses it to call the registry")
	}
	if id, err := tenantrole.ComponentOf(c.ComponentToken); err != nil || id != IdentityComponent {
		bad("TENANTRY_COMPONENT_TOKEN is required: the token of component %q (`tenantry components credential %s`, or GET /v1/components/%s/credential on the registry); identity registers its tables with the registry as that component", IdentityComponent, IdentityComponent, IdentityComponent)
	}
	if len(c.KeyEncryptionKey) < 32 {
		bad("TENANTRY_KEY_ENCRYPTION_KEY is required, at least 32 characters (e.g. `openssl rand -hex 32`); keep it secret and stable")
	}
	if !strings.Contains(c.PublicURL, "{tenant}") || !isHTTPURL(strings.ReplaceAll(c.PublicURL, "{tenant}", "t")) {
		bad("TENANTRY_PUBLIC_URL must be an http(s) URL containing {tenant}, like https://{tenant}.example.com")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("set both TENANTRY_TLS_CERT and TENANTRY_TLS_KEY, or neither")
	}
	if c.SMTPStartTLS != "auto" && c.SMTPStartTLS != "require" && c.SMTPStartTLS != "off" {
		bad("TENANTRY_SMTP_STARTTLS must be auto, require or off")
	}
	c.AccessTTL = problems.Duration("TENANTRY_ACCESS_TTL", accessTTL, time.Minute)
	c.WebhookBackoff = problems.Duration("TENANTRY_WEBHOOK_RETRY_BACKOFF", webhookBackoff, 10*time.Millisecond)
	c.KeyRotation = problems.Duration("TENANTRY_KEY_ROTATION", rotation, time.Hour)
	c.MaxConnLifetime = problems.Duration("TENANTRY_DB_MAX_CONN_LIFETIME", lifetime, time.Minute)
	c.ShutdownTimeout = problems.Duration("TENANTRY_SHUTDOWN_TIMEOUT", shutdown, 0)
	c.SessionCacheTTL = problems.Duration("TENANTRY_SESSION_CACHE_TTL", sessionCache, 0)
	c.HashConcurrency = problems.Int("TENANTRY_HASH_CONCURRENCY", hashConc, 1, 256)
	c.SignUpsPerAddressPerHour = problems.Int("TENANTRY_SIGNUP_LIMIT_PER_ADDRESS", signUpsPerAddress, 1, 1_000_000)
	c.MigrateConcurrency = problems.Int("TENANTRY_MIGRATE_CONCURRENCY", migrateConc, 1, 64)
	c.MaxConns = int32(problems.Int("TENANTRY_DB_MAX_CONNS", maxConns, 2, 1000))
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		bad("TENANTRY_LOG_LEVEL must be debug, info, warn or error")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("TENANTRY_LOG_FORMAT must be text or json")
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

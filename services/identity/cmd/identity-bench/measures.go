package main

import (
	"fmt"
	"time"

	"tenantry.dev/identity/internal/password"
	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/platform/benchkit"
)

// Targets. The table prints them from these values, and the checks use the
// same values.
const (
	minLoginVsHash    = 0.90
	minCallVsHealth   = 0.50
	minSpreadVsOne    = 0.90
	minRESTVsGRPC     = 0.95
	maxTotalRunTime   = 8 * time.Minute
	oneTenantIndex    = 0
	tenantSlugPattern = "t%05d"
)

// tenantSlug names the i-th tenant created through the registry's API.
// Five digits cover the 100,000 tenants -tenants allows.
func tenantSlug(i int) string { return fmt.Sprintf(tenantSlugPattern, i) }

// Keys of the measures, in the order they are printed.
const (
	kHashTPS          = "hash-tps"
	kHashCPU          = "hash-cpu"
	kLoginTPS         = "login-tps"
	kLoginP50         = "login-p50"
	kLoginP99         = "login-p99"
	kLoginCPU         = "login-cpu"
	kLoginPGCPU       = "login-pg-cpu"
	kLoginClientCPU   = "login-client-cpu"
	kLoginRatio       = "login-ratio"
	kGRPCLoginTPS     = "grpc-login-tps"
	kGRPCLoginP50     = "grpc-login-p50"
	kGRPCLoginP99     = "grpc-login-p99"
	kRESTLoginTPS     = "rest-login-tps"
	kRESTLoginP50     = "rest-login-p50"
	kRESTLoginP99     = "rest-login-p99"
	kGRPCLoginCPU     = "grpc-login-cpu"
	kRESTLoginCPU     = "rest-login-cpu"
	kRESTLoginRatio   = "rest-login-ratio"
	kEd25519TPS       = "ed25519-tps"
	kJWTTPS           = "jwt-tps"
	kJWTCPU           = "jwt-cpu"
	kJWTRatio         = "jwt-ratio"
	kHealthRefreshTPS = "health-refresh-tps"
	kHealthCPU        = "health-cpu"
	kRefreshTPS       = "refresh-tps"
	kRefreshP50       = "refresh-p50"
	kRefreshP99       = "refresh-p99"
	kRefreshCPU       = "refresh-cpu"
	kRefreshPGCPU     = "refresh-pg-cpu"
	kRefreshRatio     = "refresh-ratio"
	kHealthMeTPS      = "health-me-tps"
	kMeTPS            = "me-tps"
	kMeP50            = "me-p50"
	kMeP99            = "me-p99"
	kMeCPU            = "me-cpu"
	kMePGCPU          = "me-pg-cpu"
	kMeRatio          = "me-ratio"
	kHealthAdminTPS   = "health-admin-tps"
	kAdminTPS         = "admin-tps"
	kAdminP50         = "admin-p50"
	kAdminP99         = "admin-p99"
	kAdminCPU         = "admin-cpu"
	kAdminPGCPU       = "admin-pg-cpu"
	kAdminRatio       = "admin-ratio"
	kFillTPS          = "fill-tps"
	kMigrateNoop      = "migrate-noop"
	kSignupTPS        = "signup-tps"
	kOneTPS           = "one-tps"
	kSpreadTPS        = "spread-tps"
	kSpreadP50        = "spread-p50"
	kSpreadP99        = "spread-p99"
	kOneCPU           = "one-cpu"
	kSpreadCPU        = "spread-cpu"
	kOnePGCPU         = "one-pg-cpu"
	kSpreadPGCPU      = "spread-pg-cpu"
	kSpreadRatio      = "spread-ratio"
	kCeiling          = "ceiling"
	kTotal            = "total"
)

// The measures each step fills in; a step that fails marks its own n/a.
var (
	loginKeys     = []string{kHashTPS, kHashCPU, kLoginTPS, kLoginP50, kLoginP99, kLoginCPU, kLoginPGCPU, kLoginClientCPU, kLoginRatio, kSignupTPS}
	restLoginKeys = []string{
		kGRPCLoginTPS, kGRPCLoginP50, kGRPCLoginP99, kRESTLoginTPS, kRESTLoginP50, kRESTLoginP99,
		kGRPCLoginCPU, kRESTLoginCPU, kRESTLoginRatio,
	}
	jwksKeys    = []string{kEd25519TPS, kJWTTPS, kJWTCPU, kJWTRatio}
	sessionKeys = []string{
		kHealthRefreshTPS, kHealthCPU, kRefreshTPS, kRefreshP50, kRefreshP99, kRefreshCPU, kRefreshPGCPU, kRefreshRatio,
		kHealthMeTPS, kMeTPS, kMeP50, kMeP99, kMeCPU, kMePGCPU, kMeRatio,
		kHealthAdminTPS, kAdminTPS, kAdminP50, kAdminP99, kAdminCPU, kAdminPGCPU, kAdminRatio,
	}
	tenantKeys = []string{kFillTPS, kMigrateNoop, kOneTPS, kSpreadTPS, kSpreadP50, kSpreadP99, kOneCPU, kSpreadCPU, kOnePGCPU, kSpreadPGCPU, kSpreadRatio, kCeiling}
	allKeys    = concat(loginKeys, restLoginKeys, jwksKeys, sessionKeys, tenantKeys)
)

func concat(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

// declareMeasures lays out the table for the sizes in cfg.
func declareMeasures(t *benchkit.Table, cfg config) {
	p := password.DefaultParams
	argon := fmt.Sprintf("argon2id (m=%d MiB, t=%d, p=%d)", p.Memory/1024, p.Time, p.Threads)
	lc := fmt.Sprintf("%d clients", cfg.loginClients)
	many := benchkit.FormatCount(cfg.tenants)
	calls := fmt.Sprintf("%d clients", cfg.clients)

	t.Declare(kHashTPS, fmt.Sprintf("%s verify in this process, %d goroutines (baseline)", argon, cfg.hashWorkers), "hashes/s", "baseline")
	t.Declare(kHashCPU, "CPU per argon2id verify, this process", "ms", "")
	t.Declare(kLoginTPS, fmt.Sprintf("Login over gRPC, 1 tenant, a new account per login, %s from %d addresses: throughput", lc, cfg.sourceAddrs), "logins/s", "")
	t.Declare(kLoginP50, "Login latency p50", "ms", "")
	t.Declare(kLoginP99, "Login latency p99", "ms", "")
	t.Declare(kLoginCPU, "identity CPU per Login", "ms", "")
	t.Declare(kLoginPGCPU, "PostgreSQL CPU per Login (all its processes)", "ms", "")
	t.Declare(kLoginClientCPU, "this program's CPU per Login (the gRPC client)", "ms", "")
	t.Declare(kLoginRatio, "Login ÷ argon2id throughput, interleaved", "ratio", fmt.Sprintf("≥ %.2f", minLoginVsHash))
	t.Declare(kSignupTPS, fmt.Sprintf("SignUp over gRPC while setting up, %d clients: throughput", cfg.signupClients), "sign-ups/s", "")

	t.Declare(kEd25519TPS, "bare ed25519.Verify of access tokens, 1 goroutine (floor under JWT verification)", "verifications/s", "")
	t.Declare(kJWTTPS, "access-token verification with the JWKS (GetJwks once; golang-jwt EdDSA + claims), 1 goroutine", "verifications/s per core", "")
	t.Declare(kJWTCPU, "CPU per access-token verification", "µs", "")
	t.Declare(kJWTRatio, "access-token verification ÷ bare ed25519.Verify throughput", "ratio", "")

	t.Declare(kHealthRefreshTPS, fmt.Sprintf("grpc.health.v1 Check on identity (baseline), %s", calls), "calls/s", "baseline")
	t.Declare(kHealthCPU, "identity CPU per health Check", "µs", "")
	t.Declare(kRefreshTPS, fmt.Sprintf("RefreshSession, a session chain per client, %s: throughput", calls), "calls/s", "")
	t.Declare(kRefreshP50, "RefreshSession latency p50", "ms", "")
	t.Declare(kRefreshP99, "RefreshSession latency p99", "ms", "")
	t.Declare(kRefreshCPU, "identity CPU per RefreshSession", "µs", "")
	t.Declare(kRefreshPGCPU, "PostgreSQL CPU per RefreshSession", "µs", "")
	t.Declare(kRefreshRatio, "RefreshSession ÷ health throughput, interleaved", "ratio", fmt.Sprintf("≥ %.2f", minCallVsHealth))
	t.Declare(kHealthMeTPS, fmt.Sprintf("grpc.health.v1 Check on identity (baseline), %s", calls), "calls/s", "baseline")
	t.Declare(kMeTPS, fmt.Sprintf("GetCurrentUser with an access token, %s: throughput", calls), "calls/s", "")
	t.Declare(kMeP50, "GetCurrentUser latency p50", "ms", "")
	t.Declare(kMeP99, "GetCurrentUser latency p99", "ms", "")
	t.Declare(kMeCPU, "identity CPU per GetCurrentUser", "µs", "")
	t.Declare(kMePGCPU, "PostgreSQL CPU per GetCurrentUser", "µs", "")
	t.Declare(kMeRatio, "GetCurrentUser ÷ health throughput, interleaved", "ratio", fmt.Sprintf("≥ %.2f", minCallVsHealth))
	t.Declare(kHealthAdminTPS, fmt.Sprintf("grpc.health.v1 Check on identity (baseline), %s", calls), "calls/s", "baseline")
	t.Declare(kAdminTPS, fmt.Sprintf("admin path: GetTenantSettings with a tenant admin's access token, %s: throughput", calls), "calls/s", "")
	t.Declare(kAdminP50, "admin path latency p50", "ms", "")
	t.Declare(kAdminP99, "admin path latency p99", "ms", "")
	t.Declare(kAdminCPU, "identity CPU per admin call", "µs", "")
	t.Declare(kAdminPGCPU, "PostgreSQL CPU per admin call", "µs", "")
	t.Declare(kAdminRatio, "admin path ÷ health throughput, interleaved", "ratio", "")

	t.Declare(kFillTPS, fmt.Sprintf("CreateTenant through the registry up to %s tenants, %d clients: throughput", many, cfg.fillClients), "tenants/s", "")
	t.Declare(kMigrateNoop, fmt.Sprintf("identity restart → \"tenant schemas migrated\", %s tenants all current", many), "s", "")
	t.Declare(kOneTPS, fmt.Sprintf("Login, 1 tenant, a new account per login, %s (baseline)", lc), "logins/s", "baseline")
	t.Declare(kSpreadTPS, fmt.Sprintf("Login spread over all %s tenants, a new account per login, %s", many, lc), "logins/s", "")
	t.Declare(kSpreadP50, "Login spread over all tenants: p50", "ms", "")
	t.Declare(kSpreadP99, "Login spread over all tenants: p99", "ms", "")
	t.Declare(kOneCPU, "identity CPU per Login, 1 tenant", "ms", "")
	t.Declare(kSpreadCPU, "identity CPU per Login, spread over all tenants", "ms", "")
	t.Declare(kOnePGCPU, "PostgreSQL CPU per Login, 1 tenant", "ms", "")
	t.Declare(kSpreadPGCPU, "PostgreSQL CPU per Login, spread over all tenants", "ms", "")
	t.Declare(kSpreadRatio, fmt.Sprintf("Login throughput %s tenants ÷ 1 tenant, interleaved", many), "ratio", fmt.Sprintf("≥ %.2f", minSpreadVsOne))

	t.Declare(kGRPCLoginTPS, fmt.Sprintf("Login over gRPC (baseline), spread over all %s tenants, a new account per login, %s from %d addresses: throughput", many, lc, cfg.sourceAddrs), "logins/s", "baseline")
	t.Declare(kGRPCLoginP50, "Login over gRPC: p50", "ms", "")
	t.Declare(kGRPCLoginP99, "Login over gRPC: p99", "ms", "")
	t.Declare(kRESTLoginTPS, fmt.Sprintf("REST POST /v1/auth:login (grpc-gateway, keep-alive HTTP/1.1), spread over all %s tenants, a new account per login, %s from %d addresses: throughput", many, lc, cfg.sourceAddrs), "logins/s", "")
	t.Declare(kRESTLoginP50, "REST POST /v1/auth:login: p50", "ms", "")
	t.Declare(kRESTLoginP99, "REST POST /v1/auth:login: p99", "ms", "")
	t.Declare(kGRPCLoginCPU, "identity CPU per Login over gRPC", "ms", "")
	t.Declare(kRESTLoginCPU, "identity CPU per REST login (gateway and gRPC call)", "ms", "")
	t.Declare(kRESTLoginRatio, "REST login ÷ gRPC Login throughput, interleaved", "ratio", fmt.Sprintf("≥ %.2f", minRESTVsGRPC))
	l := ratelimit.LoginPerTenant
	t.Declare(kCeiling, fmt.Sprintf("most of the one tenant's login ceiling in use after a slice (%s: %d per %s, burst %d)", l.Name, l.Rate, l.Per, l.Burst),
		"logins of burst", "")
	t.Declare(kTotal, "total run time", "s", fmt.Sprintf("< %g", maxTotalRunTime.Seconds()))
}

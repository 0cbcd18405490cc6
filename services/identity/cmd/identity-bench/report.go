package main

import (
	"fmt"
	"runtime"
	"time"

	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/platform/benchkit"
)

// header describes the machine and the run above the table.
func (b *bench) header() benchkit.Header {
	c := b.cfg
	return benchkit.Header{
		Title: "Tenantry identity benchmark",
		Lines: []string{
			benchkit.DateLine(b.start, b.ended),
			benchkit.MachineLine(b.loadAvg),
			fmt.Sprintf("Software: %s; bench built with %s; identity %s, registry %s", b.cluster.Description(), runtime.Version(), c.identityBin, c.registryBin),
			fmt.Sprintf("Sizes: %s tenants; %d rounds of %s of each load; %d login clients from %d source addresses; %d clients over %d connections for health, RefreshSession and GetCurrentUser",
				benchkit.FormatCount(c.tenants), c.rounds, c.duration, c.loginClients, c.sourceAddrs, c.clients, c.conns),
		},
	}
}

// methodNotes say how the measures were taken, under the table.
func (b *bench) methodNotes() {
	c := b.cfg
	_, pairs := benchkit.SlicePlan(c.rounds, c.duration)
	slice := min(c.duration, benchkit.MaxSlice)
	b.tbl.Note("Everything runs on this machine's %d cores at once: identity, the registry, PostgreSQL and this program's gRPC "+
		"clients. Identity hashes with %d slots (its default, GOMAXPROCS), so while logins run, the clients and PostgreSQL take "+
		"CPU that hashing would otherwise have; the in-process baseline has the cores to itself (identity idle). Login ÷ "+
		"argon2id is therefore a floor for identity's own overhead; identity's CPU per login (utime+stime from /proc over the "+
		"same slices) beside the CPU per in-process verify is the steadier comparison. Each side runs at its capacity: the "+
		"baseline with %d goroutines (one per core: more only share the cores' caches among more 19 MiB buffers), Login with "+
		"%d clients, more than identity's hash slots, so that a slot freed while a login does its database work is taken by "+
		"the next login at once, as under real load.", runtime.NumCPU(), runtime.GOMAXPROCS(0), c.hashWorkers, c.loginClients)
	b.tbl.Note("Interleaving: each comparison runs both loads %s in all (-rounds × -duration) in %d pairs of slices of %s, "+
		"order A B B A A B…, after a %s warm-up of each. Throughput is the median slice; a ratio is the median over adjacent "+
		"pairs of slices, which share one moment of the machine's load; p50/p99 cover every call (histogram, < 1%% error).",
		time.Duration(c.rounds)*c.duration, pairs, slice, b.warmup())
	l := ratelimit.LoginPerAddress
	b.tbl.Note("Rate limits are identity's defaults (a tenant's login ceiling, max_logins_per_second, is left at its default). Each login uses an account no other "+
		"login of the same measure used (sign-ups wait out the tenant's sign-up ceiling, signup.tenant, at the login ceiling's rate; the per-address sign-up limit is raised out of the way), and logins rotate over %d connections bound to "+
		"127.0.0.2 and up: identity keys its per-address limits on the connection's peer address, so these are %d distinct "+
		"clients to it, each far below %s (%d a %s, burst %d, per tenant). %s (%d/s, burst %d) applies per tenant to the "+
		"one-tenant loads; the most of its burst seen in use after a slice is in the table. Refused calls (ResourceExhausted) "+
		"would be counted as failures and named below.",
		c.sourceAddrs, c.sourceAddrs, l.Name, l.Rate, l.Per, l.Burst, ratelimit.LoginPerTenant.Name,
		ratelimit.LoginPerTenant.Rate, ratelimit.LoginPerTenant.Burst)
	b.tbl.Note("Login: email and password, the tenant in x-tenant metadata, plaintext gRPC over loopback TCP; the answer's tokens " +
		"and user are checked. Accounts were signed up through AuthService.SignUp (tenant defaults: open sign-up, optional " +
		"verification); the bench waited for identity's mail outbox to drain (mails go to identity's log, which is dropped) " +
		"before measuring. PostgreSQL runs with fsync and synchronous_commit on, so each login's commit is durable.")
	b.tbl.Note("REST vs gRPC Login: both spread over every tenant (in one tenant they would meet its login.tenant limit) "+
		"with %d clients, taking accounts from one pool in turn, so no account logs in twice in the measure, and rotating over the same %d source addresses. REST is POST %s with a JSON body and "+
		"Host: {tenant}.localhost:PORT, through one http.Client per source address (its net.Dialer bound to that address, "+
		"keep-alive HTTP/1.1, up to %d idle connections each); the answer's tokens and user are checked. The gateway runs in "+
		"identity and calls its gRPC server in process, so both go through the same interceptors and rate limits; a 429 would "+
		"count as a refusal.", c.loginClients, c.sourceAddrs, restLoginPath, c.loginClients)
	b.tbl.Note("Access-token verification: each tenant's JWKS fetched once with TokenService.GetJwks (each tenant signs with its own keys); then, on one goroutine, golang-jwt " +
		"parses each real access token from the logins (EdDSA only, typ at+jwt, kid from the JWKS, iss, exp, iat, and " +
		"sub/tid/sid present), as a calling service would. The bare ed25519.Verify of the same tokens' signing input is the " +
		"floor; both are interleaved. \"Per core\": one goroutine uses at most one core.")
	b.tbl.Note("RefreshSession: each of the %d clients logs in once and then follows its own session chain, sending the refresh "+
		"token it got last. GetCurrentUser: each client sends its session's access token. Health checks carry the same "+
		"metadata as the calls they are compared with; identity does no work for it on health. REST GET %s: the same "+
		"clients and tokens, keep-alive HTTP/1.1 (one connection per client, the tenant host in the Host header), against "+
		"GetCurrentUser over gRPC (%d connections shared); each answer must name the client's account.", c.clients, currentUserPath, c.conns)
	b.tbl.Note("OpenID Provider (issue 11): the one tenant's issuer, http://%s.localhost:PORT, reached over loopback TCP with "+
		"keep-alive HTTP/1.1 (connections dialled to identity's HTTP port, the tenant host in URLs and Host headers); %d callers, "+
		"rounds of %s (at most %s: each code exchanged is prepared beforehand, and the run has a time budget). Clients are "+
		"registered with OAuthClientService and the operator's token: two confidential first-party web apps (authorization_code "+
		"and refresh_token, scopes openid and offline_access, redirect URI %s; one with the default RS256, one with EdDSA) and "+
		"two client_credentials clients (scope %s; RS256 and EdDSA). Token requests authenticate with client_secret_basic. "+
		"Codes: %d browsers (cookie jars) log in once on the tenant's login page, then authorize silently (SSO): GET "+
		"/oauth/authorize with a PKCE S256 challenge of its own → /oauth/login → the redirect with the code, %d at once; the "+
		"pool is sized from the exchange rate of a first batch (× %.1f), and only the POSTs to /oauth/token (code, "+
		"redirect_uri, code_verifier) are timed; each answer must carry an ID token and a refresh token. Refresh: each caller "+
		"rotates its own grant's chain. Per core: grants per second ÷ the machine's %d cores, which identity, PostgreSQL and this "+
		"program share (GOMAXPROCS, identity's default as this program's, is %d); Keycloak's figure is per vCPU given to Keycloak alone, with a new "+
		"TLS connection per grant, so identity's own CPU per grant (and 1 s ÷ it) is printed too. Discovery, JWKS and /healthz: "+
		"the answer's status and body are checked, once parsed at set-up. The health baseline is grpc.health.v1 Check over "+
		"gRPC, as elsewhere in this table; /healthz on the same HTTP server shows what HTTP/1.1 itself costs against it.",
		tenantSlug(oneTenantIndex), c.clients, b.oauthRound(), oauthRoundLimit, callbackURI, serviceScope, c.clients, c.clients,
		codeMargin, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	b.tbl.Note("Total run time covers this program from start to the table, not `make build` or `go run` compiling it.")
}

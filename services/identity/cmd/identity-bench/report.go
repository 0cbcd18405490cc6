package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"tenantry.dev/identity/internal/ratelimit"
)

// header describes the machine and the run above the table.
func (b *bench) header() header {
	c := b.cfg
	pg := b.pgInfo
	if pg == "" {
		pg = "not started"
	}
	host, _ := os.Hostname()
	return header{
		title: "Tenantry identity benchmark",
		lines: []string{
			fmt.Sprintf("Date: %s (UTC), run took %s", b.start.UTC().Format("2006-01-02 15:04"), b.ended.Sub(b.start).Round(time.Second)),
			fmt.Sprintf("Machine: %s, %s, %d cores (GOMAXPROCS %d), %s RAM, load average %s at start and %s at end",
				host, cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), memTotal(), b.loadAvg, loadAverage()),
			fmt.Sprintf("Software: %s; bench built with %s; identity %s, registry %s", pg, runtime.Version(), c.identityBin, c.registryBin),
			fmt.Sprintf("Sizes: %s tenants; %d rounds of %s of each load; %d login clients from %d source addresses; %d clients over %d connections for health, RefreshSession and GetCurrentUser",
				formatCount(c.tenants), c.rounds, c.duration, c.loginClients, c.sourceAddrs, c.clients, c.conns),
		},
	}
}

// methodNotes say how the measures were taken, under the table.
func (b *bench) methodNotes() {
	c := b.cfg
	_, pairs := slicePlan(c.rounds, c.duration)
	slice := min(c.duration, maxSlice)
	b.tbl.note("Everything runs on this machine's %d cores at once: identity, the registry, PostgreSQL and this program's gRPC "+
		"clients. Identity hashes with %d slots (its default, GOMAXPROCS), so while logins run, the clients and PostgreSQL take "+
		"CPU that hashing would otherwise have; the in-process baseline has the cores to itself (identity idle). Login ÷ "+
		"argon2id is therefore a floor for identity's own overhead; identity's CPU per login (utime+stime from /proc over the "+
		"same slices) beside the CPU per in-process verify is the steadier comparison.", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	b.tbl.note("Interleaving: each comparison runs both loads %s in all (-rounds × -duration) in %d pairs of slices of %s, "+
		"order A B B A A B…, after a %s warm-up of each. Throughput is the median slice; a ratio is the median over adjacent "+
		"pairs of slices, which share one moment of the machine's load; p50/p99 cover every call (histogram, < 1%% error).",
		time.Duration(c.rounds)*c.duration, pairs, slice, b.warmup())
	l := ratelimit.LoginPerAddress
	b.tbl.note("Rate limits are identity's own, unchanged: there is no configuration for them. Each login uses an account no other "+
		"login of the same measure used (sign-ups are not rate limited), and logins rotate over %d connections bound to "+
		"127.0.0.2 and up: identity keys its per-address limits on the connection's peer address, so these are %d distinct "+
		"clients to it, each far below %s (%d a %s, burst %d, per tenant). %s (%d/s, burst %d) applies per tenant to the "+
		"one-tenant loads; the most of its burst seen in use after a slice is in the table. Refused calls (ResourceExhausted) "+
		"would be counted as failures and named below.",
		c.sourceAddrs, c.sourceAddrs, l.Name, l.Rate, l.Per, l.Burst, ratelimit.LoginPerTenant.Name,
		ratelimit.LoginPerTenant.Rate, ratelimit.LoginPerTenant.Burst)
	b.tbl.note("Login: email and password, the tenant in x-tenant metadata, plaintext gRPC over loopback TCP; the answer's tokens " +
		"and user are checked. Accounts were signed up through AuthService.SignUp (tenant defaults: open sign-up, optional " +
		"verification); the bench waited for identity's mail outbox to drain (mails go to identity's log, which is dropped) " +
		"before measuring. PostgreSQL runs with fsync and synchronous_commit on, so each login's commit is durable.")
	b.tbl.note("Access-token verification: the JWKS fetched once with TokenService.GetJwks; then, on one goroutine, golang-jwt " +
		"parses each real access token from the logins (EdDSA only, typ at+jwt, kid from the JWKS, iss, exp, iat, and " +
		"sub/tid/sid present), as a calling service would. The bare ed25519.Verify of the same tokens' signing input is the " +
		"floor; both are interleaved. \"Per core\": one goroutine uses at most one core.")
	b.tbl.note("RefreshSession: each of the %d clients logs in once and then follows its own session chain, sending the refresh "+
		"token it got last. GetCurrentUser: each client sends its session's access token. Health checks carry the same "+
		"metadata as the calls they are compared with; identity does no work for it on health.", c.clients)
	b.tbl.note("Total run time covers this program from start to the table, not `make build` or `go run` compiling it.")
}

// cpuModel returns the first CPU's model name from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if key, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return "unknown CPU"
}

// memTotal returns MemTotal from /proc/meminfo in GiB.
func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	var kib uint64
	for line := range strings.Lines(string(b)) {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kib); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
		}
	}
	return "unknown"
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

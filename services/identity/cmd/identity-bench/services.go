package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"tenantry.dev/identity/internal/store"
	"tenantry.dev/platform/benchkit"
	"tenantry.dev/platform/tenantrole"
)

// secrets are what the services are started with: random per run, never
// printed.
type secrets struct {
	operator         string
	service          string
	keyEncryptionKey string
	componentKey     string
}

func newSecrets() secrets {
	return secrets{operator: benchkit.RandomToken(), service: benchkit.RandomToken(), keyEncryptionKey: benchkit.RandomToken() + benchkit.RandomToken(),
		componentKey: benchkit.RandomToken() + benchkit.RandomToken()}
}

// startRegistry runs the tenant-registry binary on databaseURL. Everything
// it writes (at warn level) goes to logs, prefixed.
func startRegistry(ctx context.Context, bin, databaseURL string, sec secrets, logs io.Writer) (*benchkit.Process, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	return benchkit.StartProcess(ctx, benchkit.ProcessOptions{
		Name: "registry",
		Bin:  bin,
		Args: []string{
			"-grpc-addr", addr,
			"-http-addr", "", // the REST gateway is not measured here; keep its port free
			"-database-url", databaseURL,
			"-operator-token", sec.operator,
			"-service-token", sec.service,
			"-component-key", sec.componentKey,
			"-log-level", "warn",
		},
		Addr:      addr,
		OnLine:    benchkit.PrefixLines("registry: ", logs),
		Forwarded: "its warnings",
	})
}

// migratedEvent is identity's "tenant schemas migrated" record.
type migratedEvent struct {
	at       time.Time // when this process read the line
	tenants  int
	upToDate int
	failed   int
	took     string // identity's own measure of MigrateAll
}

// identityProcess is the identity binary as a child process.
type identityProcess struct {
	*benchkit.Process
	// httpAddr is where its REST gateway listens.
	httpAddr string
	// migrated delivers identity's "tenant schemas migrated" record once.
	migrated chan migratedEvent
}

// startIdentity runs the identity binary on databaseURL, the registry's
// database (tenant schemas live there), following the registry at
// registryAddr. logLevel is identity's; only its warnings and errors reach
// logs: at info it logs every call and, with no SMTP server, every mail
// (with its single-use links), all of which is dropped here. Its "tenant
// schemas migrated" record is delivered on migrated. env adds settings to
// its environment.
func startIdentity(ctx context.Context, bin, databaseURL, registryAddr, logLevel string, sec secrets, logs io.Writer, env ...string) (*identityProcess, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	migrated := make(chan migratedEvent, 1)
	var once sync.Once
	forward := benchkit.PrefixLines("identity: ", logs)
	onLine := func(line string) {
		attrs, ok := parseLogLine(line)
		if ok && attrs["msg"] == "tenant schemas migrated" {
			at := time.Now()
			once.Do(func() {
				migrated <- migratedEvent{
					at: at, tenants: atoiOr(attrs["tenants"], -1), upToDate: atoiOr(attrs["up_to_date"], -1),
					failed: atoiOr(attrs["failed"], -1), took: attrs["took"],
				}
			})
		}
		if logLevelAtLeastWarn(attrs, ok) {
			forward(line)
		}
	}
	p, err := benchkit.StartProcess(ctx, benchkit.ProcessOptions{
		Name: "identity",
		Bin:  bin,
		Args: []string{
			"-grpc-addr", addr,
			"-http-addr", httpAddr,
			"-database-url", databaseURL,
			"-registry-addr", registryAddr,
			"-operator-token", sec.operator,
			"-service-token", sec.service,
			"-key-encryption-key", sec.keyEncryptionKey,
			"-component-token", tenantrole.ComponentToken([]byte(sec.componentKey), store.Component),
			"-issuer", benchIssuer,
			"-log-level", logLevel,
			// Thousands of accounts are signed up in one tenant from
			// -source-addrs addresses: far more from each than the
			// per-address sign-up limit lets a real client make.
			"-signup-limit-per-address", "1000000",
		},
		Addr:      addr,
		Env:       env,
		OnLine:    onLine,
		Forwarded: "its warnings",
	})
	if err != nil {
		return nil, err
	}
	return &identityProcess{Process: p, httpAddr: httpAddr, migrated: migrated}, nil
}

// waitMigrated waits for identity's "tenant schemas migrated" record.
func (p *identityProcess) waitMigrated(ctx context.Context, timeout time.Duration) (migratedEvent, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev := <-p.migrated:
		return ev, nil
	case <-p.Exited():
		return migratedEvent{}, p.Running()
	case <-timer.C:
		return migratedEvent{}, fmt.Errorf("identity logged no \"tenant schemas migrated\" within %s", timeout)
	case <-ctx.Done():
		return migratedEvent{}, context.Cause(ctx)
	}
}

func atoiOr(s string, fallback int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fallback
	}
	return n
}

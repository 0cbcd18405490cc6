package main

import (
	"context"
	"io"
	"time"

	"tenantry.dev/platform/benchkit"
)

const (
	// servingTimeout bounds the wait for a started registry to report
	// SERVING; loading 100,000 tenants is part of its start-up.
	servingTimeout = 3 * time.Minute
	// healthPoll is how often a starting registry is asked for its health;
	// the start-up-to-SERVING measure is known to within it.
	healthPoll = 50 * time.Millisecond
)

// tokens are the bearer tokens the registry is started with: random per
// run, never printed.
type tokens struct {
	operator string
	service  string
}

// startRegistry runs the registry binary on databaseURL, listening on a
// free loopback port, and returns once its health service reports SERVING.
// Its output goes to logs, each line prefixed with name.
func startRegistry(ctx context.Context, bin, databaseURL string, tok tokens, name string, logs io.Writer) (*benchkit.Process, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	return benchkit.StartProcess(ctx, benchkit.ProcessOptions{
		Name: "the registry",
		Bin:  bin,
		Args: []string{
			"-grpc-addr", addr,
			"-http-addr", "", // the REST gateway is not measured here; keep its port free
			"-database-url", databaseURL,
			"-operator-token", tok.operator,
			"-service-token", tok.service,
			"-log-level", "warn",
		},
		Addr:           addr,
		OnLine:         benchkit.PrefixLines(name+": ", logs),
		ServingTimeout: servingTimeout,
		HealthPoll:     healthPoll,
	})
}

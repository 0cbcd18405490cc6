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

// registryProcess is the registry binary as a child process, serving gRPC
// on Addr and its REST gateway on httpAddr.
type registryProcess struct {
	*benchkit.Process
	httpAddr string
}

// startRegistry runs the registry binary on databaseURL, listening for gRPC
// and for REST on free loopback ports, and returns once its health service
// reports SERVING. Its output goes to logs, each line prefixed with name;
// env adds settings to its environment.
func startRegistry(ctx context.Context, bin, databaseURL string, tok tokens, name string, logs io.Writer, env ...string) (*registryProcess, error) {
	addr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := benchkit.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := benchkit.StartProcess(ctx, benchkit.ProcessOptions{
		Name: "the registry",
		Bin:  bin,
		Args: []string{
			"-grpc-addr", addr,
			"-http-addr", httpAddr,
			"-database-url", databaseURL,
			"-operator-token", tok.operator,
			"-service-token", tok.service,
			"-log-level", "warn",
		},
		Addr:           addr,
		Env:            env,
		OnLine:         benchkit.PrefixLines(name+": ", logs),
		ServingTimeout: servingTimeout,
		HealthPoll:     healthPoll,
	})
	if err != nil {
		return nil, err
	}
	return &registryProcess{Process: p, httpAddr: httpAddr}, nil
}

// Command identity serves Tenantry's accounts service over gRPC: sign-up,
// verification, login, sessions, password reset and user administration,
// inside each tenant. Configuration comes from flags or TENANTRY_*
// environment variables; run with -h for the list.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"tenantry.dev/identity/internal/config"
	"tenantry.dev/identity/internal/server"
	"tenantry.dev/platform/logging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "identity:", err)
		os.Exit(1)
	}
}

// defaultGOGC replaces Go's GOGC of 100 unless GOGC is set. Each password
// check allocates argon2id's 19 MiB, garbage the moment the check ends; with
// identity's small live heap, a GC target of twice that heap made nearly
// every login start a GC cycle and fault the memory the GC had handed back
// to the kernel in again (2-3 ms of CPU per login, measured by make bench).
// At 400 several logins share a cycle, for a heap of up to about five times
// the live one (some 200 MiB under a login flood).
const defaultGOGC = 400

func run() error {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGOGC)
	}
	cfg, err := config.Load(os.Args[1:], os.LookupEnv)
	if err != nil {
		return err
	}
	logger, err := logging.New(os.Stderr, "identity", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := server.New(ctx, cfg, logger, server.Options{})
	if err != nil {
		return err
	}
	return app.Run(ctx)
}

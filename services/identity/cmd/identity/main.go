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
	"tenantry.dev/identity/internal/password"
	"tenantry.dev/identity/internal/server"
	"tenantry.dev/platform/logging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "identity:", err)
		os.Exit(1)
	}
}

func run() error {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(password.ServiceGOGC) // see its documentation
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

// Command tenant-registry serves Tenantry's control plane over gRPC: it
// provisions one PostgreSQL schema per tenant and resolves hosts to tenants.
// Configuration comes from flags or TENANTRY_* environment variables; run
// with -h for the list.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"tenantry.dev/platform/logging"
	"tenantry.dev/tenant-registry/internal/config"
	"tenantry.dev/tenant-registry/internal/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tenant-registry:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.Load(os.Args[1:], os.LookupEnv)
	if err != nil {
		return err
	}
	logger, err := logging.New(os.Stderr, "tenant-registry", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := server.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return app.Run(ctx)
}

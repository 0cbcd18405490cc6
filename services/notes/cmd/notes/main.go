// Command notes runs the example product service built on Tenantry; see
// the README's "Build your product on Tenantry".
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"tenantry.dev/notes"
	"tenantry.dev/platform/logging"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := notes.LoadConfig(os.Args[1:], nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "notes: %v\n", err)
		return 2
	}
	// The trace and span ids of a request's lines, when traces are on.
	logger := slog.New(logging.WithTraceContext(slog.NewTextHandler(os.Stderr, nil)))
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			logger.Error("notes: CPU profile", "error", err)
			return 1
		}
		defer stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := notes.New(ctx, cfg, logger)
	if err != nil {
		logger.Error("notes: start", "error", err)
		return 1
	}
	if err := app.Run(ctx); err != nil {
		logger.Error("notes: stopped", "error", err)
		return 1
	}
	return 0
}

// startCPUProfile profiles the process into path until the returned
// function is called, at exit (SIGTERM included: it ends Run).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

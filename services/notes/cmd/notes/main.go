// Command notes runs the example product service built on Tenantry; see
// the README's "Build your product on Tenantry".
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"tenantry.dev/notes"
)

func main() {
	cfg, err := notes.LoadConfig(os.Args[1:], nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "notes: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := notes.New(ctx, cfg, logger)
	if err != nil {
		logger.Error("notes: start", "error", err)
		os.Exit(1)
	}
	if err := app.Run(ctx); err != nil {
		logger.Error("notes: stopped", "error", err)
		os.Exit(1)
	}
}

// Package logging builds the structured logger every Tenantry binary uses,
// so that all services log in the same shape: log/slog, text for people or
// JSON for machines, with the service's name on every record.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a logger writing to w at level in format ("text" or "json"),
// tagging every record with service, and makes it slog's default.
func New(w io.Writer, service string, level slog.Level, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler
	switch format {
	case "text":
		handler = slog.NewTextHandler(w, opts)
	case "json":
		handler = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: use text or json", format)
	}
	logger := slog.New(handler).With("service", service)
	slog.SetDefault(logger)
	return logger, nil
}

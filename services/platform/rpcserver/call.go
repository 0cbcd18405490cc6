package rpcserver

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"

	"tenantry.dev/platform/incoming"
)

// HeaderRequestID is the metadata key of the request id, both ways.
const HeaderRequestID = "x-request-id"

// maxRequestIDLen bounds a caller-chosen request id, which lands in every
// log line of the call.
const maxRequestIDLen = 128

// call is what the interceptors know about one call.
type call struct {
	requestID string
	logger    *slog.Logger

	mu    sync.Mutex
	attrs []slog.Attr
}

// callKey is the context key of the *call.
type callKey struct{}

// callFrom returns the current call, or nil outside a Server's call.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// RequestID returns the current call's request id, or "" outside a call.
func RequestID(ctx context.Context) string {
	if c := callFrom(ctx); c != nil {
		return c.requestID
	}
	return ""
}

// AddLogAttrs adds attributes to the log record of the current call, e.g.
// AddLogAttrs(ctx, slog.String("tenant", slug)), so that the one line per
// call says which tenant it was about. Outside a call it does nothing.
// Never add secrets.
func AddLogAttrs(ctx context.Context, attrs ...slog.Attr) {
	c := callFrom(ctx)
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attrs = append(c.attrs, attrs...)
}

// Logger returns the server's logger with the current call's method and
// request id, for handlers that log more than the one line per call.
// Outside a call it returns slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	if c := callFrom(ctx); c != nil {
		return c.logger
	}
	return slog.Default()
}

// logAttrs returns a copy of the attributes added so far.
func (c *call) logAttrs() []slog.Attr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]slog.Attr(nil), c.attrs...)
}

// requestIDFrom returns the caller's request id if it is sane, else a new
// one.
func requestIDFrom(ctx context.Context) string {
	// One key, not metadata.FromIncomingContext: that copies the whole
	// metadata, keys lowercased, on every call; and through incoming, as
	// most callers send none (see incoming for what a miss costs).
	if ids := incoming.Values(ctx, HeaderRequestID); len(ids) == 1 && SaneRequestID(ids[0]) {
		return ids[0]
	}
	return rand.Text()
}

// SaneRequestID reports whether a caller-chosen request id may be used:
// 1 to 128 printable ASCII characters without spaces, so that ids cannot
// forge or break log lines. The REST gateway applies the same rule.
func SaneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

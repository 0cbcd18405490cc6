// Package incoming reads a gRPC call's incoming headers by name, cheaply.
//
// grpc-go's metadata.ValueFromIncomingContext looks a key up in the call's
// metadata and, when the key is absent, walks the whole map comparing
// every key case-insensitively (metadata put into a context by hand may
// have keys in any case). Headers a server asks for on every call are
// mostly absent: traceparent, tracestate and baggage on a call that
// carries no trace, x-request-id when the caller sets none. perf on
// identity under load put that walk at 1.6% of its CPU with tracing on
// and 0.9% with it off (issue 13's "tracing costs under 5%").
// metadata.FromIncomingContext is dearer still: it copies the whole map.
//
// A server built by rpcserver installs Tap as its tap handle: gRPC calls
// it for every new stream with the headers as received, HTTP/2 header
// names, always lowercase; Tap keeps that map in the call's context, and
// Values reads it with one map index. Where no tap ran (a handler called
// in-process, an interceptor in a unit test), Values falls back to
// metadata.ValueFromIncomingContext.
package incoming

import (
	"context"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/tap"
)

type headersKey struct{}

// Tap is a tap.ServerInHandle that keeps the call's headers for Values.
// It refuses nothing.
func Tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	return context.WithValue(ctx, headersKey{}, info.Header), nil
}

// Values returns the values of the incoming header key, which must be
// lowercase. The slice is the call's own: callers must not modify it.
// They are the headers as the client sent them: metadata an interceptor
// put in the context in their place (metadata.NewIncomingContext) is not
// seen where the tap ran.
func Values(ctx context.Context, key string) []string {
	if md, ok := ctx.Value(headersKey{}).(metadata.MD); ok {
		return md[key]
	}
	return metadata.ValueFromIncomingContext(ctx, key)
}

// Value returns the first value of the incoming header key (lowercase),
// or "".
func Value(ctx context.Context, key string) string {
	if v := Values(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

package restgateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"tenantry.dev/platform/rpcserver"
)

// headerRequestID is the metadata key of the request id, as rpcserver
// reads it.
const headerRequestID = "x-request-id"

// request is what the gateway knows about one HTTP request.
type request struct {
	origin origin
	id     string

	mu    sync.Mutex
	attrs []slog.Attr
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

func originFrom(ctx context.Context) origin {
	if r := requestFrom(ctx); r != nil {
		return r.origin
	}
	return origin{}
}

// RequestHost returns the host (lower case, without port) an HTTP request
// through a Gateway asked for: the Host header, or X-Forwarded-Host from a
// trusted proxy. It is "" outside a Gateway's request.
func RequestHost(r *http.Request) string { return originFrom(r.Context()).host }

// RequestAuthority is RequestHost with the port the client asked for, if
// it named one ("acme.localhost:8080"): what a URL of this request's
// origin must hold, such as an OpenID Provider's issuer.
func RequestAuthority(r *http.Request) string { return originFrom(r.Context()).authority }

// RequestClientIP returns the address of the client of an HTTP request
// through a Gateway, as the gateway passes it to gRPC calls (see ClientIP):
// the TCP peer, or from a trusted proxy the X-Forwarded-For hop it names.
// Extra routes that act for a client themselves use it for rate limits and
// audit records. It is "" outside a Gateway's request.
func RequestClientIP(r *http.Request) string { return originFrom(r.Context()).clientIP }

// RequestUserAgent returns r's User-Agent as the gateway passes it to gRPC
// calls (see UserAgent): cut to at most 512 bytes.
func RequestUserAgent(r *http.Request) string { return truncateUTF8(r.UserAgent(), maxUserAgentBytes) }

// RequestAuthorization returns the values of r's Authorization headers
// that the gateway passes to gRPC calls as "authorization" metadata: every
// one that gRPC metadata can carry (printable ASCII); grpc-gateway drops the
// others. Extra routes that check a caller's token themselves, with
// authn.Guard.AuthorizeHeader, read it here so that they accept and refuse
// exactly what the call through the gateway would.
func RequestAuthorization(r *http.Request) []string {
	values := r.Header.Values("Authorization")
	for _, v := range values {
		if !printableASCII(v) {
			// Rare: copy, keeping the request's header as it is.
			kept := make([]string, 0, len(values))
			for _, v := range values {
				if printableASCII(v) {
					kept = append(kept, v)
				}
			}
			return kept
		}
	}
	return values
}

// printableASCII reports whether s is a value gRPC metadata can carry
// under a text key, as grpc-gateway checks it.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// AddLogAttrs adds attributes to the access-log record of the current
// request, e.g. the tenant. Never add secrets.
func AddLogAttrs(ctx context.Context, attrs ...slog.Attr) {
	req := requestFrom(ctx)
	if req == nil {
		return
	}
	req.mu.Lock()
	defer req.mu.Unlock()
	req.attrs = append(req.attrs, attrs...)
}

// withRequest wraps every request: it works out the origin and request id,
// enforces the body limit, and writes the access log.
func (g *Gateway) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		req := &request{origin: originOf(r, g.cfg.TrustedProxies), id: r.Header.Get("X-Request-Id")}
		if !rpcserver.SaneRequestID(req.id) {
			req.id = rand.Text()
		}
		// The gRPC layer takes the id from this header, so both logs agree.
		r.Header.Set("X-Request-Id", req.id)
		w.Header().Set("X-Request-Id", req.id)
		r = r.WithContext(context.WithValue(r.Context(), requestKey{}, req))
		rec := &recorder{ResponseWriter: w}

		if err := g.bufferBody(w, r); err != nil {
			WriteError(rec, r, err)
		} else {
			next.ServeHTTP(rec, r)
		}
		g.logRequest(r, req, rec, start)
	})
}

// bufferBody reads the request body into memory, refusing one over the
// limit before anything else sees it.
func (g *Gateway) bufferBody(w http.ResponseWriter, r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	limit := g.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return bodyTooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyTooLarge(limit)
		}
		return errorWithInfo(codes.InvalidArgument, "REQUEST_BODY_UNREADABLE", "the request body could not be read")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// logRequest writes the one access-log record of a request: no query
// string and no headers, which may carry secrets.
func (g *Gateway) logRequest(r *http.Request, req *request, rec *recorder, start time.Time) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	var level slog.Level
	switch {
	case status >= 500:
		level = slog.LevelError
	case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
		level = slog.LevelDebug
	default:
		var write bool
		if level, write = g.cfg.AccessLog.Routine(); !write {
			return
		}
	}
	ctx := r.Context()
	if !g.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", req.id),
		slog.String("host", req.origin.host),
		slog.String("client_ip", req.origin.clientIP),
	}
	req.mu.Lock()
	attrs = append(attrs, req.attrs...)
	req.mu.Unlock()
	g.log.LogAttrs(ctx, level, "http", attrs...)
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes on flushes, which streamed responses need.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

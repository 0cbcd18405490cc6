package restgateway

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// CORS headers the gateway allows and exposes by default.
var (
	// DefaultCORSHeaders are the request headers a cross-origin client may
	// send: credentials, JSON, CSRF token, request id, client kind.
	DefaultCORSHeaders = []string{"Authorization", "Content-Type", "X-CSRF-Token", "X-Request-Id", "X-Tenantry-Client"}
	// DefaultCORSMethods are the methods REST routes use.
	DefaultCORSMethods = []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete}
)

// DefaultCORSMaxAge is how long browsers may cache a preflight answer.
const DefaultCORSMaxAge = 10 * time.Minute

// CORS says which cross-origin browser clients may call the REST routes.
// Allowed origins get their own origin back (never "*", since responses may
// depend on cookies) with credentials allowed; other origins get no CORS
// headers at all, and their preflight requests are refused.
type CORS struct {
	// AllowOrigin reports whether origin (scheme://host[:port], as the
	// browser sent it) may call r's routes; r has passed Admit, so the
	// answer may depend on the tenant of r's host.
	AllowOrigin func(r *http.Request, origin string) bool
	// Headers are the allowed request headers; nil means
	// DefaultCORSHeaders.
	Headers []string
	// Methods are the allowed methods; nil means DefaultCORSMethods.
	Methods []string
	// MaxAge bounds the browser's preflight cache; zero means
	// DefaultCORSMaxAge.
	MaxAge time.Duration
}

// wrap answers preflight requests and adds CORS headers to the answers of
// allowed origins.
func (c *CORS) wrap(next http.Handler) http.Handler {
	headers, methods, maxAge := c.Headers, c.Methods, c.MaxAge
	if headers == nil {
		headers = DefaultCORSHeaders
	}
	if methods == nil {
		methods = DefaultCORSMethods
	}
	if maxAge == 0 {
		maxAge = DefaultCORSMaxAge
	}
	allowHeaders, allowMethods := strings.Join(headers, ", "), strings.Join(methods, ", ")
	maxAgeSeconds := strconv.Itoa(int(maxAge / time.Second))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		// Answers differ by origin: caches must keep them apart.
		w.Header().Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		allowed := validOrigin(origin) && c.AllowOrigin != nil && c.AllowOrigin(r, origin)
		if preflight {
			w.Header().Add("Vary", "Access-Control-Request-Method")
			w.Header().Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				WriteError(w, r, errorWithInfo(codes.PermissionDenied, "CORS_ORIGIN_NOT_ALLOWED",
					"this origin may not call this API from a browser; ask the operator to allow it"))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", allowMethods)
			h.Set("Access-Control-Allow-Headers", allowHeaders)
			h.Set("Access-Control-Max-Age", maxAgeSeconds)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", "X-Request-Id")
		}
		next.ServeHTTP(w, r)
	})
}

// validOrigin accepts a serialised origin: http or https, a host, no path.
// "null" (sandboxed frames, file: pages) is never allowed.
func validOrigin(origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.User == nil && u.Fragment == ""
}

// NormalizeOrigin returns origin as browsers send it (lower-case scheme and
// host, no trailing slash), or false when it is not an http(s) origin. Use
// it on configured origins so that they compare equal to the Origin header.
func NormalizeOrigin(origin string) (string, bool) {
	origin = strings.TrimSuffix(strings.TrimSpace(origin), "/")
	u, err := url.Parse(origin)
	if err != nil {
		return "", false
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	out := u.Scheme + "://" + u.Host
	if !validOrigin(out) || out != strings.ToLower(origin) {
		return "", false
	}
	return out, true
}

package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPages(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")

	t.Run("every page is HTML on a tenant host, with a strict CSP, no framing and no referrer", func(t *testing.T) {
		for _, path := range []string{"/signup", "/verify-email?token=abc", "/login", "/forgot-password",
			"/reset-password?token=abc", "/account", "/accept-invitation?token=abc", "/admin/users", "/admin/clients"} {
			resp, body := s.restResponse(http.MethodGet, "demo.localhost", path, "")
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), path)
			csp := resp.Header.Get("Content-Security-Policy")
			require.Contains(t, csp, "script-src 'self'", path)
			require.Contains(t, csp, "frame-ancestors 'none'", path)
			require.NotContains(t, csp, "unsafe-inline", path)
			require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), path)
			require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"), path)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), path)
			require.Contains(t, string(body), `<script src="/assets/app.js" defer></script>`, path)
			require.NotRegexp(t, `<script>|<script [^>]*>[^<]`, string(body), "%s has an inline script", path)
		}
	})
	t.Run("scripts and styles have their content types", func(t *testing.T) {
		for path, ctype := range map[string]string{
			"/assets/app.js":  "text/javascript; charset=utf-8",
			"/assets/app.css": "text/css; charset=utf-8",
		} {
			resp, body := s.restResponse(http.MethodGet, "demo.localhost", path, "")
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			require.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
			require.NotEmpty(t, body)
		}
	})
	t.Run("an unknown asset or page is 404", func(t *testing.T) {
		for _, path := range []string{"/assets/nope.js", "/assets/login.html", "/assets/", "/assets/../pages.go"} {
			code, _ := s.rest(http.MethodGet, "demo.localhost", path, "")
			require.Equal(t, http.StatusNotFound, code, path)
		}
	})
	t.Run("the root sends to the account page", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodGet, "demo.localhost", "/", "") // the client follows the redirect
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "/account", resp.Request.URL.Path)
		require.Contains(t, string(body), "<h1>Your account</h1>")
	})
	t.Run("an unknown host gets the API's 404 JSON error, not a page", func(t *testing.T) {
		for _, path := range []string{"/login", "/assets/app.js"} {
			resp, body := s.restResponse(http.MethodGet, "nobody.localhost", path, "")
			require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
			require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), path)
			_, apiBody := s.rest(http.MethodGet, "nobody.localhost", "/v1/auth/config", "")
			require.JSONEq(t, string(apiBody), string(body), path)
		}
	})
}

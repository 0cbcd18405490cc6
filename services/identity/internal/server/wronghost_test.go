package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A browser opening a page on a host that is no tenant's (make run's
// http://localhost:8080/login) gets a page saying where tenants' pages
// are, naming no tenant; API clients keep the JSON error.
func TestWrongHostPage(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo", "hidden-corp")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

	t.Run("a browser on localhost gets a page naming the tenant hosts", func(t *testing.T) {
		for _, path := range []string{"/login", "/signup", "/"} {
			resp, body := s.restResponse(http.MethodGet, "localhost", path, "", "Accept", browserAccept)
			page := string(body)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, page)
			require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
			require.Contains(t, page, "<code>localhost</code> is not the address of a tenant")
			require.Contains(t, page, "http://{tenant}.localhost:8080"+path, "the configured public URL")
			require.Contains(t, page, "http://{tenant}.localhost:"+port+path, "the base domain, at the port asked")
			require.NotContains(t, page, "demo", "the page names no tenant")
			require.NotContains(t, page, "hidden-corp", "the page names no tenant")
			require.NotContains(t, page, "<script")
		}
	})
	t.Run("a host the browser typed is escaped on the page", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodGet, "nobody.localhost", "/login?token=secret", "", "Accept", browserAccept)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Contains(t, string(body), "<code>nobody.localhost</code>")
		require.NotContains(t, string(body), "secret", "the query is not repeated")
	})
	t.Run("API clients keep the JSON error", func(t *testing.T) {
		for _, accept := range []string{"", "*/*", "application/json"} {
			resp, body := s.restResponse(http.MethodGet, "localhost", "/login", "", "Accept", accept)
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
			require.Contains(t, resp.Header.Get("Content-Type"), "application/json", "Accept %q", accept)
			var status struct{ Message string }
			require.NoError(t, json.Unmarshal(body, &status), "%s", body)
			require.Contains(t, status.Message, "no tenant")
		}
		resp, body := s.restResponse(http.MethodPost, "localhost", "/v1/auth:login", `{}`, "Accept", browserAccept)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Content-Type"), "application/json", "a POST is an API call: %s", body)
	})
	t.Run("a tenant's host still serves its pages", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodGet, "demo.localhost", "/login", "", "Accept", browserAccept)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Contains(t, string(body), "<form")
	})
}

package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPagesThroughTheGateway checks, through identity's real gateway, that
// a form a browser posts to a logged-in user's page by itself is answered by
// the pages (not the API) without echoing it, and that a page's URL keeps no
// password and no foreign ?next=. (pages_forms_http_test.go posts the forms
// the server acts on.)
func TestPagesThroughTheGateway(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	const form = "email=ada%40example.com&password=hunter2-secret"
	formType := []string{"Content-Type", "application/x-www-form-urlencoded"}

	t.Run("a form posted to a logged-in user's page is 405 with a page saying it was not sent", func(t *testing.T) {
		for _, path := range []string{"/account", "/admin/users"} {
			resp, body := s.restResponse(http.MethodPost, "demo.localhost", path, form, formType...)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, path)
			require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), path)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), path)
			require.Contains(t, string(body), "Your form was not sent", path)
			require.NotContains(t, string(body), "hunter2", path)
		}
	})
	t.Run("a form posted to a page of an unknown host gets the API's 404", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodPost, "nobody.localhost", "/login", form, formType...)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"))
		require.NotContains(t, string(body), "hunter2")
	})
	t.Run("a login submitted as GET ends on the bare login page", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodGet, "demo.localhost", "/login?"+form, "") // the client follows the redirect
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "/login", resp.Request.URL.RequestURI())
		require.Contains(t, string(body), `<form id="login-form" method="post" action="/login"`)
	})
	t.Run("a foreign next is dropped before the login page loads", func(t *testing.T) {
		resp, _ := s.restResponse(http.MethodGet, "demo.localhost", "/login?next=%2F%09%2Fevil.example%2Fx", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "/login", resp.Request.URL.RequestURI())
		resp, _ = s.restResponse(http.MethodGet, "demo.localhost", "/login?next=%2Fadmin%2Fusers", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "/login?next=%2Fadmin%2Fusers", resp.Request.URL.RequestURI())
	})
}

package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	s := startSystemWith(t, []string{"-cors-origins", "https://console.example.com"}, "demo", "other")
	_, err := s.users.UpdateTenantSettings(asOperator("other"), &identityv1.UpdateTenantSettingsRequest{
		Settings:   &identityv1.TenantSettings{AllowedOrigins: []string{"https://shop.other.example"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"allowed_origins"}},
	})
	require.NoError(t, err)

	preflight := func(host, origin string) *http.Response {
		resp, _ := s.restResponse(http.MethodOptions, host, "/v1/auth:login", "",
			"Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "content-type, x-csrf-token, x-tenantry-client")
		return resp
	}
	requireAllowed := func(t *testing.T, resp *http.Response, origin string) {
		t.Helper()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		h := resp.Header
		require.Equal(t, origin, h.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "true", h.Get("Access-Control-Allow-Credentials"))
		require.Contains(t, h.Get("Access-Control-Allow-Methods"), "POST")
		for _, header := range []string{"Authorization", "Content-Type", "X-CSRF-Token", "X-Request-Id"} {
			require.Contains(t, h.Get("Access-Control-Allow-Headers"), header)
		}
		require.NotEmpty(t, h.Get("Access-Control-Max-Age"))
		require.Contains(t, h.Values("Vary"), "Origin")
	}
	requireDenied := func(t *testing.T, resp *http.Response) {
		t.Helper()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		for name := range resp.Header {
			require.NotContains(t, name, "Access-Control-", "a denied origin gets no CORS headers")
		}
	}

	t.Run("a globally allowed origin passes the preflight on every tenant's host", func(t *testing.T) {
		requireAllowed(t, preflight("demo.localhost", "https://console.example.com"), "https://console.example.com")
		requireAllowed(t, preflight("other.localhost", "https://console.example.com"), "https://console.example.com")
	})
	t.Run("a tenant's own origin passes on its host only", func(t *testing.T) {
		requireAllowed(t, preflight("other.localhost", "https://shop.other.example"), "https://shop.other.example")
		requireDenied(t, preflight("demo.localhost", "https://shop.other.example"))
	})
	t.Run("an unknown origin is denied without CORS headers", func(t *testing.T) {
		requireDenied(t, preflight("demo.localhost", "https://evil.example"))
		requireDenied(t, preflight("demo.localhost", "null"))
	})
	t.Run("actual requests of allowed origins get the exact origin back, others nothing", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodGet, "other.localhost", "/v1/auth/config", "", "Origin", "https://shop.other.example")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Equal(t, "https://shop.other.example", resp.Header.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
		resp, body = s.restResponse(http.MethodGet, "other.localhost", "/v1/auth/config", "", "Origin", "https://evil.example")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	})
}

package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rest makes an HTTP request to identity's REST gateway for host (the
// gateway's port is added), with extra headers, and returns the status and
// body.
func (s *system) rest(method, host, path, body string, headers ...string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	addr := s.identity.HTTPAddr().String()
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
	require.NoError(s.t, err)
	_, port, _ := strings.Cut(addr, ":")
	req.Host = host + ":" + port
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, out
}

func TestREST(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo", "other")
	const signUp = `{"email":"rest@example.com","password":"correct horse battery staple"}`

	var access string
	t.Run("sign-up and login on the tenant's host give tokens", func(t *testing.T) {
		code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:signup", signUp)
		require.Equal(t, http.StatusOK, code, "%s", body)
		code, body = s.rest(http.MethodPost, "demo.localhost", "/v1/auth:login", signUp)
		require.Equal(t, http.StatusOK, code, "%s", body)
		var resp struct{ AccessToken, RefreshToken string }
		require.NoError(t, json.Unmarshal(body, &resp))
		require.NotEmpty(t, resp.AccessToken)
		require.NotEmpty(t, resp.RefreshToken)
		access = resp.AccessToken
	})
	t.Run("the bearer says who is logged in", func(t *testing.T) {
		code, body := s.rest(http.MethodGet, "demo.localhost", "/v1/auth/me", "", "Authorization", "Bearer "+access)
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.Contains(t, string(body), "rest@example.com")
	})
	t.Run("an unknown host is 404 with a JSON error", func(t *testing.T) {
		code, body := s.rest(http.MethodPost, "nobody.localhost", "/v1/auth:login", signUp)
		require.Equal(t, http.StatusNotFound, code, "%s", body)
		var e struct {
			Code    int
			Message string
			Details []map[string]any
		}
		require.NoError(t, json.Unmarshal(body, &e), "%s", body)
		require.Equal(t, 5, e.Code)
		require.NotEmpty(t, e.Message)
		require.NotEmpty(t, e.Details)
	})
	t.Run("a client cannot switch tenants with Grpc-Metadata headers", func(t *testing.T) {
		// The account exists in demo only: were the header believed, the
		// login would succeed in demo although the host is other's.
		code, body := s.rest(http.MethodPost, "other.localhost", "/v1/auth:login", signUp,
			"Grpc-Metadata-X-Tenant", "demo", "Grpc-Metadata-X-Tenant-Host", "demo.localhost")
		require.Equal(t, http.StatusUnauthorized, code, "%s", body)
		// And a token of demo is refused on other's host.
		code, body = s.rest(http.MethodGet, "other.localhost", "/v1/auth/me", "",
			"Authorization", "Bearer "+access, "Grpc-Metadata-X-Tenant", "demo")
		require.Equal(t, http.StatusUnauthorized, code, "%s", body)
	})
	t.Run("X-Forwarded-Host from an untrusted peer is ignored", func(t *testing.T) {
		code, body := s.rest(http.MethodGet, "other.localhost", "/v1/auth/me", "",
			"Authorization", "Bearer "+access, "X-Forwarded-Host", "demo.localhost")
		require.Equal(t, http.StatusUnauthorized, code, "%s", body)
	})
	t.Run("the JWKS is served on the tenant's host", func(t *testing.T) {
		code, body := s.rest(http.MethodGet, "demo.localhost", "/.well-known/jwks.json", "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		var jwks struct{ Keys []map[string]any }
		require.NoError(t, json.Unmarshal(body, &jwks))
		require.NotEmpty(t, jwks.Keys)
	})
	t.Run("the OpenAPI document and probes are served", func(t *testing.T) {
		code, body := s.rest(http.MethodGet, "demo.localhost", "/openapi.json", "")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, string(body), "/v1/auth:login")
		code, _ = s.rest(http.MethodGet, "anything", "/healthz", "")
		require.Equal(t, http.StatusOK, code)
		code, body = s.rest(http.MethodGet, "anything", "/readyz", "")
		require.Equal(t, http.StatusOK, code, "%s", body)
	})
}

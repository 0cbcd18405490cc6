package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// restError is the JSON body of every REST error: a google.rpc.Status.
type restError struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Details []map[string]any `json:"details"`
}

// call makes an HTTP request to the registry's REST gateway with an
// optional bearer token and returns the status and body.
func (r *registry) call(method, path, token, body string) (int, []byte) {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+r.app.HTTPAddr().String()+path, rd)
	require.NoError(r.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return resp.StatusCode, out
}

func decodeError(t *testing.T, body []byte) restError {
	t.Helper()
	var e restError
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	return e
}

func TestREST(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")

	t.Run("an operator creates a tenant", func(t *testing.T) {
		code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=acme", operatorToken, `{"displayName":"Acme"}`)
		require.Equal(t, http.StatusOK, code, "%s", body)
		var resp struct {
			Tenant struct{ Name, DisplayName string }
		}
		require.NoError(t, json.Unmarshal(body, &resp))
		require.Equal(t, "tenants/acme", resp.Tenant.Name)
		require.Equal(t, "Acme", resp.Tenant.DisplayName)
	})
	t.Run("an operator reads it", func(t *testing.T) {
		code, body := r.call(http.MethodGet, "/v1/tenants/acme", operatorToken, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.Contains(t, string(body), `"name":"tenants/acme"`)
	})
	t.Run("a service resolves its host", func(t *testing.T) {
		code, body := r.call(http.MethodGet, "/v1/tenants:resolve?host=acme.localhost", serviceToken, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.Contains(t, string(body), `"tenants/acme"`)
	})
	t.Run("a call without a token is 401", func(t *testing.T) {
		code, body := r.call(http.MethodGet, "/v1/tenants/acme", "", "")
		require.Equal(t, http.StatusUnauthorized, code, "%s", body)
		require.Equal(t, 16, decodeError(t, body).Code)
	})
	t.Run("the service credential may not create tenants", func(t *testing.T) {
		code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=nope", serviceToken, `{"displayName":"Nope"}`)
		require.Equal(t, http.StatusForbidden, code, "%s", body)
	})
	t.Run("a bad slug is 400 with field violations", func(t *testing.T) {
		code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=Not_A_Slug!", operatorToken, `{"displayName":"Bad"}`)
		require.Equal(t, http.StatusBadRequest, code, "%s", body)
		e := decodeError(t, body)
		require.Equal(t, 3, e.Code)
		require.NotEmpty(t, e.Message)
		var types []string
		for _, d := range e.Details {
			types = append(types, d["@type"].(string))
		}
		require.Contains(t, types, "type.googleapis.com/google.rpc.ErrorInfo")
		require.Contains(t, types, "type.googleapis.com/google.rpc.BadRequest")
		require.Contains(t, string(body), `"field":"tenant_id"`)
	})
	t.Run("an unknown tenant is 404", func(t *testing.T) {
		code, body := r.call(http.MethodGet, "/v1/tenants/nobody", operatorToken, "")
		require.Equal(t, http.StatusNotFound, code, "%s", body)
		e := decodeError(t, body)
		require.Equal(t, 5, e.Code)
		require.NotEmpty(t, e.Details)
	})
	t.Run("a body over the limit is 413", func(t *testing.T) {
		big := `{"displayName":"` + strings.Repeat("x", 2<<20) + `"}`
		code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=big", operatorToken, big)
		require.Equal(t, http.StatusRequestEntityTooLarge, code)
		require.Equal(t, "REQUEST_BODY_TOO_LARGE", decodeError(t, body).Details[0]["reason"])
	})
	t.Run("the probes answer", func(t *testing.T) {
		code, _ := r.call(http.MethodGet, "/healthz", "", "")
		require.Equal(t, http.StatusOK, code)
		code, body := r.call(http.MethodGet, "/readyz", "", "")
		require.Equal(t, http.StatusOK, code, "%s", body)
	})
	t.Run("the OpenAPI document is served", func(t *testing.T) {
		code, body := r.call(http.MethodGet, "/openapi.json", "", "")
		require.Equal(t, http.StatusOK, code)
		var doc struct {
			Swagger string
			Paths   map[string]any
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		require.Equal(t, "2.0", doc.Swagger)
		require.Contains(t, doc.Paths, "/v1/tenants")
	})
}

package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every route of the registry's REST surface answers through the same rules
// as gRPC: success codes, and JSON errors with the right HTTP status.
func TestRESTRouteFamilies(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	op := operatorToken
	code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=routes", op, `{"displayName":"Routes","labels":{"tier":"gold"}}`)
	require.Equal(t, http.StatusOK, code, "%s", body)

	var got struct {
		Tenant struct {
			Etag, State, DisplayName string
			Domains                  []struct{ Host string }
		}
	}
	etag := func() string {
		code, body := r.call(http.MethodGet, "/v1/tenants/routes", op, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.NoError(t, json.Unmarshal(body, &got))
		return got.Tenant.Etag
	}

	cases := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"list with a filter", http.MethodGet, "/v1/tenants?filter=labels.tier%20%3D%20%22gold%22&pageSize=10", op, "", http.StatusOK},
		{"list with a bad filter", http.MethodGet, "/v1/tenants?filter=tier%3D%3Dgold", op, "", http.StatusBadRequest},
		{"update the display name", http.MethodPatch, "/v1/tenants/routes?updateMask=displayName", op, `{"displayName":"Routes Inc"}`, http.StatusOK},
		{"update an immutable field", http.MethodPatch, "/v1/tenants/routes?updateMask=schema", op, `{"schema":"x"}`, http.StatusBadRequest},
		{"add a domain", http.MethodPost, "/v1/tenants/routes:addDomain", op, `{"host":"routes.example.com"}`, http.StatusOK},
		{"add a domain under the base domain", http.MethodPost, "/v1/tenants/routes:addDomain", op, `{"host":"x.localhost"}`, http.StatusBadRequest},
		{"resolve by the domain", http.MethodGet, "/v1/tenants:resolve?host=routes.example.com", serviceToken, "", http.StatusOK},
		{"remove the domain", http.MethodPost, "/v1/tenants/routes:removeDomain", op, `{"host":"routes.example.com"}`, http.StatusOK},
		{"remove it again", http.MethodPost, "/v1/tenants/routes:removeDomain", op, `{"host":"routes.example.com"}`, http.StatusNotFound},
		{"suspend", http.MethodPost, "/v1/tenants/routes:suspend", op, `{}`, http.StatusOK},
		{"suspend twice", http.MethodPost, "/v1/tenants/routes:suspend", op, `{}`, http.StatusBadRequest},
		{"resume", http.MethodPost, "/v1/tenants/routes:resume", op, `{}`, http.StatusOK},
		{"delete softly", http.MethodDelete, "/v1/tenants/routes", op, "", http.StatusOK},
		{"undelete", http.MethodPost, "/v1/tenants/routes:undelete", op, `{}`, http.StatusOK},
		{"the service credential cannot delete", http.MethodDelete, "/v1/tenants/routes", serviceToken, "", http.StatusForbidden},
		{"create a duplicate", http.MethodPost, "/v1/tenants?tenantId=routes", op, `{}`, http.StatusConflict},
		{"an unknown route", http.MethodGet, "/v1/nothing", op, "", http.StatusNotFound},
	}
	for _, c := range cases {
		code, body := r.call(c.method, c.path, c.token, c.body)
		require.Equal(t, c.want, code, "%s: %s", c.name, body)
		if code >= 400 {
			e := decodeError(t, body)
			require.NotZero(t, e.Code, "%s: the JSON error keeps the gRPC code", c.name)
			require.NotEmpty(t, e.Message, c.name)
		}
	}

	// A stale etag is refused over REST too (ABORTED → 409).
	stale := etag()
	code, body = r.call(http.MethodPatch, "/v1/tenants/routes?updateMask=displayName", op, `{"displayName":"A"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = r.call(http.MethodPatch, "/v1/tenants/routes?updateMask=displayName", op, `{"displayName":"B","etag":`+jsonString(stale)+`}`)
	require.Equal(t, http.StatusConflict, code, "%s", body)
	require.Equal(t, "A", func() string { etag(); return got.Tenant.DisplayName }())
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

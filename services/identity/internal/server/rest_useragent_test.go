package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Sessions opened over REST record the browser's User-Agent, not the
// gateway's own gRPC client's.
func TestRESTSessionsRecordTheBrowsersUserAgent(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	s.signUpAndLogin("demo", "ua@example.com")
	code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:login",
		`{"email":"ua@example.com","password":"`+goodPassword+`"}`,
		"Content-Type", "application/json", "User-Agent", "TestBrowser/1.0 (tenantry)")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var login struct{ AccessToken string }
	require.NoError(t, json.Unmarshal(body, &login))

	code, body = s.rest(http.MethodGet, "demo.localhost", "/v1/auth/sessions", "", "Authorization", "Bearer "+login.AccessToken)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var list struct {
		Sessions []struct {
			UserAgent string
			Current   bool
		}
	}
	require.NoError(t, json.Unmarshal(body, &list))
	found := false
	for _, ses := range list.Sessions {
		if ses.Current {
			found = true
			require.Equal(t, "TestBrowser/1.0 (tenantry)", ses.UserAgent)
		}
	}
	require.True(t, found, "the REST session is listed: %s", body)
}

package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/kit/registrytest"
)

// Every route family of identity's REST surface: accounts, sessions, users,
// settings and tokens, with their success codes and JSON errors.
func TestRESTRouteFamilies(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	login := s.signUpAndLogin("demo", "rest@example.com")
	user := "Bearer " + login.GetAccessToken()
	op := "Bearer " + registrytest.OperatorToken
	svc := "Bearer " + registrytest.ServiceToken
	userName := login.GetUser().GetName()

	code, body := s.rest(http.MethodGet, "demo.localhost", "/v1/auth/sessions", "", "Authorization", user)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var sessions struct{ Sessions []struct{ ID string } }
	require.NoError(t, json.Unmarshal(body, &sessions))
	require.Len(t, sessions.Sessions, 1)

	cases := []struct {
		name, method, path, body, auth string
		want                           int
	}{
		{"auth config", http.MethodGet, "/v1/auth/config", "", "", http.StatusOK},
		{"who am I", http.MethodGet, "/v1/auth/me", "", user, http.StatusOK},
		{"who am I without a token", http.MethodGet, "/v1/auth/me", "", "", http.StatusUnauthorized},
		{"a bad verification token", http.MethodPost, "/v1/auth:verifyEmail", `{"token":"nope"}`, "", http.StatusBadRequest},
		{"resend verification", http.MethodPost, "/v1/auth:resendVerificationEmail", `{"email":"rest@example.com"}`, "", http.StatusOK},
		{"request a password reset", http.MethodPost, "/v1/auth:requestPasswordReset", `{"email":"nobody@example.com"}`, "", http.StatusOK},
		{"a bad reset token", http.MethodPost, "/v1/auth:resetPassword", `{"token":"nope","newPassword":"whatever it is"}`, "", http.StatusBadRequest},
		{"a bad invitation token", http.MethodPost, "/v1/auth:acceptInvitation", `{"token":"nope","password":"whatever it is"}`, "", http.StatusBadRequest},
		{"change password with a wrong current one", http.MethodPost, "/v1/auth:changePassword", `{"currentPassword":"wrong","newPassword":"another passphrase"}`, user, http.StatusBadRequest},
		{"change email", http.MethodPost, "/v1/auth:changeEmail", `{"newEmail":"rest2@example.com","password":"` + goodPassword + `"}`, user, http.StatusOK},
		{"list my email addresses", http.MethodGet, "/v1/account/emailAddresses", "", user, http.StatusOK},
		{"add an email address", http.MethodPost, "/v1/account/emailAddresses", `{"email":"rest.other@example.com"}`, user, http.StatusOK},
		{"make an unknown address primary", http.MethodPost, "/v1/account/emailAddresses:setPrimary", `{"email":"nobody@example.com"}`, user, http.StatusNotFound},
		{"remove the primary address", http.MethodPost, "/v1/account/emailAddresses:remove", `{"email":"rest@example.com"}`, user, http.StatusBadRequest},
		{"a bad address verification token", http.MethodPost, "/v1/account/emailAddresses:verify", `{"token":"nope"}`, "", http.StatusBadRequest},
		{"a user cannot list users", http.MethodGet, "/v1/users", "", user, http.StatusForbidden},
		{"the operator lists users", http.MethodGet, "/v1/users?filter=state%20%3D%20ACTIVE", "", op, http.StatusOK},
		{"the operator reads a user", http.MethodGet, "/v1/" + userName, "", op, http.StatusOK},
		{"a malformed user name", http.MethodGet, "/v1/users/42", "", op, http.StatusBadRequest},
		{"update roles (camelCase mask)", http.MethodPatch, "/v1/" + userName + "?updateMask=displayName", `{"displayName":"Rest"}`, op, http.StatusOK},
		{"invite", http.MethodPost, "/v1/users:invite", `{"email":"new@example.com","roles":["admin"]}`, "", http.StatusUnauthorized},
		{"invite as operator", http.MethodPost, "/v1/users:invite", `{"email":"new@example.com","roles":["admin"]}`, op, http.StatusOK},
		{"settings", http.MethodGet, "/v1/settings", "", op, http.StatusOK},
		{"update settings", http.MethodPatch, "/v1/settings?updateMask=passwordMinLength", `{"passwordMinLength":10}`, op, http.StatusOK},
		{"update settings out of range", http.MethodPatch, "/v1/settings?updateMask=passwordMinLength", `{"passwordMinLength":3}`, op, http.StatusBadRequest},
		{"jwks", http.MethodGet, "/v1/jwks", "", "", http.StatusOK},
		{"introspection needs a service", http.MethodPost, "/v1/tokens:introspect", `{"token":"x"}`, user, http.StatusForbidden},
		{"introspection", http.MethodPost, "/v1/tokens:introspect", `{"token":"` + login.GetAccessToken() + `"}`, svc, http.StatusOK},
		{"revoke another session id", http.MethodDelete, "/v1/auth/sessions/00000000-0000-0000-0000-000000000000", "", user, http.StatusNotFound},
		{"revoke my session", http.MethodDelete, "/v1/auth/sessions/" + sessions.Sessions[0].ID, "", user, http.StatusOK},
		{"after revoking, the token's session is over", http.MethodGet, "/v1/auth/me", "", user, http.StatusUnauthorized},
		{"delete the user", http.MethodDelete, "/v1/" + userName, "", op, http.StatusOK},
		{"delete the user again", http.MethodDelete, "/v1/" + userName, "", op, http.StatusNotFound},
	}
	for _, c := range cases {
		var headers []string
		if c.auth != "" {
			headers = append(headers, "Authorization", c.auth)
		}
		if c.body != "" {
			headers = append(headers, "Content-Type", "application/json")
		}
		code, body := s.rest(c.method, "demo.localhost", c.path, c.body, headers...)
		require.Equal(t, c.want, code, "%s: %s", c.name, body)
		if code >= 400 {
			var e struct {
				Code    int
				Message string
			}
			require.NoError(t, json.Unmarshal(body, &e), "%s: %s", c.name, body)
			require.NotZero(t, e.Code, c.name)
			require.NotEmpty(t, e.Message, c.name)
		}
	}
}

package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/registrytest"
)

// restResponse is rest returning the whole response, for its headers.
func (s *system) restResponse(method, host, path, body string, headers ...string) (*http.Response, []byte) {
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
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp, out
}

// setCookies returns the Set-Cookie headers of resp by name and path.
func setCookies(t *testing.T, resp *http.Response) map[string]*http.Cookie {
	t.Helper()
	out := map[string]*http.Cookie{}
	for _, line := range resp.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		require.NoError(t, err, line)
		out[c.Name+" "+c.Path] = c
	}
	return out
}

// browserCookies is what a browser holds after a login.
type browserCookies struct{ session, csrf string }

func (c browserCookies) header() string {
	return "tenantry_session=" + c.session + "; tenantry_csrf=" + c.csrf
}

func requireErrorReason(t *testing.T, body []byte, code int, reason string) {
	t.Helper()
	var e struct {
		Code    int
		Details []struct{ Reason string }
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.Equal(t, code, e.Code, "%s", body)
	var reasons []string
	for _, d := range e.Details {
		reasons = append(reasons, d.Reason)
	}
	require.Contains(t, reasons, reason, "%s", body)
}

func TestBrowserSessions(t *testing.T) {
	t.Parallel()
	s := startSystemWith(t, []string{"-trusted-proxies", "127.0.0.1/32,::1/128"}, "demo", "other")
	const creds = `{"email":"browser@example.com","password":"correct horse battery staple"}`
	for _, host := range []string{"demo.localhost", "other.localhost"} {
		code, body := s.rest(http.MethodPost, host, "/v1/auth:signup", creds)
		require.Equal(t, http.StatusOK, code, "%s", body)
	}
	const sessionTTL = 14 * 24 * time.Hour

	login := func(t *testing.T, host string, headers ...string) (*http.Response, browserCookies) {
		t.Helper()
		resp, body := s.restResponse(http.MethodPost, host, "/v1/auth:login", creds,
			append([]string{"X-Tenantry-Client", "browser"}, headers...)...)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var out struct{ AccessToken, RefreshToken string }
		require.NoError(t, json.Unmarshal(body, &out))
		require.NotEmpty(t, out.AccessToken)
		require.Empty(t, out.RefreshToken, "a browser's refresh token belongs in the cookie only")
		cookies := setCookies(t, resp)
		session := cookies["tenantry_session /v1/auth:refresh"]
		require.NotNil(t, session, "%v", resp.Header.Values("Set-Cookie"))
		require.NotContains(t, string(body), session.Value)
		return resp, browserCookies{session: session.Value, csrf: cookies["tenantry_csrf /"].Value}
	}

	var demo browserCookies
	t.Run("a browser's login sets a host-only HttpOnly SameSite=Strict session cookie, not Secure on localhost", func(t *testing.T) {
		var resp *http.Response
		resp, demo = login(t, "demo.localhost")
		cookies := setCookies(t, resp)
		require.Len(t, cookies, 4, "%v", resp.Header.Values("Set-Cookie"))
		// The SSO cookie names the session to the OpenID Provider's login
		// step, which a redirect from an app's site reaches: Lax, and sent
		// to /oauth/ only.
		sso := cookies["tenantry_sso /oauth/"]
		require.NotNil(t, sso)
		require.True(t, sso.HttpOnly)
		require.False(t, sso.Secure)
		require.Equal(t, http.SameSiteLaxMode, sso.SameSite)
		require.Empty(t, sso.Domain)
		require.NotContains(t, sso.Value, demo.session, "the SSO cookie is not the refresh token")
		for _, path := range []string{"/v1/auth:refresh", "/v1/auth:logout"} {
			c := cookies["tenantry_session "+path]
			require.NotNil(t, c, path)
			require.Equal(t, demo.session, c.Value)
			require.True(t, c.HttpOnly)
			require.False(t, c.Secure)
			require.Equal(t, http.SameSiteStrictMode, c.SameSite)
			require.Empty(t, c.Domain)
			require.Equal(t, int(sessionTTL/time.Second), c.MaxAge)
		}
		csrf := cookies["tenantry_csrf /"]
		require.NotEmpty(t, csrf.Value)
		require.False(t, csrf.HttpOnly, "the page's script must read the CSRF token")
		require.Equal(t, http.SameSiteStrictMode, csrf.SameSite)
		require.Empty(t, csrf.Domain)
	})

	t.Run("the cookies are Secure on a real host forwarded by a trusted proxy", func(t *testing.T) {
		_, err := s.registry.Operator.AddDomain(s.registry.OperatorCtx(), &registryv1.AddDomainRequest{Name: "tenants/demo", Host: "login.demo-corp.example"})
		require.NoError(t, err)
		registrytest.Eventually(t, "identity knows the new domain", func() bool {
			code, _ := s.rest(http.MethodGet, "demo.localhost", "/v1/auth/config", "", "X-Forwarded-Host", "login.demo-corp.example")
			return code == http.StatusOK
		})
		resp, _ := login(t, "demo.localhost", "X-Forwarded-Host", "login.demo-corp.example", "X-Forwarded-Proto", "https")
		for key, c := range setCookies(t, resp) {
			require.True(t, c.Secure, key)
			require.Empty(t, c.Domain, key)
		}
	})

	t.Run("refresh through the cookie without the CSRF header is refused with 403", func(t *testing.T) {
		code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:refresh", "{}", "Cookie", demo.header())
		require.Equal(t, http.StatusForbidden, code, "%s", body)
		requireErrorReason(t, body, 7, "CSRF_TOKEN_INVALID")
		code, body = s.rest(http.MethodPost, "demo.localhost", "/v1/auth:refresh", "{}", "Cookie", demo.header(), "X-CSRF-Token", "forged")
		require.Equal(t, http.StatusForbidden, code, "%s", body)
	})

	t.Run("refresh through the cookie with the CSRF header rotates the cookie", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodPost, "demo.localhost", "/v1/auth:refresh", "",
			"Cookie", demo.header(), "X-CSRF-Token", demo.csrf)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var out struct{ AccessToken, RefreshToken string }
		require.NoError(t, json.Unmarshal(body, &out))
		require.NotEmpty(t, out.AccessToken)
		require.Empty(t, out.RefreshToken)
		c := setCookies(t, resp)["tenantry_session /v1/auth:refresh"]
		require.NotNil(t, c)
		require.NotEqual(t, demo.session, c.Value)
		require.True(t, c.HttpOnly)
		demo.session = c.Value
	})

	t.Run("tenant A's cookie is refused on tenant B's host", func(t *testing.T) {
		code, body := s.rest(http.MethodPost, "other.localhost", "/v1/auth:refresh", "{}",
			"Cookie", demo.header(), "X-CSRF-Token", demo.csrf)
		require.Equal(t, http.StatusUnauthorized, code, "%s", body)
	})

	t.Run("API clients keep tokens in the body, and bearer-only requests need no CSRF header", func(t *testing.T) {
		code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:login", creds)
		require.Equal(t, http.StatusOK, code, "%s", body)
		var out struct{ AccessToken, RefreshToken string }
		require.NoError(t, json.Unmarshal(body, &out))
		require.NotEmpty(t, out.RefreshToken)
		code, body = s.rest(http.MethodPost, "demo.localhost", "/v1/auth:logout", "{}", "Authorization", "Bearer "+out.AccessToken)
		require.Equal(t, http.StatusOK, code, "%s", body)
	})

	t.Run("logout through the cookie ends the session and clears the cookies", func(t *testing.T) {
		resp, body := s.restResponse(http.MethodPost, "demo.localhost", "/v1/auth:logout", "",
			"Cookie", demo.header(), "X-CSRF-Token", demo.csrf)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		cookies := setCookies(t, resp)
		for _, key := range []string{"tenantry_session /v1/auth:refresh", "tenantry_session /v1/auth:logout", "tenantry_csrf /"} {
			require.NotNil(t, cookies[key], key)
			require.Negative(t, cookies[key].MaxAge, key)
			require.Empty(t, cookies[key].Value, key)
		}
		code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:refresh", "{}",
			"Cookie", demo.header(), "X-CSRF-Token", demo.csrf)
		require.Equal(t, http.StatusUnauthorized, code, "%s", body)
	})
}

package server_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/pages"
)

// postForm posts a page's form to identity's gateway as a browser without
// the script does: urlencoded, same origin, not following a redirect.
func (s *system) postForm(host, path string, form url.Values, headers ...string) (*http.Response, string) {
	s.t.Helper()
	addr := s.identity.HTTPAddr().String()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(form.Encode()))
	require.NoError(s.t, err)
	_, port, _ := strings.Cut(addr, ":")
	req.Host = host + ":" + port
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp, string(body)
}

var (
	formTag       = regexp.MustCompile(`<form\b[^>]*>`)
	fieldErrorTag = regexp.MustCompile(`<p id="([a-z_]+)-error" class="field-error">([^<]+)</p>`)
	messageTag    = regexp.MustCompile(`<div id="message" class="message[^"]*"[^>]*>([^<]*)</div>`)
)

// pageFieldErrors returns the errors a page shows next to its fields.
func pageFieldErrors(body string) map[string]string {
	out := map[string]string{}
	for _, m := range fieldErrorTag.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// pageMessage returns the page's message.
func pageMessage(body string) string {
	m := messageTag.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// apiError is the REST API's JSON error: its message and field violations.
type apiError struct {
	Message string
	Details []struct {
		FieldViolations []struct{ Field, Description string }
	}
}

func (e apiError) violations() map[string]string {
	out := map[string]string{}
	for _, d := range e.Details {
		for _, v := range d.FieldViolations {
			out[v.Field] = v.Description
		}
	}
	return out
}

// TestFormsWithoutTheScriptThroughTheGateway posts the pages' forms to
// identity's real gateway as a browser without JavaScript does, and checks
// that the server acts on them as the API would.
func TestFormsWithoutTheScriptThroughTheGateway(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	const host = "demo.localhost"

	t.Run("every form on every page is a POST to its page, which answers it with a page", func(t *testing.T) {
		forms := 0
		for _, path := range pages.Paths {
			// With a token, as the email links open them: the verification
			// page has a form only then.
			resp, body := s.restResponse(http.MethodGet, host, path+"?token=not-a-real-token", "")
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			for _, form := range formTag.FindAllString(string(body), -1) {
				forms++
				require.Contains(t, form, ` method="post"`, "%s: %s", path, form)
				require.Contains(t, form, ` action="`+path+`"`, "%s: %s", path, form)
				require.NotContains(t, form, "?", "%s: no query in an action: %s", path, form)
				answer, page := s.postForm(host, path, url.Values{"password": {"hunter2-secret"}})
				require.Equal(t, "text/html; charset=utf-8", answer.Header.Get("Content-Type"), "%s: %s", path, page)
				require.NotContains(t, []int{http.StatusNotFound, http.StatusOK}, answer.StatusCode, "%s: %s", path, page)
				require.NotContains(t, page, "hunter2", path)
			}
			require.NotRegexp(t, `href="[^"]*(password|token)=`, string(body), "%s links to a URL with a secret", path)
		}
		require.Equal(t, 16, forms)
	})

	t.Run("a sign-up with several bad fields shows all their errors at once, as the API names them", func(t *testing.T) {
		form := url.Values{"email": {"not-an-email"}, "password": {"short"}, "display_name": {"   "}}
		resp, body := s.postForm(host, "/signup", form)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		got := pageFieldErrors(body)
		require.Len(t, got, 3, body)
		require.Equal(t, "Please correct the fields marked below.", pageMessage(body))
		require.Equal(t, 3, strings.Count(body, `aria-invalid="true"`))
		require.Contains(t, body, `value="not-an-email"`, "what was typed is kept")
		require.NotContains(t, body, `value="short"`, "but never the password")

		code, raw := s.rest(http.MethodPost, host, "/v1/auth:signup", `{"email":"not-an-email","password":"short","display_name":"   "}`)
		require.Equal(t, http.StatusBadRequest, code, "%s", raw)
		var api apiError
		require.NoError(t, json.Unmarshal(raw, &api))
		require.Equal(t, api.violations(), got, "the page shows what the API says")
	})

	t.Run("a login with neither field names both", func(t *testing.T) {
		resp, body := s.postForm(host, "/login", url.Values{})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		got := pageFieldErrors(body)
		require.NotEmpty(t, got["email"], body)
		require.NotEmpty(t, got["password"], body)
		require.Empty(t, resp.Header.Values("Set-Cookie"))
	})

	const email = "nojs@example.com"
	t.Run("a sign-up, its verification link and a login, without the script, open a browser session", func(t *testing.T) {
		resp, body := s.postForm(host, "/signup", url.Values{"email": {email}, "password": {goodPassword}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Contains(t, pageMessage(body), "Account created.")

		_, _, token := s.mailTo(email, "Confirm your email address")
		token, err := url.QueryUnescape(token)
		require.NoError(t, err)
		resp, page := s.restResponse(http.MethodGet, host, "/verify-email?token="+url.QueryEscape(token), "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(page), `<form id="verify-form" method="post" action="/verify-email">`, "a button verifies without the script")
		resp, body = s.postForm(host, "/verify-email", url.Values{"token": {token}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Contains(t, body, "Your email "+email+" is verified")

		resp, body = s.postForm(host, "/login", url.Values{"email": {email}, "password": {goodPassword}, "next": {"/admin/users"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		require.Equal(t, "/admin/users", resp.Header.Get("Location"))
		require.NotContains(t, body, goodPassword)
		cookies := setCookies(t, resp)
		require.Len(t, cookies, 4, "the cookies of a browser's login through the API: %v", resp.Header.Values("Set-Cookie"))
		require.NotNil(t, cookies["tenantry_sso /oauth/"], "the OpenID Provider's SSO cookie")
		for _, path := range []string{"/v1/auth:refresh", "/v1/auth:logout"} {
			c := cookies["tenantry_session "+path]
			require.NotNil(t, c, path)
			require.True(t, c.HttpOnly, path)
			require.Equal(t, http.SameSiteStrictMode, c.SameSite, path)
		}
		session := browserCookies{session: cookies["tenantry_session /v1/auth:refresh"].Value, csrf: cookies["tenantry_csrf /"].Value}

		// What the next page's script does with the session.
		code, raw := s.rest(http.MethodPost, host, "/v1/auth:refresh", "{}", "Cookie", session.header(), "X-CSRF-Token", session.csrf)
		require.Equal(t, http.StatusOK, code, "%s", raw)
		var refreshed struct{ AccessToken string }
		require.NoError(t, json.Unmarshal(raw, &refreshed))
		code, raw = s.rest(http.MethodGet, host, "/v1/auth/me", "", "Authorization", "Bearer "+refreshed.AccessToken)
		require.Equal(t, http.StatusOK, code, "%s", raw)
		require.Contains(t, string(raw), email)
	})

	t.Run("a refused login answers as the API does, whether or not the account exists", func(t *testing.T) {
		var messages []string
		for _, who := range []string{email, "nobody@example.com"} {
			resp, body := s.postForm(host, "/login", url.Values{"email": {who}, "password": {"wrong password 1234"}})
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
			require.Empty(t, resp.Header.Values("Set-Cookie"))
			require.Empty(t, pageFieldErrors(body))
			require.Contains(t, body, `value="`+who+`"`)
			messages = append(messages, pageMessage(body))
		}
		require.Equal(t, messages[0], messages[1])
		code, raw := restLogin(s, "nobody@example.com", "wrong password 1234")
		require.Equal(t, http.StatusUnauthorized, code)
		var api apiError
		require.NoError(t, json.Unmarshal(raw, &api))
		require.Equal(t, api.Message, messages[0])
	})

	t.Run("the login form and the API share the login rate limit", func(t *testing.T) {
		const target = "limited@example.com"
		for i := range 10 { // the burst per account and address, half through each
			if i%2 == 0 {
				resp, body := s.postForm(host, "/login", url.Values{"email": {target}, "password": {"wrong password 1234"}})
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "attempt %d: %s", i, body)
			} else {
				code, raw := restLogin(s, target, "wrong password 1234")
				require.Equal(t, http.StatusUnauthorized, code, "attempt %d: %s", i, raw)
			}
		}
		resp, body := s.postForm(host, "/login", url.Values{"email": {target}, "password": {"wrong password 1234"}})
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
		require.Contains(t, pageMessage(body), "login attempts")
		code, raw := restLogin(s, target, "wrong password 1234")
		require.Equal(t, http.StatusTooManyRequests, code, "%s", raw)
	})

	t.Run("a forgotten password is reset without the script", func(t *testing.T) {
		resp, body := s.postForm(host, "/forgot-password", url.Values{"email": {email}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Contains(t, pageMessage(body), "If this email belongs to an account")
		_, _, token := s.mailTo(email, "Reset your password")
		token, err := url.QueryUnescape(token)
		require.NoError(t, err)

		resp, body = s.postForm(host, "/reset-password", url.Values{"token": {token}, "new_password": {"short"}})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		require.NotEmpty(t, pageFieldErrors(body)["new_password"], body)
		require.Contains(t, body, `name="token" value="`+html.EscapeString(token)+`"`, "the form can be sent again")

		const newPassword = "meadow quartz lantern 7 river"
		resp, body = s.postForm(host, "/reset-password", url.Values{"token": {token}, "new_password": {newPassword}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Contains(t, pageMessage(body), "Your password is changed")
		code, raw := restLogin(s, email, newPassword)
		require.Equal(t, http.StatusOK, code, "%s", raw)
	})

	t.Run("an invitation is accepted without the script", func(t *testing.T) {
		const invited = "invited-nojs@example.com"
		_, err := s.users.InviteUser(asOperator("demo"), &identityv1.InviteUserRequest{Email: invited})
		require.NoError(t, err)
		_, _, token := s.mailTo(invited, "You are invited")
		token, err = url.QueryUnescape(token)
		require.NoError(t, err)
		resp, body := s.postForm(host, "/accept-invitation", url.Values{"token": {token}, "password": {goodPassword}, "display_name": {"Grace"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Contains(t, pageMessage(body), "Your account is ready")
		code, raw := restLogin(s, invited, goodPassword)
		require.Equal(t, http.StatusOK, code, "%s", raw)
	})

	t.Run("a form from another site is refused and logs no one in", func(t *testing.T) {
		for _, headers := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "", "Origin", "http://evil.localhost"},
		} {
			resp, body := s.postForm(host, "/login", url.Values{"email": {email}, "password": {goodPassword}}, headers...)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "%v: %s", headers, body)
			require.Empty(t, resp.Header.Values("Set-Cookie"), headers)
			require.Contains(t, body, "came from another site")
		}
	})
}

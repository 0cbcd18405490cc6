package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/oidcop"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
)

// Browser sessions over REST.
//
// A browser client says so with the header "X-Tenantry-Client: browser" on
// login. It then gets the refresh token as a cookie instead of in the JSON
// body, where page scripts (and so injected scripts) could read it:
//
//   - tenantry_session holds the refresh token: HttpOnly; Secure unless the
//     host is localhost or *.localhost (browsers treat http://localhost as
//     secure, and `make run` serves plain HTTP there); SameSite=Strict,
//     since only the tenant's own pages call refresh and logout, never a
//     navigation from another site; host-only (no Domain), so it goes back
//     only to the tenant host that set it; Max-Age the session's lifetime.
//     A cookie path cannot cover "/v1/auth:refresh" and "/v1/auth:logout"
//     without covering all of /v1, so the cookie is set once for each of
//     these two paths: the refresh token reaches nothing else.
//   - tenantry_csrf holds a random CSRF token, readable by the page (not
//     HttpOnly), Path=/.
//   - tenantry_device holds a remembered device's token (VerifyMfa with
//     remember_device, where the tenant allows it): HttpOnly,
//     SameSite=Strict, for the two paths a login is posted to
//     (/v1/auth:login, and /login for the page's form); a login takes it
//     from the cookie when the body has none. Logout leaves it: it is the
//     device's, not the session's.
//
// RefreshSession and Logout take the refresh token from the cookie when the
// body has none; refresh rotates the cookie, logout clears both. Requests
// that change state (anything but GET, HEAD, OPTIONS) and carry the session
// cookie without an Authorization header must echo the CSRF cookie in an
// X-CSRF-Token header (double submit): a cross-site page can neither read
// the cookie nor send a custom header without a CORS preflight. Requests
// authenticated by a bearer header alone are not open to CSRF and pass. API
// clients keep getting bearer and refresh tokens in the body.
const (
	headerClient  = "X-Tenantry-Client"
	clientBrowser = "browser"
	headerCSRF    = "X-CSRF-Token"
	cookieSession = "tenantry_session"
	cookieCSRF    = "tenantry_csrf"
	pathLogin     = "/v1/auth:login"
	pathVerifyMfa = "/v1/auth:verifyMfa"
	// pathConfirmEnrollment completes a login whose tenant requires a
	// second factor the account had not enrolled yet.
	pathConfirmEnrollment = "/v1/auth:confirmLoginTotpEnrollment"
	pathLoginWithCode     = "/v1/auth:loginWithCode"
	cookieDevice          = "tenantry_device"
	pathRefresh           = "/v1/auth:refresh"
	pathLogout            = "/v1/auth:logout"
	refreshJSONKey        = "refresh_token"
)

// pathPasskeyLogin and pathPasskeyMfa are logins by passkey, without a
// password and as the second factor.
const (
	pathPasskeyLogin = "/v1/auth:finishPasskeyLogin"
	pathPasskeyMfa   = "/v1/auth:finishPasskeyMfa"
)

// sessionCookiePaths are the only paths the session cookie is sent to.
var sessionCookiePaths = []string{pathRefresh, pathLogout}

// deviceCookiePaths are the paths a login is posted to: the API's and the
// login page's form.
var deviceCookiePaths = []string{pathLogin, "/login"}

// deviceCookieMaxAge is the longest a tenant remembers a device
// (account.HighestMFARememberDays); the server decides, by the token's own
// expiry, whether a device is still remembered.
const deviceCookieMaxAge = 90 * 24 * time.Hour

// browserSessions implements cookie sessions and CSRF checks around
// identity's REST routes.
type browserSessions struct {
	ttl func() time.Duration // the session lifetime, the cookies' Max-Age
	// sso sets and clears the OpenID Provider's SSO cookie with the
	// session's (see oidcop); nil without it.
	sso *oidcop.Provider
}

type browserKey struct{}

// browserRequest marks a REST call whose tokens travel in cookies.
type browserRequest struct {
	secure bool // whether cookies get the Secure attribute
	r      *http.Request
}

// wrap checks CSRF, moves the session cookie into refresh and logout
// bodies, and clears the cookies on logout. Setting them is forwardResponse's
// job, once the call has succeeded.
func (b *browserSessions) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, _ := r.Cookie(cookieSession)
		hasSession := session != nil && session.Value != ""
		if hasSession && changesState(r.Method) && r.Header.Get("Authorization") == "" {
			if err := checkCSRF(r); err != nil {
				restgateway.WriteError(w, r, err)
				return
			}
		}
		browser := strings.EqualFold(r.Header.Get(headerClient), clientBrowser)
		if r.Method == http.MethodPost {
			switch r.URL.Path {
			case pathRefresh, pathLogout:
				if hasSession {
					if err := injectRefreshToken(r, session.Value); err != nil {
						restgateway.WriteError(w, r, err)
						return
					}
					browser = true
				}
				if browser && r.URL.Path == pathLogout {
					// Whatever the outcome, the browser's cookies are done
					// with: a failed logout means the session is gone.
					b.clearCookies(w, r)
				}
			case pathLogin:
				if device, _ := r.Cookie(cookieDevice); device != nil && device.Value != "" {
					if err := injectField(r, "device_token", "deviceToken", device.Value); err != nil {
						restgateway.WriteError(w, r, err)
						return
					}
				}
			case pathVerifyMfa, pathConfirmEnrollment, pathLoginWithCode, pathPasskeyLogin, pathPasskeyMfa:
			default:
				browser = false
			}
		} else {
			browser = false
		}
		if browser {
			r = r.WithContext(context.WithValue(r.Context(), browserKey{}, &browserRequest{secure: secureHost(restgateway.RequestHost(r)), r: r}))
		}
		next.ServeHTTP(w, r)
	})
}

// forwardResponse runs before a successful REST response is written: for a
// browser's login or refresh it puts the refresh token in the cookie and
// takes it out of the body.
func (b *browserSessions) forwardResponse(ctx context.Context, w http.ResponseWriter, m proto.Message) error {
	br, ok := ctx.Value(browserKey{}).(*browserRequest)
	if !ok {
		return nil
	}
	switch resp := m.(type) {
	case *identityv1.LoginResponse:
		if resp.GetMfaChallenge() != nil {
			return nil // no session yet: VerifyMfa opens it
		}
		b.setSession(w, br, resp.GetRefreshToken(), true)
		resp.RefreshToken = ""
	case *identityv1.VerifyMfaResponse:
		b.setSession(w, br, resp.GetRefreshToken(), true)
		resp.RefreshToken = ""
		if resp.GetDeviceToken() != "" {
			setDeviceCookie(w, br.secure, resp.GetDeviceToken())
			resp.DeviceToken = ""
		}
	case *identityv1.ConfirmLoginTotpEnrollmentResponse:
		b.setSession(w, br, resp.GetRefreshToken(), true)
		resp.RefreshToken = ""
	case *identityv1.LoginWithCodeResponse:
		if resp.GetMfaChallenge() != nil {
			return nil // no session yet: VerifyMfa opens it
		}
		b.setSession(w, br, resp.GetRefreshToken(), true)
		resp.RefreshToken = ""
	case *identityv1.FinishPasskeyLoginResponse:
		b.setSession(w, br, resp.GetRefreshToken(), true)
		resp.RefreshToken = ""
	case *identityv1.FinishPasskeyMfaResponse:
		b.setSession(w, br, resp.GetRefreshToken(), true)
		resp.RefreshToken = ""
	case *identityv1.RefreshSessionResponse:
		b.setSession(w, br, resp.GetRefreshToken(), false)
		resp.RefreshToken = ""
	}
	return nil
}

// setSession sets the session cookies and, at login, a new CSRF token.
func (b *browserSessions) setSession(w http.ResponseWriter, br *browserRequest, refreshToken string, login bool) {
	maxAge := int(b.ttl() / time.Second)
	for _, path := range sessionCookiePaths {
		http.SetCookie(w, &http.Cookie{
			Name: cookieSession, Value: refreshToken, Path: path, MaxAge: maxAge,
			HttpOnly: true, Secure: br.secure, SameSite: http.SameSiteStrictMode,
		})
	}
	if login {
		http.SetCookie(w, &http.Cookie{
			Name: cookieCSRF, Value: rand.Text(), Path: "/", MaxAge: maxAge,
			Secure: br.secure, SameSite: http.SameSiteStrictMode,
		})
		if b.sso != nil && br.r != nil {
			// The login is also the browser's single sign-on session for
			// the tenant's OAuth clients.
			b.sso.SetSSOCookie(w, br.r, refreshToken)
		}
	}
}

// setDeviceCookie gives the browser a remembered device's token.
func setDeviceCookie(w http.ResponseWriter, secure bool, token string) {
	for _, path := range deviceCookiePaths {
		http.SetCookie(w, &http.Cookie{
			Name: cookieDevice, Value: token, Path: path, MaxAge: int(deviceCookieMaxAge / time.Second),
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
		})
	}
}

// clearCookies expires the session and CSRF cookies.
func (b *browserSessions) clearCookies(w http.ResponseWriter, r *http.Request) {
	secure := secureHost(restgateway.RequestHost(r))
	for _, path := range sessionCookiePaths {
		http.SetCookie(w, &http.Cookie{Name: cookieSession, Path: path, MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	}
	http.SetCookie(w, &http.Cookie{Name: cookieCSRF, Path: "/", MaxAge: -1, Secure: secure, SameSite: http.SameSiteStrictMode})
	if b.sso != nil {
		b.sso.ClearSSOCookie(w, r)
	}
}

// checkCSRF requires the X-CSRF-Token header to equal the CSRF cookie.
func checkCSRF(r *http.Request) error {
	header := r.Header.Get(headerCSRF)
	c, err := r.Cookie(cookieCSRF)
	if err != nil || c.Value == "" || header == "" || subtle.ConstantTimeCompare([]byte(header), []byte(c.Value)) != 1 {
		return fault.New(fault.PermissionDenied, "CSRF_TOKEN_INVALID",
			"a request authenticated by the session cookie must send the %s header with the value of the %s cookie", headerCSRF, cookieCSRF)
	}
	return nil
}

// injectRefreshToken adds the cookie's refresh token to a JSON body that has
// none; a token in the body wins.
func injectRefreshToken(r *http.Request, token string) error {
	return injectField(r, refreshJSONKey, "refreshToken", token)
}

// injectField adds value to a JSON body as field key (camelKey in
// grpc-gateway's other spelling) when the body has none; a value in the
// body wins.
func injectField(r *http.Request, key, camelKey, value string) error {
	var raw []byte
	if r.Body != nil {
		var err error
		if raw, err = io.ReadAll(r.Body); err != nil {
			return fault.New(fault.InvalidArgument, "REQUEST_BODY_UNREADABLE", "the request body could not be read")
		}
	}
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return fault.Invalid("body", "REQUEST_BODY_INVALID", "the request body is not a JSON object")
		}
	}
	inBody := false
	for _, k := range []string{key, camelKey} {
		var v string
		if js, ok := fields[k]; ok && json.Unmarshal(js, &v) == nil && v != "" {
			inBody = true
		}
	}
	if !inBody {
		delete(fields, camelKey)
		fields[key], _ = json.Marshal(value)
		raw, _ = json.Marshal(fields)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.ContentLength = int64(len(raw))
	r.Header.Del("Content-Length")
	return nil
}

// changesState reports whether a method may change state, so needs CSRF
// protection when a cookie authenticates it.
func changesState(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// secureHost reports whether cookies for host need the Secure attribute:
// everywhere but localhost, which browsers treat as a secure context over
// plain HTTP.
func secureHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host != "localhost" && !strings.HasSuffix(host, ".localhost")
}

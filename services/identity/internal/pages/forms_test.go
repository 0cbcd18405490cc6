package pages_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"tenantry.dev/identity/internal/branding"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/pages"
)

// fakeAccounts records what the forms ask for and answers with err.
type fakeAccounts struct {
	mu    sync.Mutex
	calls []string // "Method key=value ..." of each call
	err   error
	email string // VerifyEmail's answer

	providers []pages.SignInProvider // SignInProviders' answer
	pending   *pages.PendingLink     // PendingLink's answer
	challenge string                 // Login's and LoginWithCode's MFA challenge, when set
	// passkeyOnly marks that challenge (and PendingMFA's) as one whose
	// only factor is a passkey.
	passkeyOnly bool
	pendingMFA  string // PendingMFA's challenge, when set
}

func (f *fakeAccounts) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeAccounts) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeAccounts) SignUp(_ *http.Request, in pages.SignUpForm) (bool, error) {
	return true, f.record("SignUp email=" + in.Email + " password=" + in.Password + " display_name=" + in.DisplayName)
}

func (f *fakeAccounts) Login(w http.ResponseWriter, _ *http.Request, email, password string) (pages.LoginStep, error) {
	if err := f.record("Login email=" + email + " password=" + password); err != nil {
		return pages.LoginStep{}, err
	}
	if f.challenge != "" {
		return pages.LoginStep{MFAChallenge: f.challenge, PasskeyOnly: f.passkeyOnly}, nil
	}
	http.SetCookie(w, &http.Cookie{Name: "tenantry_session", Value: "refresh", HttpOnly: true})
	return pages.LoginStep{}, nil
}

func (f *fakeAccounts) PendingMFA(*http.Request) (pages.LoginStep, bool) {
	if f.pendingMFA != "" {
		return pages.LoginStep{MFAChallenge: f.pendingMFA, PasskeyOnly: f.passkeyOnly}, true
	}
	return pages.LoginStep{}, false
}

func (f *fakeAccounts) LoginByEmailCode(*http.Request) bool { return false }

func (f *fakeAccounts) Brand(*http.Request) branding.Brand {
	return branding.Brand{Name: "Example Co", LogoURL: "https://cdn.example.com/logo.png", Accent: "#ffeb3b"}
}

func (f *fakeAccounts) RequestLoginCode(_ *http.Request, email string) (string, error) {
	return "code-token", f.record("RequestLoginCode email=" + email)
}

func (f *fakeAccounts) LoginWithCode(w http.ResponseWriter, _ *http.Request, token, code string) (pages.LoginStep, error) {
	if err := f.record("LoginWithCode token=" + token + " code=" + code); err != nil {
		return pages.LoginStep{}, err
	}
	if f.challenge != "" {
		return pages.LoginStep{MFAChallenge: f.challenge, PasskeyOnly: f.passkeyOnly}, nil
	}
	http.SetCookie(w, &http.Cookie{Name: "tenantry_session", Value: "refresh", HttpOnly: true})
	return pages.LoginStep{}, nil
}

func (f *fakeAccounts) ConfirmEnrollment(w http.ResponseWriter, _ *http.Request, challenge, code string) ([]string, error) {
	if err := f.record("ConfirmEnrollment challenge=" + challenge + " code=" + code); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{Name: "tenantry_session", Value: "refresh", HttpOnly: true})
	return []string{"AAAA-BBBB-CCCC-DDDD"}, nil
}

func (f *fakeAccounts) VerifyMFA(w http.ResponseWriter, _ *http.Request, challenge, code string, _ bool) error {
	if err := f.record("VerifyMFA challenge=" + challenge + " code=" + code); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: "tenantry_session", Value: "refresh", HttpOnly: true})
	return nil
}

func (f *fakeAccounts) RequestPasswordReset(_ *http.Request, email string) error {
	return f.record("RequestPasswordReset email=" + email)
}

func (f *fakeAccounts) ResetPassword(_ *http.Request, token, newPassword string) error {
	return f.record("ResetPassword token=" + token + " new_password=" + newPassword)
}

func (f *fakeAccounts) AcceptInvitation(_ *http.Request, in pages.AcceptForm) error {
	return f.record("AcceptInvitation token=" + in.Token + " password=" + in.Password + " display_name=" + in.DisplayName)
}

func (f *fakeAccounts) VerifyEmail(_ *http.Request, token string) (string, error) {
	return f.email, f.record("VerifyEmail token=" + token)
}

func (f *fakeAccounts) SignInProviders(*http.Request) []pages.SignInProvider { return f.providers }

func (f *fakeAccounts) PendingLink(*http.Request) (pages.PendingLink, bool) {
	if f.pending == nil {
		return pages.PendingLink{}, false
	}
	return *f.pending, true
}

func (f *fakeAccounts) LinkWithPassword(_ http.ResponseWriter, _ *http.Request, password string) (string, error) {
	return "/after-link", f.record("LinkWithPassword password=" + password)
}

// post sends a form to a page as a browser does (same origin).
func post(h http.Handler, target string, form url.Values, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// fieldError returns the error the page shows next to the field name.
func fieldError(body, name string) string {
	m := regexp.MustCompile(`<p id="` + name + `-error" class="field-error">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

const secret = "hunter2-secret-pass"

var violations = &pages.FormError{Status: http.StatusBadRequest, Message: "email is not valid; choose a longer password", Fields: []pages.FieldError{
	{Field: "email", Description: "email is not a valid email address"},
	{Field: "password", Description: "choose a password of at least 12 characters; it has 5"},
	{Field: "user.display_name", Description: "display_name must be one line"},
}}

func TestFormsPostedWithoutTheScript(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		target     string
		form       url.Values
		err        error
		wantCall   string
		wantStatus int
		check      func(t *testing.T, w *httptest.ResponseRecorder)
	}{
		{
			name: "a login redirects to next and sets the session cookie", target: "/login",
			form:     url.Values{"email": {"ada@example.com"}, "password": {secret}, "next": {"/admin/users?page=2"}},
			wantCall: "Login email=ada@example.com password=" + secret, wantStatus: http.StatusSeeOther,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Equal(t, "/admin/users?page=2", w.Header().Get("Location"))
				require.Contains(t, w.Header().Get("Set-Cookie"), "tenantry_session=")
			},
		},
		{
			name: "a login with a foreign next goes to the account page", target: "/login",
			form:     url.Values{"email": {"ada@example.com"}, "password": {secret}, "next": {"//evil.example/x"}},
			wantCall: "Login email=ada@example.com password=" + secret, wantStatus: http.StatusSeeOther,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Equal(t, "/account", w.Header().Get("Location"))
			},
		},
		{
			name: "a refused login shows the API's message, keeps the email and next, not the password", target: "/login",
			form:     url.Values{"email": {"ada@example.com"}, "password": {secret}, "next": {"/admin/users"}},
			err:      &pages.FormError{Status: http.StatusUnauthorized, Message: "the email or password is not correct"},
			wantCall: "Login email=ada@example.com password=" + secret, wantStatus: http.StatusUnauthorized,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				body := w.Body.String()
				require.Contains(t, body, `class="message error"`)
				require.Contains(t, body, "the email or password is not correct")
				require.Contains(t, body, `value="ada@example.com"`)
				require.Contains(t, body, `<input type="hidden" name="next" value="/admin/users">`)
				require.Empty(t, w.Header().Get("Set-Cookie"))
			},
		},
		{
			name: "a sign-up with several bad fields shows every error at once", target: "/signup",
			form: url.Values{"email": {"not-an-email"}, "password": {secret}, "display_name": {"Ada"}},
			err:  violations, wantCall: "SignUp email=not-an-email password=" + secret + " display_name=Ada", wantStatus: http.StatusBadRequest,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				body := w.Body.String()
				require.Equal(t, "email is not a valid email address", fieldError(body, "email"))
				require.Equal(t, "choose a password of at least 12 characters; it has 5", fieldError(body, "password"))
				require.Equal(t, "display_name must be one line", fieldError(body, "display_name"))
				require.Equal(t, 3, strings.Count(body, `aria-invalid="true"`))
				require.Equal(t, 1, strings.Count(body, "autofocus"))
				require.Regexp(t, `<input id="email"[^>]*autofocus>`, body)
				require.Contains(t, body, "Please correct the fields marked below.")
				require.Contains(t, body, `value="not-an-email"`)
				require.Contains(t, body, `value="Ada"`)
			},
		},
		{
			name: "a sign-up says what happens next", target: "/signup",
			form:     url.Values{"email": {"ada@example.com"}, "password": {secret}},
			wantCall: "SignUp email=ada@example.com password=" + secret + " display_name=", wantStatus: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Contains(t, w.Body.String(), "Account created. We sent you an email")
				require.NotContains(t, w.Body.String(), "ada@example.com", "the form is empty again")
			},
		},
		{
			name: "a violation of a field the form does not have goes to the message", target: "/reset-password",
			form: url.Values{"token": {"tok-1"}, "new_password": {secret}},
			err: &pages.FormError{Status: http.StatusBadRequest, Message: "this link is invalid or has expired; ask for a new one",
				Fields: []pages.FieldError{{Field: "token", Description: "this link is invalid or has expired; ask for a new one"}}},
			wantCall: "ResetPassword token=tok-1 new_password=" + secret, wantStatus: http.StatusBadRequest,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				body := w.Body.String()
				require.Contains(t, body, "this link is invalid or has expired")
				require.NotContains(t, body, `aria-invalid`)
				require.Contains(t, body, `<input type="hidden" name="token" value="tok-1">`, "the form can be sent again")
			},
		},
		{
			name: "a reset is done and its form gone", target: "/reset-password",
			form:     url.Values{"token": {"tok-1"}, "new_password": {secret}},
			wantCall: "ResetPassword token=tok-1 new_password=" + secret, wantStatus: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Contains(t, w.Body.String(), "Your password is changed")
				require.NotContains(t, w.Body.String(), "<form")
			},
		},
		{
			name: "a forgotten password gets the one answer", target: "/forgot-password",
			form: url.Values{"email": {"ada@example.com"}}, wantCall: "RequestPasswordReset email=ada@example.com", wantStatus: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Contains(t, w.Body.String(), "If this email belongs to an account")
			},
		},
		{
			name: "an invitation is accepted", target: "/accept-invitation",
			form:     url.Values{"token": {"tok-2"}, "password": {secret}, "display_name": {"Ada"}},
			wantCall: "AcceptInvitation token=tok-2 password=" + secret + " display_name=Ada", wantStatus: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Contains(t, w.Body.String(), "Your account is ready")
			},
		},
		{
			name: "an email is verified", target: "/verify-email",
			form: url.Values{"token": {"tok-3"}}, wantCall: "VerifyEmail token=tok-3", wantStatus: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Contains(t, w.Body.String(), "Your email ada@example.com is verified")
				require.NotContains(t, w.Body.String(), "<form")
			},
		},
		{
			name: "an error that is no FormError says no more than the API", target: "/forgot-password",
			form: url.Values{"email": {"ada@example.com"}}, err: errors.New(`pq: relation "users" does not exist`),
			wantCall: "RequestPasswordReset email=ada@example.com", wantStatus: http.StatusInternalServerError,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				require.Contains(t, w.Body.String(), "internal error")
				require.NotContains(t, w.Body.String(), "relation")
			},
		},
		{
			name: "fields in the URL are not read, only the body's", target: "/login?email=eve%40example.com&password=" + secret,
			form:     url.Values{"email": {"ada@example.com"}, "password": {"from-the-body"}},
			wantCall: "Login email=ada@example.com password=from-the-body", wantStatus: http.StatusSeeOther,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			accounts := &fakeAccounts{err: c.err, email: "ada@example.com"}
			w := post(pages.Handler(accounts), c.target, c.form)
			require.Equal(t, c.wantStatus, w.Code, w.Body.String())
			require.Equal(t, []string{c.wantCall}, accounts.Calls())
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			require.NotContains(t, w.Body.String(), secret, "a password is never shown again")
			if w.Code != http.StatusSeeOther {
				require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
			}
			if c.check != nil {
				c.check(t, w)
			}
		})
	}
}

func TestFormsFromAnotherOriginAreRefused(t *testing.T) {
	t.Parallel()
	form := url.Values{"email": {"ada@example.com"}, "password": {secret}}
	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"another site, says Sec-Fetch-Site", []string{"Sec-Fetch-Site", "cross-site"}},
		{"another tenant's host, same site", []string{"Sec-Fetch-Site", "same-site"}},
		{"another origin, says Origin, from a browser without Sec-Fetch-Site", []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}},
		{"an opaque origin", []string{"Sec-Fetch-Site", "", "Origin", "null"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, page := range []string{"/login", "/signup", "/forgot-password"} {
				accounts := &fakeAccounts{}
				w := post(pages.Handler(accounts), page, form, c.headers...)
				require.Equal(t, http.StatusForbidden, w.Code, page)
				require.Empty(t, accounts.Calls(), "%s: nothing is done", page)
				require.Contains(t, w.Body.String(), "came from another site", page)
				require.NotContains(t, w.Body.String(), "ada@example.com", page)
				require.Empty(t, w.Header().Get("Set-Cookie"), page)
			}
		})
	}
	t.Run("the page's own origin is accepted, by Origin too", func(t *testing.T) {
		t.Parallel()
		accounts := &fakeAccounts{}
		w := post(pages.Handler(accounts), "http://demo.localhost/forgot-password", url.Values{"email": {"ada@example.com"}},
			"Sec-Fetch-Site", "", "Origin", "http://demo.localhost")
		require.Equal(t, http.StatusOK, w.Code)
		require.Len(t, accounts.Calls(), 1)
	})
}

func TestFormsOfLoggedInPagesAreRefused(t *testing.T) {
	t.Parallel()
	for _, page := range []string{"/account", "/admin/users", "/admin/clients"} {
		accounts := &fakeAccounts{}
		w := post(pages.Handler(accounts), page, url.Values{"current_password": {secret}, "new_password": {secret},
			"display_name": {"Web"}, "redirect_uris": {"https://app.example.com/cb"}, "grant_types": {"GRANT_TYPE_AUTHORIZATION_CODE"}})
		require.Equal(t, http.StatusMethodNotAllowed, w.Code, page)
		require.Equal(t, "GET, HEAD", w.Header().Get("Allow"), page)
		require.Contains(t, w.Body.String(), `id="form-not-sent"`, page)
		require.NotContains(t, w.Body.String(), secret, page)
		require.NotContains(t, w.Body.String(), "app.example.com", page)
		require.Empty(t, accounts.Calls(), page)
	}
	w := serve(http.MethodPut, "/login", "")
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	w2 := httptest.NewRecorder()
	pages.Handler(&fakeAccounts{}).ServeHTTP(w2, httptest.NewRequest(http.MethodDelete, "/login", nil))
	require.Equal(t, "GET, HEAD, POST", w2.Header().Get("Allow"))
}

func TestPagesOpenedFromALinkCarryItInTheirForm(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, target, want, notWant string
	}{
		{"a reset link's token", "/reset-password?token=abc%22%3Cdef", `<input type="hidden" name="token" value="abc&#34;&lt;def">`, "has no token"},
		{"an invitation's token", "/accept-invitation?token=xyz", `<input type="hidden" name="token" value="xyz">`, "has no token"},
		{"a verification link's token, with a button", "/verify-email?token=v1", `<input type="hidden" name="token" value="v1">`, "has no token"},
		{"a link without a token says so", "/reset-password", "This link has no token", ""},
		{"a verification link without a token has no form", "/verify-email", "This link has no token", "<form"},
		{"the login's local next", "/login?next=%2Fadmin%2Fusers", `<input type="hidden" name="next" value="/admin/users">`, ""},
		{"the login without next", "/login", `<form id="login-form"`, `name="next"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := serve(http.MethodGet, c.target, "")
			require.Equal(t, http.StatusOK, w.Code)
			require.Contains(t, w.Body.String(), c.want)
			if c.notWant != "" {
				require.NotContains(t, w.Body.String(), c.notWant)
			}
		})
	}
}

// TestPagesPasskeyOnlySecondStep: a login by email code, by another
// provider or by password whose second step takes only a passkey shows no
// code form (it could never succeed), but the passkey step's message and
// the challenge for the script's passkey button; an account with codes
// still gets the code form.
func TestPagesPasskeyOnlySecondStep(t *testing.T) {
	t.Parallel()
	codeForm := regexp.MustCompile(`<form id="mfa-form"[^>]*>`)
	for _, tc := range []struct {
		name     string
		accounts *fakeAccounts
		answer   func(h http.Handler) *httptest.ResponseRecorder
	}{
		{"a login by email code", &fakeAccounts{challenge: "ch-1", passkeyOnly: true}, func(h http.Handler) *httptest.ResponseRecorder {
			return post(h, "/login/code", url.Values{"login_code_token": {"tok"}, "code": {"123456"}})
		}},
		{"a sign-in with another provider", &fakeAccounts{pendingMFA: "ch-1", passkeyOnly: true}, func(h http.Handler) *httptest.ResponseRecorder {
			return get(h, "/login")
		}},
		{"a login by password", &fakeAccounts{challenge: "ch-1", passkeyOnly: true}, func(h http.Handler) *httptest.ResponseRecorder {
			return post(h, "/login", url.Values{"email": {"ada@example.com"}, "password": {"pw"}})
		}},
	} {
		t.Run(tc.name+" with only a passkey shows no code form", func(t *testing.T) {
			t.Parallel()
			w := tc.answer(pages.Handler(tc.accounts))
			require.Equal(t, http.StatusOK, w.Code)
			body := w.Body.String()
			form := codeForm.FindString(body)
			require.Contains(t, form, " hidden")
			require.Contains(t, form, "data-passkey-only")
			require.Contains(t, body, `<input type="hidden" name="mfa_challenge" value="ch-1">`)
			require.Contains(t, body, "Use your passkey to finish logging in.")
			require.NotContains(t, body, "Enter the code your authenticator app shows")
		})
	}
	t.Run("a login by email code with an app shows the code form", func(t *testing.T) {
		t.Parallel()
		w := post(pages.Handler(&fakeAccounts{challenge: "ch-1"}), "/login/code", url.Values{"login_code_token": {"tok"}, "code": {"123456"}})
		require.Equal(t, http.StatusOK, w.Code)
		form := codeForm.FindString(w.Body.String())
		require.NotContains(t, form, "hidden")
		require.Contains(t, w.Body.String(), "Enter the code your authenticator app shows")
	})
}

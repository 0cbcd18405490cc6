package pages

import (
	"net/http"
	"net/url"

	"tenantry.dev/identity/internal/branding"
	"tenantry.dev/identity/internal/i18n"
)

// Accounts does on the server what a page's form asks for, when a browser
// posts the form by itself (JavaScript off, or the form sent before the
// script loaded). An implementation calls the domain methods identity's API
// calls, with the same rules, answers and rate limits; its errors are
// *FormError values saying what the API would say (any other error is shown
// as an internal error).
type Accounts interface {
	// SignUp creates an account, or answers as if it had (an address that
	// has one already gets the same answer); verificationRequired says a
	// link was mailed to confirm the address.
	SignUp(r *http.Request, f SignUpForm) (verificationRequired bool, err error)
	// Login opens a session and sets, on w, the browser session's cookies
	// that the pages' script sets at login (the access token, which the
	// script would keep, is not handed out: the next page's script gets
	// one with the session cookie). When the account has a second factor,
	// or the tenant requires one the account has not enrolled, it opens
	// nothing and returns the step's MFA challenge (and, for the latter,
	// the new authenticator app's secret to show).
	Login(w http.ResponseWriter, r *http.Request, email, password string) (LoginStep, error)
	// VerifyMFA is a login's second step: code (an authenticator app's 6
	// digits, or a recovery code) answers the challenge Login returned,
	// and the session opens as Login opens it.
	// rememberDevice asks to remember the browser for the tenant's days.
	VerifyMFA(w http.ResponseWriter, r *http.Request, mfaChallenge, code string, rememberDevice bool) error
	// ConfirmEnrollment enrols the app of a login's Enrollment with one of
	// its codes, opens the session as Login does, and returns the
	// account's recovery codes, to be shown this once.
	ConfirmEnrollment(w http.ResponseWriter, r *http.Request, mfaChallenge, code string) (recoveryCodes []string, err error)
	// RequestPasswordReset mails a reset link if email has an account; it
	// answers the same either way.
	RequestPasswordReset(r *http.Request, email string) error
	// ResetPassword sets a new password with a reset link's token.
	ResetPassword(r *http.Request, token, newPassword string) error
	// AcceptInvitation activates an invited account.
	AcceptInvitation(r *http.Request, f AcceptForm) error
	// VerifyEmail confirms the address a verification link was sent to and
	// returns it.
	VerifyEmail(r *http.Request, token string) (email string, err error)
	// SignInProviders lists the tenant's other identity providers, for
	// the login and sign-up pages' buttons; none when they cannot be read.
	SignInProviders(r *http.Request) []SignInProvider
	// PendingMFA is the login step of a sign-in with another provider
	// that waits, in this browser, for the account's second factor (or
	// its enrolment); false when there is none.
	PendingMFA(r *http.Request) (LoginStep, bool)
	// LoginByEmailCode says whether the tenant lets its users log in with
	// a code by email (the login page then links to /login/code).
	LoginByEmailCode(r *http.Request) bool
	// RequestLoginCode mails a login code to email if it is an active
	// account's, and returns the token the code works with; the same
	// either way.
	RequestLoginCode(r *http.Request, email string) (token string, err error)
	// LoginWithCode logs in with a login code's token and code as Login
	// does: the session's cookies, or the step a second factor needs.
	LoginWithCode(w http.ResponseWriter, r *http.Request, token, code string) (LoginStep, error)
	// PendingLink describes the provider identity waiting, in this
	// browser, for its owner to prove the account that has its email.
	PendingLink(r *http.Request) (PendingLink, bool)
	// LinkWithPassword connects the pending identity to that account once
	// password proves it, opens the browser's session as Login does, and
	// returns where to go next.
	LinkWithPassword(w http.ResponseWriter, r *http.Request, password string) (next string, err error)
	// Brand is how the pages of r's tenant look: its name, logo and
	// accent colour (tenant settings); the default when they cannot be
	// read.
	Brand(r *http.Request) branding.Brand
}

// LoginStep is what a right password leads to when it opens no session
// yet: the second step's challenge, and Enrollment when the tenant requires
// a second factor the account must enrol first.
type LoginStep struct {
	MFAChallenge string
	Enrollment   *Enrollment
	// RememberDays is for how many days the second step may remember the
	// browser; 0: it may not.
	RememberDays int
	// PasskeyOnly says the account's only factor is a passkey: the page
	// offers no code form, which could never succeed.
	PasskeyOnly bool
}

// Enrollment is a new authenticator app's secret, for the user to put in
// their app.
type Enrollment struct {
	Secret    string
	URI       string // the otpauth:// URI
	QRCodePNG []byte // a QR code of URI; none when only Secret is at hand
}

// SignInProvider is a "Log in with ..." button.
type SignInProvider struct {
	DisplayName string
	// LoginPath starts the login (it takes ?next=).
	LoginPath string
}

// PendingLink is a provider's identity waiting to be connected.
type PendingLink struct {
	Provider    string // the provider's display name
	Email       string // the email it vouched for, which an account here has
	PasswordSet bool   // whether that account has a password to prove it with
}

// SignUpForm is what the sign-up form sends.
type SignUpForm struct {
	Email, Password, DisplayName string
}

// AcceptForm is what the invitation form sends, with its link's token.
type AcceptForm struct {
	Token, Password, DisplayName string
}

// FormError is why an action failed, as identity's API answers the same
// request: its HTTP status, its message and every field violation.
type FormError struct {
	Status  int
	Message string
	Fields  []FieldError
}

// FieldError is one field violation: the field, as the API names it, and
// what to change.
type FieldError struct {
	Field, Description string
}

// Error implements error.
func (e *FormError) Error() string { return e.Message }

// action is what the server does with one page's form: fields are the
// form's inputs a person fills in (in their order on the page), next to
// which their errors are shown; do reads the form, calls Accounts and fills
// v, returning the HTTP status of the page to show, or 0 when it answered
// itself (a redirect).
type action struct {
	fields []string
	do     func(h *handler, w http.ResponseWriter, r *http.Request, v *view, form url.Values) int
}

// actions are the forms the server acts on, by page. The account page's and
// the admin pages' forms act for a logged-in user, whose credential (an
// access token) only the script holds: a browser posting them by itself is
// refused (see refuseForm).
var actions = map[string]action{
	"/signup":            {fields: []string{"email", "password", "display_name"}, do: (*handler).signUp},
	"/login":             {fields: []string{"email", "password", "code", "enrol_code"}, do: (*handler).login},
	"/forgot-password":   {fields: []string{"email"}, do: (*handler).forgotPassword},
	"/reset-password":    {fields: []string{"new_password"}, do: (*handler).resetPassword},
	"/accept-invitation": {fields: []string{"password", "display_name"}, do: (*handler).acceptInvitation},
	"/verify-email":      {do: (*handler).verifyEmail},
	"/login/link":        {fields: []string{"password"}, do: (*handler).linkWithPassword},
	"/login/code":        {fields: []string{"email", "code"}, do: (*handler).loginCode},
}

// tokenPages are the pages opened from an email link with ?token=.
var tokenPages = map[string]bool{"/verify-email": true, "/reset-password": true, "/accept-invitation": true}

// The pages' messages, the same words as the script's (app.js).
const (
	msgNoToken        = "This link has no token. Open the link from your email again."
	msgSignedUp       = "Account created. You can log in now."
	msgSignedUpVerify = "Account created. We sent you an email: open its link to verify your address, then log in."
	msgResetSent      = "If this email belongs to an account, a link to choose a new password is on its way."
	msgPasswordReset  = "Your password is changed. You can log in with it now."
	msgWelcome        = "Welcome! Your account is ready: you can log in now."
	msgVerified       = "Email verified."
	msgVerifyAsk      = "Confirm your email address with the button below."
	msgConnected      = "Connected: you can log in with it from now on."
	msgMFAStep        = "Enter the code your authenticator app shows, or one of your recovery codes."
	msgPasskeyStep    = "Use your passkey to finish logging in."
	msgCodeSent       = "If this email belongs to an account, a code to log in is on its way: enter it below."
	msgEnrolStep      = "This organisation requires a second factor: add this key to an authenticator app, then enter the code it shows."
	msgEnrolled       = "Your authenticator app is on, and you are logged in. Keep your recovery codes now: they will not be shown again."
)

// federationMessages explain the reasons a sign-in with another provider
// came back with (?federation_error=): fixed texts, so that a link
// cannot make the page say anything else.
var federationMessages = map[string]string{
	"FEDERATED_ACCOUNT_NOT_LINKED": "That account is not connected to an account here, and cannot sign up here by itself. " +
		"Log in another way, then connect it from your account page.",
	"IDENTITY_PROVIDER_UNAVAILABLE": "This way of logging in is not available.",
	"FEDERATION_STATE_INVALID":      "The sign-in took too long, or was started in another browser. Start again.",
	"FEDERATION_CANCELLED":          "The sign-in was cancelled.",
	"FEDERATION_LINK_EXPIRED":       "The sign-in took too long. Start again.",
	"ACCOUNT_DISABLED":              "This account is disabled; contact an administrator.",
	"IDENTITY_ALREADY_LINKED": "That account is connected to an account here already, or yours is connected to " +
		"another account of the same provider: disconnect that one first.",
	"SESSION_ENDED": "Your session has ended: log in again.",
	"REAUTHENTICATION_REQUIRED": "Connecting it took too long after you confirmed it was you. " +
		"Connect it again, and confirm it is you when asked.",
}

func federationMessage(reason string) string {
	if m, ok := federationMessages[reason]; ok {
		return m
	}
	return "The sign-in with the other provider did not work. Try again later, or log in another way."
}

// act answers a page's form posted by the browser itself. A cross-origin
// post is refused before anything is read (see the package doc on CSRF).
// Only the body's fields are read, never the URL's; nothing posted is
// logged, and a password is never shown again.
func (h *handler) act(w http.ResponseWriter, r *http.Request, name string, a action) {
	if err := h.crossOrigin.Check(r); err != nil {
		h.refuseForm(w, r, true)
		return
	}
	v := &view{fields: a.fields}
	v.localize(r)
	// The mails the form causes go out in the page's language.
	r = r.WithContext(i18n.WithLanguage(r.Context(), v.printer.Tag()))
	status := http.StatusOK
	if err := r.ParseForm(); err != nil {
		status = v.fail(&FormError{Status: http.StatusBadRequest, Message: "The form could not be read: send it again."})
	} else if status = a.do(h, w, r, v, r.PostForm); status == 0 {
		return
	}
	h.render(w, r, name, v, status)
}

func (h *handler) signUp(_ http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	f := SignUpForm{Email: form.Get("email"), Password: form.Get("password"), DisplayName: form.Get("display_name")}
	verify, err := h.accounts.SignUp(r, f)
	if err != nil {
		v.keep("email", f.Email)
		v.keep("display_name", f.DisplayName)
		return v.fail(err)
	}
	if verify {
		v.succeed(msgSignedUpVerify)
	} else {
		v.succeed(msgSignedUp)
	}
	return http.StatusOK
}

// login answers a login with a redirect to the form's next (IsLocalPath, as
// on the page) or the account page, whose script then has the session. An
// account with a second factor gets the page again with the second step's
// form instead, which posts here too, with the challenge.
func (h *handler) login(w http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	email := form.Get("email")
	if next := form.Get("next"); IsLocalPath(next) {
		v.Next = next
	}
	challenge := form.Get("mfa_challenge")
	switch {
	case challenge != "" && form.Get("enrol") != "":
		codes, err := h.accounts.ConfirmEnrollment(w, r, challenge, form.Get("enrol_code"))
		if err != nil {
			// The same challenge takes another code until it expires; the
			// app has the secret already, shown again without its QR code.
			v.MFAChallenge = challenge
			v.Enrollment = &Enrollment{Secret: form.Get("secret")}
			return v.fail(err)
		}
		v.RecoveryCodes = codes
		v.succeed(msgEnrolled)
		return http.StatusOK
	case challenge != "":
		if err := h.accounts.VerifyMFA(w, r, challenge, form.Get("code"), form.Get("remember_device") != ""); err != nil {
			// The same challenge takes another code until it expires.
			v.MFAChallenge = challenge
			return v.fail(err)
		}
		return loggedIn(w, v)
	}
	step, err := h.accounts.Login(w, r, email, form.Get("password"))
	if err != nil {
		v.keep("email", email)
		return v.fail(err)
	}
	switch {
	case step.Enrollment != nil:
		v.MFAChallenge, v.Enrollment, v.focus = step.MFAChallenge, step.Enrollment, "enrol_code"
		v.succeed(msgEnrolStep)
		return http.StatusOK
	case step.MFAChallenge != "":
		v.MFAChallenge, v.RememberDays = step.MFAChallenge, step.RememberDays
		v.mfaStep(step.PasskeyOnly)
		return http.StatusOK
	}
	return loggedIn(w, v)
}

// loginCode is the login by a code by email: the address (a code is mailed,
// the page asks for it), then the code, which logs in as a password does;
// an account with a second factor goes on at the login page's code form.
func (h *handler) loginCode(w http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	if next := form.Get("next"); IsLocalPath(next) {
		v.Next = next
	}
	if token := form.Get("login_code_token"); token != "" {
		step, err := h.accounts.LoginWithCode(w, r, token, form.Get("code"))
		if err != nil {
			v.LoginCodeToken = token // a mistyped code may be typed again
			return v.fail(err)
		}
		if step.MFAChallenge == "" {
			return loggedIn(w, v)
		}
		v.MFAChallenge, v.Enrollment, v.RememberDays = step.MFAChallenge, step.Enrollment, step.RememberDays
		if step.Enrollment != nil {
			v.focus = "enrol_code"
			v.succeed(msgEnrolStep)
		} else {
			v.mfaStep(step.PasskeyOnly)
		}
		h.render(w, r, "/login", v, http.StatusOK)
		return 0
	}
	email := form.Get("email")
	token, err := h.accounts.RequestLoginCode(r, email)
	if err != nil {
		v.keep("email", email)
		return v.fail(err)
	}
	v.LoginCodeToken, v.focus = token, "code"
	v.succeed(msgCodeSent)
	return http.StatusOK
}

// mfaStep shows the second step of a login: the code form, or, when a
// passkey is the account's only factor, only the passkey button (which the
// script shows) and no code form that could never succeed.
func (v *view) mfaStep(passkeyOnly bool) {
	if passkeyOnly {
		v.PasskeyOnly = true
		v.succeed(msgPasskeyStep)
		return
	}
	v.focus = "code"
	v.succeed(msgMFAStep)
}

// loggedIn sends a browser that just logged in to v.Next, or the account
// page.
func loggedIn(w http.ResponseWriter, v *view) int {
	target := v.Next
	if target == "" {
		target = "/account"
	}
	// 303: the browser follows with a GET, and reloading the next page does
	// not post the password again.
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
	return 0
}

// linkWithPassword connects a provider's identity to the account whose
// password was given, and logs in (a redirect, as login).
func (h *handler) linkWithPassword(w http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	next, err := h.accounts.LinkWithPassword(w, r, form.Get("password"))
	if err != nil {
		return v.fail(err)
	}
	w.Header().Set("Location", next)
	w.WriteHeader(http.StatusSeeOther)
	return 0
}

func (h *handler) forgotPassword(_ http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	email := form.Get("email")
	if err := h.accounts.RequestPasswordReset(r, email); err != nil {
		v.keep("email", email)
		return v.fail(err)
	}
	v.succeed(msgResetSent)
	return http.StatusOK
}

func (h *handler) resetPassword(_ http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	v.Token = form.Get("token")
	if err := h.accounts.ResetPassword(r, v.Token, form.Get("new_password")); err != nil {
		return v.fail(err)
	}
	v.Token, v.Done = "", true
	v.succeed(msgPasswordReset)
	return http.StatusOK
}

func (h *handler) acceptInvitation(_ http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	f := AcceptForm{Token: form.Get("token"), Password: form.Get("password"), DisplayName: form.Get("display_name")}
	v.Token = f.Token
	if err := h.accounts.AcceptInvitation(r, f); err != nil {
		v.keep("display_name", f.DisplayName)
		return v.fail(err)
	}
	v.Token, v.Done = "", true
	v.succeed(msgWelcome)
	return http.StatusOK
}

func (h *handler) verifyEmail(_ http.ResponseWriter, r *http.Request, v *view, form url.Values) int {
	v.Token = form.Get("token")
	email, err := h.accounts.VerifyEmail(r, v.Token)
	if err != nil {
		status := v.fail(err)
		v.Status = v.T("This link could not be used:") + " " + v.T(v.Message)
		return status
	}
	v.Token, v.Done = "", true
	v.Status = v.T("Your email %s is verified. You can log in now.", email)
	v.succeed(msgVerified)
	return http.StatusOK
}

// firstView is the view of a page as a link opens it: the token of an email
// link for its form, and the login's next when it is a local path.
func firstView(path, rawQuery string) *view {
	v := &view{}
	if reason := queryValue(rawQuery, "federation_error"); reason != "" {
		v.Message, v.Failed = federationMessage(reason), true
	} else if path == "/account" && queryValue(rawQuery, "connected") != "" {
		v.Message = msgConnected
	}
	switch {
	case path == "/login":
		if next := queryValue(rawQuery, "next"); IsLocalPath(next) {
			v.Next = next
		}
	case tokenPages[path]:
		v.Token = queryValue(rawQuery, "token")
		switch {
		case v.Token == "" && path == "/verify-email":
			v.Status = msgNoToken
		case v.Token == "":
			v.Message, v.Failed = msgNoToken, true
		case path == "/verify-email":
			v.Status = msgVerifyAsk
		}
	}
	return v
}

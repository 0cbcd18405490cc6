package server

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"tenantry.dev/identity/internal/branding"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/identity/internal/pages"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/restgateway"
)

// withPageRoutes adds the account pages and their assets to routes, the
// gateway's extra routes: like the API, they pass admitHost first, so an
// unknown host gets the API's 404 JSON error rather than a page. forms acts
// on the forms a browser posts by itself.
func withPageRoutes(routes map[string]http.Handler, forms pages.Accounts) map[string]http.Handler {
	h := pages.Handler(forms)
	for _, path := range pages.Paths {
		// Every method, not only GET: a browser posting a page's form by
		// itself (JavaScript off) gets the pages' own answer rather than
		// the API's.
		routes[path] = h
	}
	routes["GET "+pages.AssetsPrefix] = h
	// The site's root is the account page (which offers to log in).
	routes["GET /{$}"] = http.RedirectHandler("/account", http.StatusFound)
	return routes
}

// pageForms does what the pages' forms ask when a browser posts them by
// itself (pages.Accounts). Like the API's handlers, it calls
// account.Manager, whose methods hold every rule, the answers that reveal
// no account and the rate limits; the tenant is the request's host, checked
// as the tenant interceptor checks it, and the client is the one the
// gateway tells the API about. Errors become what the REST API answers the
// same request (grpcerr, then grpc-gateway's HTTP status), so a page says no
// more and no less than the API.
type pageForms struct {
	accounts   *account.Manager
	resolver   *tenancy.Resolver
	sessions   *browserSessions
	federation *federation.Service
}

var _ pages.Accounts = (*pageForms)(nil)

// call runs fn in the tenant of r's host for r's client, and converts its
// error.
func (p *pageForms) call(r *http.Request, fn func(t tenancy.Tenant, c account.Client) error) error {
	t, err := activeTenantOf(p.resolver, r)
	if err == nil {
		err = fn(t, requestClient(r))
	}
	return formError(r, err)
}

// SignUp implements pages.Accounts.
func (p *pageForms) SignUp(r *http.Request, f pages.SignUpForm) (verificationRequired bool, err error) {
	err = p.call(r, func(t tenancy.Tenant, c account.Client) error {
		res, err := p.accounts.SignUp(r.Context(), t, account.SignUpInput{Email: f.Email, Password: f.Password, DisplayName: f.DisplayName}, c)
		verificationRequired = res.VerificationRequired
		return err
	})
	return verificationRequired, err
}

// Login implements pages.Accounts: the session's cookies are those a
// browser's login through the API gets (browserSessions), so the pages'
// script finds the session on the next page.
func (p *pageForms) Login(w http.ResponseWriter, r *http.Request, email, password string) (step pages.LoginStep, err error) {
	err = p.call(r, func(t tenancy.Tenant, c account.Client) error {
		in := account.LoginInput{Email: email, Password: password}
		if device, _ := r.Cookie(cookieDevice); device != nil {
			in.DeviceToken = device.Value
		}
		res, err := p.accounts.Login(r.Context(), t, in, c)
		if err != nil {
			return err
		}
		if !res.Challenged() {
			p.sessions.setSession(w, &browserRequest{secure: secureHost(restgateway.RequestHost(r)), r: r}, res.Tokens.RefreshToken, true)
			return nil
		}
		step.MFAChallenge, step.RememberDays = res.Challenge.Token, res.Challenge.RememberDays
		step.PasskeyOnly = passkeyOnly(res.Challenge.Factors)
		if res.Challenge.EnrollmentRequired {
			// The page shows the new app's key at once: there is nothing
			// else to do with this challenge.
			e, err := p.accounts.BeginTOTPAtLogin(r.Context(), t, res.Challenge.Token, c)
			if err != nil {
				return err
			}
			step.Enrollment = &pages.Enrollment{Secret: e.Secret, URI: e.URI, QRCodePNG: e.QRCodePNG}
		}
		return nil
	})
	return step, err
}

// ConfirmEnrollment implements pages.Accounts: the enrolment a tenant's
// policy requires at login, which then opens the browser's session as Login
// does.
func (p *pageForms) ConfirmEnrollment(w http.ResponseWriter, r *http.Request, mfaChallenge, code string) (codes []string, err error) {
	err = p.call(r, func(t tenancy.Tenant, c account.Client) error {
		var res account.LoginResult
		codes, res, err = p.accounts.ConfirmTOTPAtLogin(r.Context(), t, mfaChallenge, strings.Join(strings.Fields(code), ""), c)
		if err != nil {
			return err
		}
		p.federation.ClearPendingMFA(w, r)
		p.sessions.setSession(w, &browserRequest{secure: secureHost(restgateway.RequestHost(r)), r: r}, res.Tokens.RefreshToken, true)
		return nil
	})
	return codes, err
}

// VerifyMFA implements pages.Accounts: the second step of Login, which
// opens the browser's session as Login does.
func (p *pageForms) VerifyMFA(w http.ResponseWriter, r *http.Request, mfaChallenge, code string, rememberDevice bool) error {
	return p.call(r, func(t tenancy.Tenant, c account.Client) error {
		res, err := p.accounts.VerifyMFA(r.Context(), t, account.VerifyMFAInput{Challenge: mfaChallenge, FactorProof: account.ProofOfCode(code),
			RememberDevice: rememberDevice}, c)
		if err != nil {
			return err
		}
		if res.DeviceToken != "" {
			setDeviceCookie(w, secureHost(restgateway.RequestHost(r)), res.DeviceToken)
		}
		p.federation.ClearPendingMFA(w, r)
		p.sessions.setSession(w, &browserRequest{secure: secureHost(restgateway.RequestHost(r)), r: r}, res.Tokens.RefreshToken, true)
		return nil
	})
}

// RequestPasswordReset implements pages.Accounts.
func (p *pageForms) RequestPasswordReset(r *http.Request, email string) error {
	return p.call(r, func(t tenancy.Tenant, c account.Client) error {
		return p.accounts.RequestPasswordReset(r.Context(), t, email, c)
	})
}

// ResetPassword implements pages.Accounts.
func (p *pageForms) ResetPassword(r *http.Request, token, newPassword string) error {
	return p.call(r, func(t tenancy.Tenant, c account.Client) error {
		return p.accounts.ResetPassword(r.Context(), t, token, newPassword, c)
	})
}

// AcceptInvitation implements pages.Accounts.
func (p *pageForms) AcceptInvitation(r *http.Request, f pages.AcceptForm) error {
	return p.call(r, func(t tenancy.Tenant, c account.Client) error {
		_, err := p.accounts.AcceptInvitation(r.Context(), t, account.AcceptInput{Token: f.Token, Password: f.Password, DisplayName: f.DisplayName}, c)
		return err
	})
}

// VerifyEmail implements pages.Accounts.
func (p *pageForms) VerifyEmail(r *http.Request, token string) (email string, err error) {
	err = p.call(r, func(t tenancy.Tenant, c account.Client) error {
		email, err = p.accounts.VerifyEmail(r.Context(), t, token, c)
		return err
	})
	return email, err
}

// SignInProviders implements pages.Accounts.
func (p *pageForms) SignInProviders(r *http.Request) []pages.SignInProvider {
	t, err := p.resolver.ByHost(r.Context(), restgateway.RequestHost(r))
	if err != nil {
		return nil
	}
	providers, err := p.accounts.SignInProviders(r.Context(), t)
	if err != nil {
		return nil // the page still offers the password
	}
	out := make([]pages.SignInProvider, 0, len(providers))
	for _, ip := range providers {
		out = append(out, pages.SignInProvider{DisplayName: ip.DisplayName, LoginPath: federation.LoginPath(ip.ID)})
	}
	return out
}

// passkeyOnly says a challenge takes no code, only a passkey: its factors
// include neither the app nor recovery codes (as app.js decides from the
// REST answer's factors).
func passkeyOnly(factors []account.Factor) bool {
	return slices.Contains(factors, account.FactorPasskey) &&
		!slices.Contains(factors, account.FactorTOTP) && !slices.Contains(factors, account.FactorRecoveryCode)
}

// PendingMFA implements pages.Accounts: a sign-in with another provider
// waiting for the account's second factor, or for the enrolment of one
// (whose key is then made, as after a password).
func (p *pageForms) PendingMFA(r *http.Request) (pages.LoginStep, bool) {
	challenge, enrol, passkeyOnly, ok := p.federation.PendingMFA(r)
	if !ok {
		return pages.LoginStep{}, false
	}
	step := pages.LoginStep{MFAChallenge: challenge, PasskeyOnly: passkeyOnly}
	if enrol {
		t, err := activeTenantOf(p.resolver, r)
		if err != nil {
			return pages.LoginStep{}, false
		}
		e, err := p.accounts.BeginTOTPAtLogin(r.Context(), t, challenge, requestClient(r))
		if err != nil {
			return pages.LoginStep{}, false
		}
		step.Enrollment = &pages.Enrollment{Secret: e.Secret, URI: e.URI, QRCodePNG: e.QRCodePNG}
	}
	return step, true
}

// LoginByEmailCode implements pages.Accounts.
func (p *pageForms) LoginByEmailCode(r *http.Request) bool {
	t, err := p.resolver.ByHost(r.Context(), restgateway.RequestHost(r))
	if err != nil {
		return false
	}
	settings, _, err := p.accounts.AuthConfig(r.Context(), t)
	return err == nil && settings.LoginByEmailCode
}

// Brand implements pages.Accounts: the branding of the tenant settings
// (cached with the login settings), the default when they cannot be read.
func (p *pageForms) Brand(r *http.Request) branding.Brand {
	t, err := p.resolver.ByHost(r.Context(), restgateway.RequestHost(r))
	if err != nil {
		return branding.Brand{Name: "Tenantry"}
	}
	settings, _, err := p.accounts.AuthConfig(r.Context(), t)
	if err != nil {
		return branding.Brand{Name: account.TenantName(t)}
	}
	return account.BrandOf(t, settings)
}

// RequestLoginCode implements pages.Accounts.
func (p *pageForms) RequestLoginCode(r *http.Request, email string) (token string, err error) {
	err = p.call(r, func(t tenancy.Tenant, c account.Client) error {
		req, err := p.accounts.RequestLoginCode(r.Context(), t, email, c)
		token = req.Token
		return err
	})
	return token, err
}

// LoginWithCode implements pages.Accounts: the session's cookies as Login
// sets them, or the step a second factor needs.
func (p *pageForms) LoginWithCode(w http.ResponseWriter, r *http.Request, token, code string) (step pages.LoginStep, err error) {
	err = p.call(r, func(t tenancy.Tenant, c account.Client) error {
		res, err := p.accounts.LoginWithCode(r.Context(), t, token, code, c)
		if err != nil {
			return err
		}
		if !res.Challenged() {
			p.sessions.setSession(w, &browserRequest{secure: secureHost(restgateway.RequestHost(r)), r: r}, res.Tokens.RefreshToken, true)
			return nil
		}
		step.MFAChallenge, step.RememberDays = res.Challenge.Token, res.Challenge.RememberDays
		step.PasskeyOnly = passkeyOnly(res.Challenge.Factors)
		if res.Challenge.EnrollmentRequired {
			e, err := p.accounts.BeginTOTPAtLogin(r.Context(), t, res.Challenge.Token, c)
			if err != nil {
				return err
			}
			step.Enrollment = &pages.Enrollment{Secret: e.Secret, URI: e.URI, QRCodePNG: e.QRCodePNG}
		}
		return nil
	})
	return step, err
}

// PendingLink implements pages.Accounts.
func (p *pageForms) PendingLink(r *http.Request) (pages.PendingLink, bool) {
	provider, email, passwordSet, ok := p.federation.PendingLink(r)
	return pages.PendingLink{Provider: provider, Email: email, PasswordSet: passwordSet}, ok
}

// LinkWithPassword implements pages.Accounts.
func (p *pageForms) LinkWithPassword(w http.ResponseWriter, r *http.Request, password string) (string, error) {
	next, err := p.federation.LinkWithPassword(w, r, password)
	return next, formError(r, err)
}

// formError converts err as the REST API would answer it, and notes it in
// the request's access log as the gRPC layer notes an API call's error
// (the cause is for the log only).
func formError(r *http.Request, err error) error {
	if err == nil {
		return nil
	}
	st := grpcerr.Status(err)
	attrs := []slog.Attr{slog.String("code", st.Code().String()), slog.String("error", err.Error())}
	fe := &pages.FormError{Status: runtime.HTTPStatusFromCode(st.Code()), Message: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fe.Fields = append(fe.Fields, pages.FieldError{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.ErrorInfo:
			attrs = append(attrs, slog.String("reason", d.GetReason()))
		}
	}
	restgateway.AddLogAttrs(r.Context(), attrs...)
	return fe
}

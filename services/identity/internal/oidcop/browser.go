package oidcop

import (
	"crypto/rand"
	"crypto/sha256"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/platform/fault"
)

// The browser's part of the authorization code flow.
//
// /oauth/authorize stores the request and sends the browser to
// /oauth/login?id=..., which finds who is logged in from the SSO cookie
// (set at every login on the tenant's pages, SameSite=Lax so that it comes
// along on the redirect from the app's site), and then:
//
//   - nobody (or prompt=login, or an authentication older than max_age):
//     to /login?next=/oauth/login?id=..., the tenant's ordinary login page,
//     which comes back here once the user has logged in; with prompt=none
//     the app gets login_required instead;
//   - a third-party client the user has not consented to: a consent page
//     (interaction_required with prompt=none);
//   - otherwise the request is done and the app gets its code.
//
// The request must have been started by this browser: /oauth/authorize
// sets the binding cookie, whose hash the request keeps, and the login
// step compares them. A request id alone, leaked from a URL, completes
// nothing.

// bind returns the hash of the browser's binding cookie, setting one when
// the browser has none (one per browser, so several tabs signing in at
// once share it).
func (p *Provider) bind(w http.ResponseWriter, r *http.Request) []byte {
	value := ""
	if c, err := r.Cookie(bindingCookie); err == nil && len(c.Value) >= 26 && len(c.Value) <= 64 {
		value = c.Value
	} else {
		value = rand.Text()
	}
	// Refreshed on every request so that it outlives the newest one.
	http.SetCookie(w, &http.Cookie{
		Name: bindingCookie, Value: value, Path: prefix, MaxAge: int(bindingLifetime / time.Second),
		HttpOnly: true, Secure: p.cfg.Secure(p.cfg.Host(r)), SameSite: http.SameSiteLaxMode,
	})
	sum := sha256.Sum256([]byte(value))
	return sum[:]
}

func bindingOf(r *http.Request) []byte {
	c, err := r.Cookie(bindingCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(c.Value))
	return sum[:]
}

// SetSSOCookie sets the SSO cookie for a login's session (its refresh
// token); the pages' logins call it.
func (p *Provider) SetSSOCookie(w http.ResponseWriter, r *http.Request, refreshToken string) {
	t, err := p.cfg.TenantOf(r)
	if err != nil {
		return
	}
	value := p.cfg.Accounts.SSOCookie(t, refreshToken)
	if value == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: ssoCookie, Value: value, Path: prefix, MaxAge: int(p.cfg.Accounts.SessionTTL() / time.Second),
		HttpOnly: true, Secure: p.cfg.Secure(p.cfg.Host(r)), SameSite: http.SameSiteLaxMode,
	})
}

// ClearSSOCookie expires the SSO cookie (the pages' logout).
func (p *Provider) ClearSSOCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: ssoCookie, Path: prefix, MaxAge: -1,
		HttpOnly: true, Secure: p.cfg.Secure(p.cfg.Host(r)), SameSite: http.SameSiteLaxMode,
	})
}

func (p *Provider) clearCookies(w http.ResponseWriter, r *http.Request) {
	p.ClearSSOCookie(w, r)
	if p.cfg.ClearBrowserSession != nil {
		p.cfg.ClearBrowserSession(w, r)
	}
}

// serveLogin is the login step (GET) and the consent form's answer (POST).
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		p.page(w, http.StatusMethodNotAllowed, pageData{Title: "Not allowed", Message: "This address takes GET and POST only."})
		return
	}
	ctx := r.Context()
	t := tenantOf(ctx)
	id := r.FormValue("id")
	binding := bindingOf(r)
	if binding == nil {
		p.refuse(w, errRequestGoneText)
		return
	}
	req, err := p.cfg.Accounts.AuthRequest(ctx, t, id, binding)
	if err != nil {
		p.refuseErr(w, err)
		return
	}
	areq := &authRequest{r: req}
	if req.CodeUsed {
		p.refuse(w, errRequestGoneText)
		return
	}

	var session *account.BrowserSession
	if c, err := r.Cookie(ssoCookie); err == nil {
		if session, err = p.cfg.Accounts.BrowserSessionOf(ctx, t, c.Value); err != nil {
			p.refuseErr(w, err)
			return
		}
	}
	now := time.Now()
	if session != nil && req.Params.HasPrompt(oidc.PromptLogin) && session.AuthTime.Before(req.CreateTime) {
		session = nil // a fresh login was asked for
	}
	if session != nil && req.Params.MaxAge != nil && now.Sub(session.AuthTime) > time.Duration(*req.Params.MaxAge)*time.Second {
		session = nil
	}
	if session == nil {
		if req.Params.HasPrompt(oidc.PromptNone) {
			op.AuthRequestError(w, r, areq, oidc.ErrLoginRequired(), p.provider)
			return
		}
		next := loginPath + "?id=" + url.QueryEscape(id)
		target := "/login?next=" + url.QueryEscape(next)
		if req.Params.LoginHint != "" {
			target += "&email=" + url.QueryEscape(req.Params.LoginHint)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}

	client, err := p.cfg.Accounts.OAuthClient(ctx, t, req.ClientID)
	if err != nil || client.Disabled {
		op.AuthRequestError(w, r, areq, oidc.ErrUnauthorizedClient().WithDescription("the client is disabled or deleted"), p.provider)
		return
	}
	if !client.FirstParty {
		consented, err := p.cfg.Accounts.Consented(ctx, t, session.User.ID, client.ID, req.Params.Scopes)
		if err != nil {
			p.refuseErr(w, err)
			return
		}
		if !consented || req.Params.HasPrompt(oidc.PromptConsent) {
			switch {
			case r.Method == http.MethodPost && r.PostFormValue("consent") == "allow":
				if err := p.cfg.Accounts.GiveConsent(ctx, t, session.User.ID, client.ID, req.Params.Scopes, callerOf(ctx)); err != nil {
					p.refuseErr(w, err)
					return
				}
			case r.Method == http.MethodPost:
				op.AuthRequestError(w, r, areq, oidc.ErrAccessDenied().WithDescription("the user refused"), p.provider)
				return
			case req.Params.HasPrompt(oidc.PromptNone):
				op.AuthRequestError(w, r, areq, oidc.ErrInteractionRequired().WithDescription("consent required"), p.provider)
				return
			default:
				p.page(w, http.StatusOK, pageData{
					Title: "Allow " + client.DisplayName + "?", Tenant: t.DisplayName, Client: client.DisplayName,
					User: session.User.Email, Scopes: describeScopes(req.Params.Scopes), ID: id, Consent: true,
				})
				return
			}
		}
	}

	done, err := p.cfg.Accounts.CompleteAuthRequest(ctx, t, id, binding, session.SessionID)
	if err != nil {
		if f, ok := fault.As(err); ok && f.Kind == fault.Unauthenticated {
			// The session ended meanwhile: log in again.
			http.Redirect(w, r, "/login?next="+url.QueryEscape(loginPath+"?id="+url.QueryEscape(id)), http.StatusSeeOther)
			return
		}
		p.refuseErr(w, err)
		return
	}
	op.AuthResponse(&authRequest{r: done}, p.provider, w, r)
}

// describeScopes says in words what each scope gives.
func describeScopes(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		switch s {
		case oidc.ScopeOpenID:
			out = append(out, "Know who you are in this organisation")
		case oidc.ScopeProfile:
			out = append(out, "See your name and username")
		case oidc.ScopeEmail:
			out = append(out, "See your email address")
		case oidc.ScopeOfflineAccess:
			out = append(out, "Stay signed in when you are not using it")
		default:
			out = append(out, "Use "+s)
		}
	}
	return slices.Compact(out)
}

const errRequestGoneText = "This sign-in request has expired or was started in another browser. Go back to the application and sign in again."

func (p *Provider) refuse(w http.ResponseWriter, message string) {
	p.page(w, http.StatusBadRequest, pageData{Title: "Sign-in cannot continue", Message: message})
}

func (p *Provider) refuseErr(w http.ResponseWriter, err error) {
	if f, ok := fault.As(err); ok && f.Kind != fault.Internal {
		p.refuse(w, f.Message)
		return
	}
	p.cfg.Logger.Error("OpenID Provider login step failed", "err", err)
	p.page(w, http.StatusInternalServerError, pageData{Title: "Something went wrong", Message: "Try again in a moment."})
}

type pageData struct {
	Title, Message, Tenant, Client, User, ID string
	Scopes                                   []string
	Consent                                  bool
}

// pageTemplate is the provider's one page: a refusal or the consent form.
// No script; the tenant's stylesheet.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><main class="card">
<h1>{{.Title}}</h1>
{{if .Consent}}
<p><strong>{{.Client}}</strong> asks to use your {{.Tenant}} account <strong>{{.User}}</strong> to:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/oauth/login">
<input type="hidden" name="id" value="{{.ID}}">
<button type="submit" name="consent" value="allow">Allow</button>
<button type="submit" name="consent" value="deny">Deny</button>
</form>
{{else}}<p>{{.Message}}</p>{{end}}
</main></body></html>`))

func (p *Provider) page(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

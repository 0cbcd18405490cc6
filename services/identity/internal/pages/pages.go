package pages

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"tenantry.dev/identity/internal/branding"
	"tenantry.dev/identity/internal/i18n"
)

//go:embed static
var static embed.FS

// Paths are the pages' URL paths, each served from static/<name>.html. The
// emails identity sends link to several of them (see account's mails).
var Paths = []string{
	"/signup",
	"/verify-email",
	"/login",
	"/login/link",
	"/login/code",
	"/forgot-password",
	"/reset-password",
	"/account",
	"/accept-invitation",
	"/admin/users",
	"/admin/clients",
}

// AssetsPrefix is the path under which the pages' scripts and styles are
// served.
const AssetsPrefix = "/assets/"

// contentSecurityPolicy allows only the pages' own scripts, styles, images
// and API calls: no inline script or style, no framing, forms posting
// nowhere else. The data: images are the authenticator app QR codes
// identity draws itself; a tenant's logo adds its own origin (see
// policyFor).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// brandCSS is the stylesheet of the tenant's colours, made per request
// from its settings (branding.Brand.CSS).
const brandCSS = AssetsPrefix + "brand.css"

// policyFor is the Content-Security-Policy of a page of brand: the pages'
// own, with images also from the origin of the tenant's logo, a URL tenant
// settings accept only when it is https (branding.ValidateLogoURL).
func policyFor(brand branding.Brand) string {
	origin := brand.LogoOrigin()
	if origin == "" {
		return contentSecurityPolicy
	}
	return strings.Replace(contentSecurityPolicy, "img-src 'self' data:", "img-src 'self' data: "+origin, 1)
}

// Handler serves the pages at Paths and their assets under AssetsPrefix;
// anything else is 404. The caller routes only those paths to it, after
// checking the host is a tenant's, and every method of a page's path: the
// handler answers a form posted to a page. accounts acts on the forms that
// work without the script (see actions); nil refuses every form, as the
// account and admin pages' forms always are (see refuseForm).
func Handler(accounts Accounts) http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &handler{
		files:       files,
		pages:       map[string]*template.Template{},
		formNotSent: template.Must(template.New("form-not-sent.html").ParseFS(files, "parts.html", "form-not-sent.html")),
		accounts:    accounts,
		crossOrigin: http.NewCrossOriginProtection(),
	}
	for _, p := range Paths {
		name := strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "-") + ".html"
		// parts.html holds what the pages share (a field, the message).
		h.pages[p] = template.Must(template.New(name).ParseFS(files, "parts.html", name))
	}
	return h
}

type handler struct {
	files       fs.FS
	pages       map[string]*template.Template // URL path → its page
	formNotSent *template.Template
	accounts    Accounts // nil: no form is acted on
	// crossOrigin refuses forms posted from another origin (CSRF).
	crossOrigin *http.CrossOriginProtection
}

// contentTypes are the types of the files the pages are made of; a file of
// any other kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	header.Set("Content-Security-Policy", contentSecurityPolicy)
	header.Set("X-Frame-Options", "DENY")
	// Pages opened from an email carry a token in their URL: it must not
	// leak to another site in a Referer.
	header.Set("Referrer-Policy", "no-referrer")
	header.Set("X-Content-Type-Options", "nosniff")

	if _, isPage := h.pages[r.URL.Path]; isPage {
		h.servePage(w, r)
		return
	}
	if r.URL.Path == brandCSS {
		header.Set("Content-Type", contentTypes[".css"])
		header.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "brand.css", time.Time{}, strings.NewReader(h.brand(r).CSS()))
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, AssetsPrefix)
	ok = ok && !strings.HasSuffix(name, ".html") && fs.ValidPath(name) && !strings.Contains(name, "/")
	h.serveFile(w, r, name, ok, "no-cache")
}

// servePage serves the page at r's path, after the checks of the package
// doc: a page is read (GET, HEAD) with a URL that keeps neither a password
// field nor a next that leaves the origin, or its form is posted (POST).
func (h *handler) servePage(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	// No cache may keep a page whose URL holds a token, nor the answer to
	// a URL that held a password, nor the answer to a form.
	header.Set("Cache-Control", "no-store")
	a, acts := actions[r.URL.Path]
	acts = acts && h.accounts != nil
	switch {
	case r.Method == http.MethodPost && acts:
		h.act(w, r, r.URL.Path, a)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		h.refuseForm(w, r, false)
		return
	}
	if query, redirect := cleanQuery(r.URL.RawQuery); redirect {
		target := r.URL.Path
		if query != "" {
			target += "?" + query
		}
		// No body: http.Redirect's would repeat the URL.
		header.Set("Location", target)
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	if lang := r.URL.Query().Get("lang"); lang != "" {
		// The language links' choice holds for the user's next pages.
		http.SetCookie(w, &http.Cookie{Name: i18n.CookieName, Value: i18n.Base(i18n.Match(lang)), Path: "/",
			MaxAge: 365 * 24 * 60 * 60, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	}
	h.render(w, r, r.URL.Path, firstView(r.URL.Path, r.URL.RawQuery), http.StatusOK)
}

// render answers with the page at path showing v.
func (h *handler) render(w http.ResponseWriter, r *http.Request, path string, v *view, status int) {
	if v.Lang == "" {
		v.localize(r)
	}
	v.Brand = h.brand(r)
	w.Header().Set("Content-Security-Policy", policyFor(v.Brand))
	if h.accounts != nil {
		switch path {
		case "/login", "/signup":
			v.Providers = h.accounts.SignInProviders(r)
			v.ByEmailCode = path == "/login" && h.accounts.LoginByEmailCode(r)
			if path == "/login" && r.Method != http.MethodPost && v.MFAChallenge == "" {
				// A sign-in with another provider goes on here.
				if step, ok := h.accounts.PendingMFA(r); ok {
					v.MFAChallenge, v.Enrollment, v.RememberDays = step.MFAChallenge, step.Enrollment, step.RememberDays
					if step.Enrollment != nil {
						v.succeed(msgEnrolStep)
					} else {
						v.mfaStep(step.PasskeyOnly)
					}
				}
			}
		case "/login/link":
			v.Link, v.LinkPending = h.accounts.PendingLink(r)
		}
	}
	var body bytes.Buffer
	if err := h.pages[path].Execute(&body, v); err != nil {
		// The templates are fixed at build time and tested: this is a bug.
		http.Error(w, "500 internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentTypes[".html"])
	if status == http.StatusOK && r.Method != http.MethodPost {
		http.ServeContent(w, r, path, time.Time{}, bytes.NewReader(body.Bytes()))
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

// brand is how r's tenant's pages look, or the default without accounts.
func (h *handler) brand(r *http.Request) branding.Brand {
	if h.accounts == nil {
		return branding.Brand{Name: "Tenantry"}
	}
	return h.accounts.Brand(r)
}

// refuseForm answers a request to a page with a method the page does not
// take: in practice a browser posting a page's form by itself, because
// JavaScript is off or the user pressed Enter before the script loaded, on
// a page whose form the server does not act on (405); or a form posted from
// another origin (403, crossOrigin). The body is never read (the pages'
// data goes to the REST API as JSON) and nothing of it is echoed; the
// answer says the form was not sent and links back to the page.
func (h *handler) refuseForm(w http.ResponseWriter, r *http.Request, crossOrigin bool) {
	header := w.Header()
	status := http.StatusForbidden
	if !crossOrigin {
		status = http.StatusMethodNotAllowed
		allow := "GET, HEAD"
		if _, acts := actions[r.URL.Path]; acts && h.accounts != nil {
			allow += ", POST"
		}
		header.Set("Allow", allow)
	}
	header.Set("Content-Type", contentTypes[".html"])
	var body bytes.Buffer
	v := &view{}
	v.localize(r)
	v.Brand = h.brand(r)
	header.Set("Content-Security-Policy", policyFor(v.Brand))
	data := struct {
		*view
		Page        string
		CrossOrigin bool
	}{v, r.URL.Path, crossOrigin}
	if err := h.formNotSent.Execute(&body, data); err != nil {
		http.Error(w, http.StatusText(status), status)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}

// serveFile serves the embedded file name, when ok and of a known type,
// with cacheControl; otherwise 404.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, name string, ok bool, cacheControl string) {
	contentType := contentTypes[path.Ext(name)]
	var body []byte
	if ok && contentType != "" {
		var err error
		body, err = fs.ReadFile(h.files, name)
		ok = err == nil
	}
	if !ok || contentType == "" {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", cacheControl)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

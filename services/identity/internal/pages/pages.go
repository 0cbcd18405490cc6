// Package pages holds identity's account pages: sign-up, email
// verification, login, password reset, the account page (password,
// sessions, log out), invitation acceptance and the tenant admin's user
// list. They are static HTML, CSS and JavaScript embedded in the binary;
// the scripts call identity's REST API on the same origin (the tenant's
// host), so the pages know nothing about tenants themselves.
package pages

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Paths are the pages' URL paths, each served from static/<name>.html. The
// emails identity sends link to several of them (see account's mails).
var Paths = []string{
	"/signup",
	"/verify-email",
	"/login",
	"/forgot-password",
	"/reset-password",
	"/account",
	"/accept-invitation",
	"/admin/users",
}

// AssetsPrefix is the path under which the pages' scripts and styles are
// served.
const AssetsPrefix = "/assets/"

// contentSecurityPolicy allows only the pages' own scripts, styles and API
// calls: no inline script or style, no framing, forms posting nowhere else.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the pages at Paths and their assets under AssetsPrefix;
// anything else is 404. The caller routes only those paths to it, after
// checking the host is a tenant's.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &handler{files: files, pages: map[string]string{}}
	for _, p := range Paths {
		h.pages[p] = strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "-") + ".html"
	}
	return h
}

type handler struct {
	files fs.FS
	pages map[string]string // URL path → file name
}

// contentTypes are the types of the files the pages are made of; a file of
// any other kind is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := h.pages[r.URL.Path]
	if !ok && strings.HasPrefix(r.URL.Path, AssetsPrefix) {
		name = strings.TrimPrefix(r.URL.Path, AssetsPrefix)
		ok = !strings.HasSuffix(name, ".html") && fs.ValidPath(name) && !strings.Contains(name, "/")
	}
	contentType := contentTypes[path.Ext(name)]
	var body []byte
	if ok && contentType != "" {
		var err error
		body, err = fs.ReadFile(h.files, name)
		ok = err == nil
	}
	header := w.Header()
	header.Set("Content-Security-Policy", contentSecurityPolicy)
	header.Set("X-Frame-Options", "DENY")
	// Pages opened from an email carry a token in their URL: it must not
	// leak to another site in a Referer.
	header.Set("Referrer-Policy", "no-referrer")
	header.Set("X-Content-Type-Options", "nosniff")
	if !ok || contentType == "" {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	header.Set("Content-Type", contentType)
	if path.Ext(name) == ".html" {
		// Nor may a shared cache keep a page whose URL holds a token.
		header.Set("Cache-Control", "no-store")
	} else {
		header.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

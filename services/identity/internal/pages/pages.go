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
// checking the host is a tenant's, and every method of a page's path: the
// handler answers a form posted to a page (see refuseForm).
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &handler{
		files:       files,
		pages:       map[string]string{},
		formNotSent: template.Must(template.ParseFS(files, "form-not-sent.html")),
	}
	for _, p := range Paths {
		h.pages[p] = strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "-") + ".html"
	}
	return h
}

type handler struct {
	files       fs.FS
	pages       map[string]string // URL path → file name
	formNotSent *template.Template
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

	name, isPage := h.pages[r.URL.Path]
	if isPage {
		h.servePage(w, r, name)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, AssetsPrefix)
	ok = ok && !strings.HasSuffix(name, ".html") && fs.ValidPath(name) && !strings.Contains(name, "/")
	h.serveFile(w, r, name, ok, "no-cache")
}

// servePage serves the page in the file name, after the checks of the
// package doc: a page is only read (GET, HEAD), and its URL keeps neither a
// password field nor a next that leaves the origin.
func (h *handler) servePage(w http.ResponseWriter, r *http.Request, name string) {
	header := w.Header()
	// No cache may keep a page whose URL holds a token, nor the answer to
	// a URL that held a password.
	header.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.refuseForm(w, r)
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
	h.serveFile(w, r, name, true, "no-store")
}

// refuseForm answers a request to a page with another method than GET or
// HEAD: in practice a browser posting a page's form by itself, because
// JavaScript is off or the user pressed Enter before the script loaded. The
// body is never read (the pages' data goes to the REST API as JSON) and
// nothing of it is echoed; the answer says the form was not sent and links
// back to the page.
func (h *handler) refuseForm(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	header.Set("Allow", "GET, HEAD")
	header.Set("Content-Type", contentTypes[".html"])
	var body bytes.Buffer
	if err := h.formNotSent.Execute(&body, struct{ Page string }{r.URL.Path}); err != nil {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.WriteHeader(http.StatusMethodNotAllowed)
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

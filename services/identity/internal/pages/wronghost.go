package pages

import (
	"html/template"
	"mime"
	"net/http"
	"strings"
)

// WantsPage says whether r is a browser opening a page: a GET or HEAD
// whose Accept header asks for HTML. API clients (which accept JSON, or
// anything, as curl does) get the API's answers instead.
func WantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if t, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && t == "text/html" {
			return true
		}
	}
	return false
}

// wrongHostPage is plain HTML with no script, style or image: on a host
// that is no tenant's, the pages' assets are not served either.
var wrongHostPage = template.Must(template.New("wrong-host").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Open this page on your tenant's address</title>
</head>
<body>
<main>
<h1>Open this page on your tenant's address</h1>
<p>{{if .Host}}<code>{{.Host}}</code> is{{else}}This address is{{end}} not the address of a tenant. Each tenant has its
own address, and its pages are there:</p>
<ul>
{{range .Addresses}}<li><code>{{.}}</code></li>
{{end}}</ul>
<p>where <code>{tenant}</code> is your tenant's name (its slug), or on your tenant's own
domain if it has one.</p>
</main>
</body>
</html>
`))

// WrongHost answers a browser that opened a page on a host that is no
// tenant's (like http://localhost:8080/login, when tenants are at
// http://{tenant}.localhost:8080): an HTML page, with status, that says
// where tenants' pages are. addresses are the forms a tenant's address
// takes, with "{tenant}" for its slug. The page names no tenant: which
// tenants exist is not told to whoever asks.
func WrongHost(w http.ResponseWriter, r *http.Request, status int, host string, addresses []string) {
	header := w.Header()
	header.Set("Content-Type", "text/html; charset=utf-8")
	header.Set("Content-Security-Policy", contentSecurityPolicy)
	header.Set("X-Frame-Options", "DENY")
	header.Set("Referrer-Policy", "no-referrer")
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = wrongHostPage.Execute(w, struct {
		Host      string
		Addresses []string
	}{host, addresses})
}

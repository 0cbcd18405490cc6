package server

import (
	"net/http"

	"tenantry.dev/identity/internal/pages"
)

// withPageRoutes adds the account pages and their assets to routes, the
// gateway's extra routes: like the API, they pass admitHost first, so an
// unknown host gets the API's 404 JSON error rather than a page.
func withPageRoutes(routes map[string]http.Handler) map[string]http.Handler {
	h := pages.Handler()
	for _, path := range pages.Paths {
		// Every method, not only GET: a browser posting a page's form by
		// itself (JavaScript off) gets the pages' own 405 answer rather
		// than the API's, and its body goes nowhere.
		routes[path] = h
	}
	routes["GET "+pages.AssetsPrefix] = h
	// The site's root is the account page (which offers to log in).
	routes["GET /{$}"] = http.RedirectHandler("/account", http.StatusFound)
	return routes
}

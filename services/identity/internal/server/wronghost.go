package server

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"tenantry.dev/identity/internal/pages"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/restgateway"
)

// wrongHost is admitHost's refusal of a host that is no tenant's when a
// browser opens a page there: an error for the access log, and an
// http.Handler that answers with a page saying where tenants' pages are
// (restgateway.Config.Admit). API clients get the error as JSON.
type wrongHost struct {
	err       error
	status    int
	addresses []string
}

func (e *wrongHost) Error() string { return e.err.Error() }
func (e *wrongHost) Unwrap() error { return e.err }

func (e *wrongHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pages.WrongHost(w, r, e.status, restgateway.RequestHost(r), e.addresses)
}

// refuseHost returns admitHost's answer to a host that resolved to no
// tenant with err: for a browser opening a page, a page instead of the
// API's JSON (a newcomer opening http://localhost:8080/login sees where
// to go), else err.
func (a *App) refuseHost(r *http.Request, err error) error {
	if !pages.WantsPage(r) {
		return err
	}
	status := http.StatusNotFound
	switch fault.KindOf(err) {
	case fault.NotFound:
	case fault.InvalidArgument:
		status = http.StatusBadRequest
	default:
		return err // the registry is unreachable, say: not the host's fault
	}
	return &wrongHost{err: err, status: status, addresses: a.tenantAddresses(r)}
}

// tenantAddresses returns where r's page is on a tenant's host, with
// "{tenant}" for the slug: under the configured public URL, then on each
// base domain with r's scheme and port. It names no tenant.
func (a *App) tenantAddresses(r *http.Request) []string {
	path := r.URL.Path
	if !pages.IsLocalPath(path) {
		path = "/"
	}
	addresses := []string{strings.TrimSuffix(a.cfg.PublicURL, "/") + path}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(r.Host)
	for _, base := range a.cfg.BaseDomains {
		host := "{tenant}." + base
		if port != "" {
			host = net.JoinHostPort(host, port)
		}
		if u := scheme + "://" + host + path; !slices.Contains(addresses, u) {
			addresses = append(addresses, u)
		}
	}
	return addresses
}

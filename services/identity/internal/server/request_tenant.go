package server

import (
	"net/http"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/restgateway"
)

// activeTenantOf returns the tenant of r's host, refused unless active: the
// check the tenant interceptor makes for API calls, made here for the HTTP
// routes that act without the gateway's gRPC hop (pages' forms, the OpenID
// Provider, federation, JWKS, auth config, the current user).
func activeTenantOf(resolver *tenancy.Resolver, r *http.Request) (tenancy.Tenant, error) {
	t, err := resolver.ByHost(r.Context(), restgateway.RequestHost(r))
	if err == nil {
		err = tenancy.RequireActive(t)
	}
	return t, err
}

// requestClient is r's client as the gateway tells the API about it, for
// rate limits and the audit log.
func requestClient(r *http.Request) account.Client {
	return account.Client{IP: restgateway.RequestClientIP(r), UserAgent: restgateway.RequestUserAgent(r)}
}

package server

import (
	"context"
	"net/http"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/federation"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/restgateway"
)

// federationHost is what the sign-in with other providers needs from the
// server (federation.Host): the tenant and client of a request, the
// browser session a login opens, and a user's access token checked as
// every API call checks it.
type federationHost struct {
	a        *App
	sessions *browserSessions
}

var _ federation.Host = (*federationHost)(nil)

func (h *federationHost) Tenant(r *http.Request) (tenancy.Tenant, error) {
	return activeTenantOf(h.a.resolver, r)
}

func (h *federationHost) Client(r *http.Request) account.Client { return requestClient(r) }

func (h *federationHost) StartSession(w http.ResponseWriter, r *http.Request, _ tenancy.Tenant, tokens account.Tokens) {
	h.sessions.setSession(w, &browserRequest{secure: secureHost(restgateway.RequestHost(r)), r: r}, tokens.RefreshToken, true)
}

func (h *federationHost) User(ctx context.Context, t tenancy.Tenant, accessToken string) (string, string, error) {
	claims, err := h.a.issuer.VerifyForTenant(accessToken, t.UID)
	if err != nil {
		return "", "", err
	}
	u, err := h.a.accounts.CheckSession(ctx, t, claims.Subject, claims.Session)
	if err != nil {
		return "", "", err
	}
	return u.ID, claims.Session, nil
}

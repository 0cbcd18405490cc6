package server

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/restgateway"
)

// corsCacheTTL is how long a tenant's allowed origins are kept before they
// are read again: a settings change takes effect within it, and preflight
// requests do not cost a database round trip each.
const corsCacheTTL = 30 * time.Second

// corsOrigins decides which browser origins may call identity's REST API
// with credentials: the global list (TENANTRY_CORS_ORIGINS) for every
// tenant, plus the tenant's own (TenantSettings.allowed_origins).
type corsOrigins struct {
	global   []string
	resolver *tenancy.Resolver
	settings func(*http.Request, tenancy.Tenant) (account.Settings, error)
	now      func() time.Time

	mu     sync.Mutex
	cached map[string]cachedOrigins // by tenant slug
}

type cachedOrigins struct {
	origins []string
	expires time.Time
}

// allow implements restgateway.CORS.AllowOrigin; the request has passed
// admitHost, so its host is a tenant's.
func (c *corsOrigins) allow(r *http.Request, origin string) bool {
	if slices.Contains(c.global, origin) {
		return true
	}
	t, err := c.resolver.ByHost(r.Context(), restgateway.RequestHost(r))
	if err != nil {
		return false
	}
	return slices.Contains(c.tenantOrigins(r, t), origin)
}

// tenantOrigins returns the tenant's allowed origins, normalised, from the
// cache or its settings. A failure to read them allows nothing, and is not
// cached, so the next request tries again.
func (c *corsOrigins) tenantOrigins(r *http.Request, t tenancy.Tenant) []string {
	now := c.now()
	c.mu.Lock()
	entry, ok := c.cached[t.UID]
	c.mu.Unlock()
	if ok && now.Before(entry.expires) {
		return entry.origins
	}
	s, err := c.settings(r, t)
	if err != nil {
		return nil
	}
	var origins []string
	for _, o := range s.AllowedOrigins {
		if n, ok := restgateway.NormalizeOrigin(o); ok {
			origins = append(origins, n)
		}
	}
	c.mu.Lock()
	if c.cached == nil {
		c.cached = map[string]cachedOrigins{}
	}
	c.cached[t.UID] = cachedOrigins{origins: origins, expires: now.Add(corsCacheTTL)}
	c.mu.Unlock()
	return origins
}

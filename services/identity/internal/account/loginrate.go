package account

import (
	"sync"
	"time"

	"tenantry.dev/kit/tenancy"
)

// A tenant's login ceiling (Settings.MaxLoginsPerSecond) is a setting,
// stored with the others in the tenant's schema, yet Login checks it with
// the per-account and per-address limits, in one all-or-nothing decision,
// before its first transaction: a refused attempt then reads nothing of the
// tenant (no user lookup whose timing could differ between accounts) and
// costs no transaction. Reading the setting for every login would add a
// transaction to each; checking the ceiling apart, after the read, would
// break the all-or-nothing rule (an attempt refused by the ceiling would
// have used up the account's budget). So each replica remembers every
// tenant's rate as it last read it: Login reads the settings in its first
// transaction anyway, and what it reads is the rate the next login checks.
//
// A change made on this replica applies from the next login. Another
// replica's change is seen here at the next login that gets past the
// limits, and at the latest after loginRateMaxAge: a rate older than that
// is not used, and the login checks the limits after its first transaction
// instead, with the rate that transaction read. That costs no transaction
// either, only the order of the two steps, once per tenant per
// loginRateMaxAge on each replica.

// loginRateMaxAge is how long a rate read from a tenant's settings is used
// without being read again.
const loginRateMaxAge = 10 * time.Second

// loginRates remembers each tenant's MaxLoginsPerSecond as this replica
// last read it, by tenant uid. The zero value is ready to use.
type loginRates struct {
	mu    sync.Mutex
	rates map[string]loginRate
}

// loginRate is a tenant's rate, the settings version it was read from and
// when it was read.
type loginRate struct {
	perSecond int
	version   int64
	readAt    time.Time
}

// get returns the tenant's rate if it was read less than loginRateMaxAge
// before now.
func (r *loginRates) get(tenantUID string, now time.Time) (perSecond int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lr, ok := r.rates[tenantUID]
	if !ok || now.Sub(lr.readAt) >= loginRateMaxAge || now.Before(lr.readAt) {
		return 0, false
	}
	return lr.perSecond, true
}

// learn records the rate of settings s of a tenant, read at now. Settings
// older than those already known (a read that began before a concurrent
// change committed) are ignored.
func (r *loginRates) learn(tenantUID string, s Settings, now time.Time) {
	if s.MaxLoginsPerSecond < LowestMaxLoginsPerSecond {
		return // not read from a settings row
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rates == nil {
		r.rates = map[string]loginRate{}
	}
	if old, ok := r.rates[tenantUID]; ok && old.version > s.Version {
		return
	}
	r.rates[tenantUID] = loginRate{perSecond: s.MaxLoginsPerSecond, version: s.Version, readAt: now}
}

// forget drops a tenant's rate (the tenant was purged).
func (r *loginRates) forget(tenantUID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.rates, tenantUID)
}

// ForgetTenant drops what the Manager remembers of a purged tenant.
func (m *Manager) ForgetTenant(t tenancy.Tenant) { m.loginRates.forget(t.UID) }

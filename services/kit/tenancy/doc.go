// Package tenancy tells a service which tenant a request is for: identity
// uses it, and so can any product service built on Tenantry. It holds
// every tenant in memory, kept coherent with the tenant registry's change
// stream (WatchTenants), and asks the registry (ResolveTenant) only about
// what it does not hold, so that the hot path of every request is a map
// lookup or two under a read lock.
//
// The cache holds:
//
//   - tenants, by uid and slug, each with its custom domains: filled by the
//     watch's snapshot and events, and by ResolveTenant answers.
//   - the base domains under which "{slug}.{base}" is a tenant's host: those
//     of Options.BaseDomains (the registry's own list, configured on the
//     service too), and any the registry's answers reveal.
//   - unknown hosts and slugs the registry was asked about, remembered for
//     Options.NegativeTTL so that a flood of requests for a key that names no
//     tenant does not become a flood of RPCs. Every event forgets them all:
//     the change may be the tenant or domain that was missing.
//
// Hosts are resolved from the tenants held, by the registry's own rules (a
// custom domain first, then "{slug}.{base}") after the registry's own
// normalisation (tenantname.NormalizeHost). A host therefore has no answer
// of its own that could go stale: the event that changes a tenant's domains
// or state, or purges it, changes its hosts in the same step, and a host no
// request ever used is answered like any other.
//
// Once the snapshot is loaded ([Resolver.Ready]) the cache holds every
// tenant, so a registry outage changes nothing for existing tenants on
// either face: slugs and every host of a known tenant are answered from
// memory. A host of no known tenant is asked of the registry once (a tenant
// created a moment ago may not have reached the watch yet) and remembered
// for Options.NegativeTTL; while the registry is down it is NotFound, the
// snapshot's answer. Slugs the cache does not hold are asked about too, so
// that a new tenant works at once; while the registry is down they fail with
// TENANT_REGISTRY_UNAVAILABLE, as does everything the cache cannot answer
// before the snapshot is in. The cache only stays coherent while
// [Resolver.Run] is running; without it, answers are remembered but never
// revised.
//
// Lookups return a [Tenant] in any state, because some callers need to know
// about suspended tenants (to say so). Code that serves a tenant calls
// [RequireActive] first.
package tenancy

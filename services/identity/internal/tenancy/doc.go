// Package tenancy tells identity which tenant a request is for. It asks the
// tenant registry (ResolveTenant), remembers the answers, and keeps them
// coherent with the registry's change stream (WatchTenants), so that the hot
// path of every request is a map lookup under a read lock.
//
// The cache holds three kinds of answers:
//
//   - tenants, by uid and slug: filled by the watch's snapshot and events, and
//     by ResolveTenant answers. Once the snapshot is loaded, a known slug never
//     costs an RPC.
//   - hosts, each tagged with the uid of the tenant it resolved to. The
//     registry owns the rules that map a host to a tenant (custom domains,
//     "{slug}.{base domain}"), so identity does not reimplement them: it only
//     remembers answers, and any event about a tenant marks that tenant's host
//     answers stale, because its domains may have changed.
//   - unknown hosts and slugs, remembered for Options.NegativeTTL so that a
//     flood of requests for a host that names no tenant does not become a
//     flood of RPCs. Every event forgets them all: the change may be the
//     tenant or domain that was missing.
//
// When the registry cannot be reached, what the cache knows is still served,
// stale host answers included, so that tenants that were working keep
// working; only what was never known fails, with TENANT_REGISTRY_UNAVAILABLE.
// The cache only stays coherent while [Resolver.Run] is running; without it,
// answers are remembered but never revised.
//
// Lookups return a [Tenant] in any state, because some callers need to know
// about suspended tenants (to say so). Code that serves a tenant calls
// [RequireActive] first.
package tenancy

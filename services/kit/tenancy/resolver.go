package tenancy

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/tenantname"
)

// Defaults of Options.
const (
	// DefaultNegativeTTL is short because a tenant created on the registry
	// should be usable at once, even before the watch reports it (or when
	// no watch runs); it is long enough to absorb a burst of requests for a
	// host that names nothing.
	DefaultNegativeTTL = 2 * time.Second
	// DefaultResolveTimeout bounds one ResolveTenant call. The registry
	// answers from memory, so a slow answer means it is in trouble, and a
	// request is better served from the cache or refused than held.
	DefaultResolveTimeout = 2 * time.Second
)

// Options tune a Resolver. The zero value is usable.
type Options struct {
	// Logger receives the resolver's logs; slog.Default() when nil.
	Logger *slog.Logger
	// NegativeTTL is how long a host or slug that no tenant answers to is
	// remembered as unknown; DefaultNegativeTTL when zero or negative.
	NegativeTTL time.Duration
	// ResolveTimeout bounds each ResolveTenant call; DefaultResolveTimeout
	// when zero or negative.
	ResolveTimeout time.Duration
	// BaseDomains are the registry's base domains (the registry's
	// TENANTRY_BASE_DOMAINS): "{slug}.{base}" is a host of the tenant for
	// each. Given them, a Ready resolver answers every host from memory,
	// "no tenant" included, so that an outage of the registry changes
	// nothing for hosts. Nil means they are not known: they are then learnt
	// from the registry's answers, and a host "{known slug}.{domain}" under
	// a domain not yet learnt is asked about. An empty, non-nil slice means
	// the registry has none. Each is normalised with
	// tenantname.NormalizeHost; one that is not a host name is left out.
	BaseDomains []string
}

// Resolver finds the tenant of a request from its host or slug, answering
// from its cache when it can and asking the tenant registry otherwise. Run
// keeps the cache coherent with the registry. A Resolver is safe for
// concurrent use.
type Resolver struct {
	client         registryv1.TenantServiceClient
	bearer         string
	logger         *slog.Logger
	negativeTTL    time.Duration
	resolveTimeout time.Duration

	cache *cache
	// ready is set by the first complete snapshot of the watch.
	ready atomic.Bool
	// running guards against two watches feeding one cache.
	running atomic.Bool

	hooksMu sync.Mutex
	onPurge []func(Tenant)

	// What lookups found, for metrics (Stats).
	hits, unknowns, asked atomic.Uint64
}

// Stats are a resolver's counts since it started, for metrics.
type Stats struct {
	// Hits were answered from the cache with a tenant.
	Hits uint64
	// Unknowns were answered from the cache as no tenant's.
	Unknowns uint64
	// Asked went to the registry.
	Asked uint64
	// Tenants is how many tenants the cache holds now.
	Tenants int
}

// Stats returns the resolver's counts.
func (r *Resolver) Stats() Stats {
	return Stats{Hits: r.hits.Load(), Unknowns: r.unknowns.Load(), Asked: r.asked.Load(), Tenants: r.cache.size()}
}

// NewResolver returns a Resolver that asks the registry through client,
// authenticated with serviceToken (the registry's service credential). It
// does not contact the registry; call Run to start the watch.
func NewResolver(client registryv1.TenantServiceClient, serviceToken string, opts Options) *Resolver {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = DefaultResolveTimeout
	}
	var bases []string
	if opts.BaseDomains != nil {
		bases = make([]string, 0, len(opts.BaseDomains))
		for _, d := range opts.BaseDomains {
			base, err := tenantname.NormalizeHost("base domain", d)
			if err != nil {
				opts.Logger.Error("ignoring a base domain that is not a host name", "base_domain", d, "error", err)
				continue
			}
			bases = append(bases, base)
		}
	}
	r := &Resolver{
		client:         client,
		logger:         opts.Logger,
		negativeTTL:    opts.NegativeTTL,
		resolveTimeout: opts.ResolveTimeout,
		cache:          newCache(bases),
	}
	if serviceToken != "" {
		r.bearer = "Bearer " + serviceToken
	}
	return r
}

// Ready reports whether the watch has loaded its first snapshot of all
// tenants. From then on, known slugs and the hosts of known tenants are
// answered without RPCs (and, with Options.BaseDomains, unknown hosts too),
// and changes reach the cache as the registry makes them. It stays true if
// the watch is later interrupted: the cache is then served as it is until
// it resumes.
func (r *Resolver) Ready() bool { return r.ready.Load() }

// OnPurge registers fn to be called with the last known state of each
// tenant the registry purges (its schema is gone), so that the service can
// forget what it keeps about the tenant. Hooks run one at a time on Run's
// goroutine, in registration order, after the cache has forgotten the
// tenant; a slow hook delays every later change, so hand long work off.
// Purges that happen while no watch runs are reported when the watch
// catches up.
func (r *Resolver) OnPurge(fn func(Tenant)) {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	r.onPurge = append(r.onPurge, fn)
}

// BySlug returns the tenant with the given slug, in whatever state it is;
// call RequireActive before serving it. An invalid slug is refused with
// tenantname's InvalidArgument fault; an unknown one is a NotFound fault
// TENANT_NOT_FOUND. When the registry cannot be asked and the slug is not
// cached, it returns an Unavailable fault TENANT_REGISTRY_UNAVAILABLE.
func (r *Resolver) BySlug(ctx context.Context, slug string) (Tenant, error) {
	slug, err := tenantname.ParseSlug("slug", slug)
	if err != nil {
		return Tenant{}, err
	}
	return r.resolve(ctx, key{kind: bySlug, value: slug})
}

// ByHost returns the tenant a request's host belongs to (a custom domain or
// "{slug}.{base domain}"), in whatever state it is; call RequireActive
// before serving it. The host is taken as received: port, case, trailing dot
// and Unicode spellings are normalised as the registry does, and a host that
// is not a valid name is refused with tenantname's InvalidArgument fault.
//
// Hosts are resolved from the cached tenants by the registry's rules, so
// every host of a cached tenant is answered from memory, even one never
// asked about and while the registry is down. Once Ready, a host of no
// cached tenant is a NotFound fault TENANT_NOT_FOUND without an RPC, unless
// it is "{known slug}.{domain}" and the base domains are not known (see
// Options.BaseDomains). Before Ready, hosts the cache cannot answer are
// asked of the registry, with the errors of BySlug.
func (r *Resolver) ByHost(ctx context.Context, host string) (Tenant, error) {
	host, err := tenantname.NormalizeHost("host", host)
	if err != nil {
		return Tenant{}, err
	}
	return r.resolve(ctx, key{kind: byHost, value: host})
}

// resolve answers k from the cache or asks the registry.
func (r *Resolver) resolve(ctx context.Context, k key) (Tenant, error) {
	l := r.cache.lookup(k, time.Now())
	if l.found {
		r.hits.Add(1)
		return l.tenant, nil
	}
	if l.unknown {
		r.unknowns.Add(1)
		return Tenant{}, errNotFound(k)
	}
	r.asked.Add(1)
	resp, err := r.ask(ctx, k)
	if err == nil {
		e := fromProto(resp.GetTenant())
		r.cache.remember(k, e, resp.GetRevision())
		if k.kind == byHost && resp.GetMatch() == registryv1.ResolveTenantResponse_MATCH_SUBDOMAIN {
			r.learnBase(ctx, k.value, e.tenant.Slug)
		}
		return e.tenant, nil
	}
	switch outcome := classify(ctx, err); outcome {
	case notFound:
		r.cache.rememberMissing(k, l.epoch, time.Now(), r.negativeTTL)
		return Tenant{}, errNotFound(k)
	case invalid, canceled:
		return Tenant{}, callError(outcome, k, err)
	default:
		if outcome == rejected {
			r.logger.ErrorContext(ctx, "the tenant registry refused this service's credential", "error", err)
		}
		if l.snapshotMiss {
			// The registry is out of reach: the snapshot, which holds every
			// tenant and domain as of the watch's last event, has answered,
			// and is remembered like the registry's own answer, so that an
			// outage does not make every such request wait for the registry.
			r.cache.rememberMissing(k, l.epoch, time.Now(), r.negativeTTL)
			return Tenant{}, errNotFound(k)
		}
		return Tenant{}, callError(outcome, k, err)
	}
}

// learnBase records the base domain of host, which the registry resolved
// as "{slug}.{base}", so that the slugs of every cached tenant resolve under
// it from memory too.
func (r *Resolver) learnBase(ctx context.Context, host, slug string) {
	base, ok := strings.CutPrefix(host, slug+".")
	if !ok || base == "" {
		return
	}
	if r.cache.learnBase(base) {
		r.logger.WarnContext(ctx, "the tenant registry resolves hosts under a base domain this service was not given "+
			"(learnt until the service restarts); give it the registry's TENANTRY_BASE_DOMAINS",
			"base_domain", base)
	}
}

// ask calls ResolveTenant for k with the service credential.
func (r *Resolver) ask(ctx context.Context, k key) (*registryv1.ResolveTenantResponse, error) {
	req := &registryv1.ResolveTenantRequest{}
	switch k.kind {
	case bySlug:
		req.Key = &registryv1.ResolveTenantRequest_Slug{Slug: k.value}
	case byHost:
		req.Key = &registryv1.ResolveTenantRequest_Host{Host: k.value}
	}
	ctx, cancel := context.WithTimeout(r.authorized(ctx), r.resolveTimeout)
	defer cancel()
	return r.client.ResolveTenant(ctx, req)
}

// authorized returns ctx carrying the service credential for outgoing calls.
func (r *Resolver) authorized(ctx context.Context) context.Context {
	if r.bearer == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", r.bearer)
}

// purged runs the OnPurge hooks for each tenant.
func (r *Resolver) purged(tenants ...Tenant) {
	if len(tenants) == 0 {
		return
	}
	r.hooksMu.Lock()
	hooks := append([]func(Tenant){}, r.onPurge...)
	r.hooksMu.Unlock()
	for _, t := range tenants {
		for _, fn := range hooks {
			fn(t)
		}
	}
}

// All returns every tenant the cache knows, in no particular order. After
// Ready that is every tenant of the registry, as of the watch's last event;
// identity uses it to migrate all tenant schemas at start-up, for example.
func (r *Resolver) All() []Tenant {
	r.cache.mu.RLock()
	defer r.cache.mu.RUnlock()
	out := make([]Tenant, 0, len(r.cache.tenants))
	for _, e := range r.cache.tenants {
		out = append(out, e.tenant)
	}
	return out
}

// Package tenantpool gives a product service a database connection pool
// per tenant, logged in as its component's role in that tenant (package
// tenantrole): the only role that can read the component's tables there,
// and that can read nothing else. The password of each role is derived
// from the component's token, so the service needs no secret per tenant.
//
// Pools are opened on first use and kept for the most recently used
// tenants only (Options.MaxTenants), each with few connections: a service
// serving many tenants holds connections for the busy ones. Opening a
// tenant's pool costs one connection set-up (SCRAM with a cheap verifier,
// see tenantrole); the make bench row "tenant-scoped read" measures the
// steady state.
package tenantpool

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/tenantrole"
)

// Defaults of Options.
const (
	DefaultMaxTenants        = 64
	DefaultMaxConnsPerTenant = 4
	DefaultIdleTime          = 2 * time.Minute
)

// Options configure Pools.
type Options struct {
	// ComponentToken is the component's token (GetComponentCredential);
	// it names the component and derives the roles' passwords.
	ComponentToken string
	// Placements maps each placement name to its database URL (the
	// registry's TENANTRY_PLACEMENTS, with "default" for DATABASE_URL).
	// User and password in the URLs are ignored: each tenant's pool logs
	// in as the tenant's role.
	Placements map[string]string
	// MaxTenants bounds how many tenants have an open pool; the least
	// recently used is closed past it. DefaultMaxTenants when zero.
	MaxTenants int
	// MaxConnsPerTenant bounds each tenant's pool.
	// DefaultMaxConnsPerTenant when zero.
	MaxConnsPerTenant int32
	// IdleTime closes connections idle this long. DefaultIdleTime when zero.
	IdleTime time.Duration
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
	// Tracer, when set, observes every query of every tenant's pool: say,
	// tracing.Tracing.WrapQueryTracer's spans.
	Tracer pgx.QueryTracer
}

// ErrUnknownPlacement means a tenant lives in a placement the service was
// not configured with.
var ErrUnknownPlacement = errors.New("tenantpool: unknown placement")

// Pools holds the tenant pools of one component. It is safe for
// concurrent use.
type Pools struct {
	component string
	token     string
	bases     map[string]*pgxpool.Config
	max       int
	logger    *slog.Logger

	mu     sync.Mutex
	byUID  map[string]*list.Element // of *tenantPool
	lru    *list.List               // front: most recently used
	closed bool
}

type tenantPool struct {
	uid       string
	schema    string
	placement string
	pool      *pgxpool.Pool
}

// New checks opts and returns Pools; it connects to nothing yet.
func New(opts Options) (*Pools, error) {
	component, err := tenantrole.ComponentOf(opts.ComponentToken)
	if err != nil {
		return nil, fmt.Errorf("tenantpool: the component token is malformed; get it with `tenantry components credential <id>`")
	}
	if len(opts.Placements) == 0 {
		return nil, errors.New("tenantpool: no placement database configured")
	}
	if opts.MaxTenants <= 0 {
		opts.MaxTenants = DefaultMaxTenants
	}
	if opts.MaxConnsPerTenant <= 0 {
		opts.MaxConnsPerTenant = DefaultMaxConnsPerTenant
	}
	if opts.IdleTime <= 0 {
		opts.IdleTime = DefaultIdleTime
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Pools{
		component: component,
		token:     opts.ComponentToken,
		bases:     map[string]*pgxpool.Config{},
		max:       opts.MaxTenants,
		logger:    opts.Logger,
		byUID:     map[string]*list.Element{},
		lru:       list.New(),
	}
	for name, url := range opts.Placements {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("tenantpool: placement %q: %w", name, err)
		}
		cfg.MaxConns = opts.MaxConnsPerTenant
		cfg.MinConns = 0
		cfg.MaxConnIdleTime = opts.IdleTime
		if opts.Tracer != nil {
			cfg.ConnConfig.Tracer = opts.Tracer
		}
		p.bases[name] = cfg
	}
	return p, nil
}

// Component returns the id of the component the pools log in for.
func (p *Pools) Component() string { return p.component }

// InTenant runs fn in a transaction of t's database, as the component's
// role in t, whose search path is t's schema: unqualified names are the
// component's tables in that tenant. It commits when fn returns nil and
// rolls back otherwise; fn's error is returned as is.
func (p *Pools) InTenant(ctx context.Context, t tenancy.Tenant, fn func(ctx context.Context, tx pgx.Tx) error) error {
	pool, err := p.pool(ctx, t)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
}

// Query runs one statement in t's database as the component's role in t,
// without BEGIN and COMMIT, and calls scan with its rows: PostgreSQL runs
// a statement sent alone in a transaction of its own, so one statement is
// as atomic and sees the same snapshot as in InTenant, in one round trip
// instead of three. The statement has committed once it has run, whatever
// scan returns: a change that must be undone when the handler fails
// belongs in InTenant. scan's error, else the statement's, is returned.
func (p *Pools) Query(ctx context.Context, t tenancy.Tenant, scan func(rows pgx.Rows) error, sql string, args ...any) error {
	pool, err := p.pool(ctx, t)
	if err != nil {
		return err
	}
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// pool returns t's pool, opening it (and closing the least recently used
// past MaxTenants) if needed.
func (p *Pools) pool(ctx context.Context, t tenancy.Tenant) (*pgxpool.Pool, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("tenantpool: closed")
	}
	if el, ok := p.byUID[t.UID]; ok {
		tp := el.Value.(*tenantPool)
		if tp.schema == t.Schema && tp.placement == t.Placement {
			p.lru.MoveToFront(el)
			p.mu.Unlock()
			return tp.pool, nil
		}
		// The schema was renamed, or the tenant moved to another
		// placement (MoveTenant): start over.
		p.removeLocked(el)
	}
	p.mu.Unlock()

	pool, err := p.open(ctx, t)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.byUID[t.UID]; ok {
		if tp := el.Value.(*tenantPool); tp.schema == t.Schema && tp.placement == t.Placement {
			go pool.Close() // opened concurrently: keep the first
			p.lru.MoveToFront(el)
			return tp.pool, nil
		}
		p.removeLocked(el)
	}
	p.byUID[t.UID] = p.lru.PushFront(&tenantPool{uid: t.UID, schema: t.Schema, placement: t.Placement, pool: pool})
	for p.lru.Len() > p.max {
		p.removeLocked(p.lru.Back())
	}
	return pool, nil
}

func (p *Pools) open(ctx context.Context, t tenancy.Tenant) (*pgxpool.Pool, error) {
	base, ok := p.bases[t.Placement]
	if !ok {
		return nil, fmt.Errorf("%w %q (tenant %q): add it to the service's placements", ErrUnknownPlacement, t.Placement, t.Slug)
	}
	cfg := base.Copy()
	cfg.ConnConfig.User = tenantrole.RoleName(t.UID, p.component)
	cfg.ConnConfig.Password = tenantrole.Password(p.token, t.UID)
	// The role's default search path says the same; sending it in the
	// start-up packet costs nothing and holds even if that was changed.
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{t.Schema}.Sanitize() + ", pg_temp"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tenantpool: open pool of tenant %q: %w", t.Slug, err)
	}
	return pool, nil
}

// removeLocked closes a tenant's pool in the background: Close waits for
// connections in use, which must not hold up other tenants.
func (p *Pools) removeLocked(el *list.Element) {
	tp := p.lru.Remove(el).(*tenantPool)
	delete(p.byUID, tp.uid)
	go tp.pool.Close()
}

// Forget closes the pool of the tenant with uid, if open: call it when a
// tenant is purged (tenancy.Resolver.OnPurge).
func (p *Pools) Forget(uid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.byUID[uid]; ok {
		p.removeLocked(el)
	}
}

// Open reports how many tenants have an open pool.
func (p *Pools) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

// Close closes every pool and refuses further use.
func (p *Pools) Close() {
	p.mu.Lock()
	p.closed = true
	pools := make([]*pgxpool.Pool, 0, p.lru.Len())
	for el := p.lru.Front(); el != nil; el = el.Next() {
		pools = append(pools, el.Value.(*tenantPool).pool)
	}
	p.byUID, p.lru = map[string]*list.Element{}, list.New()
	p.mu.Unlock()
	for _, pool := range pools {
		pool.Close()
	}
}

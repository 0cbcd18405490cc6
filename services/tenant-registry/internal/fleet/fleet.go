// Package fleet runs fleet migrations: long-running operations (AIP-151)
// that bring every tenant schema's components up to their latest version.
//
// Guarantees:
//   - one transaction per tenant, with every requested component applied in
//     it (tenantdb.Apply): a tenant is never half-migrated;
//   - a lock_timeout on each tenant's transaction, so a migration never
//     queues behind a long query and stalls the tenant's traffic: that tenant
//     fails, is reported, and the others go on;
//   - only stale schemas are touched: the versions of every schema are read
//     in one query per placement, so a fleet that is current costs a few
//     queries however many tenants it has;
//   - an operation survives its replica: it is leased and the lease renewed
//     while it runs on the replica that started it; a replica that stops
//     gracefully releases it, one that crashes lets it expire, and the
//     leader (package leader: one replica at a time) then resumes it,
//     recomputing what is still stale (so nothing is done twice);
//   - a cancellation lets tenants in progress finish and starts no more;
//   - progress counts each tenant once, except that a crash between a
//     tenant's commit and the write that counts it leaves it uncounted (the
//     tenant is current, so no run migrates it again).
//
// What it does not do: migrate tenants still being provisioned (CreateTenant
// applies the components itself), or order components that depend on each
// other beyond applying them in id order.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"tenantry.dev/platform/fault"
	"tenantry.dev/tenant-registry/internal/component"
)

// Reasons of the faults and errors of operations.
const (
	ReasonOperationNotFound  = "OPERATION_NOT_FOUND"
	ReasonOperationCancelled = "OPERATION_CANCELLED"
	ReasonOperationFailed    = "OPERATION_FAILED"
	ReasonRequestInvalid     = "MIGRATION_REQUEST_INVALID"
)

// Retention is how long an ended operation stays readable.
const Retention = 30 * 24 * time.Hour

// KindMigrateTenants is the kind of a fleet migration.
const KindMigrateTenants = "MigrateTenants"

// Defaults and bounds of a request.
const (
	DefaultConcurrency = 4
	MaxConcurrency     = 64
	DefaultLockTimeout = 5 * time.Second
	MaxLockTimeout     = time.Minute
)

// State is an operation's state.
type State string

// The states of an operation.
const (
	Running   State = "RUNNING"
	Succeeded State = "SUCCEEDED"
	Failed    State = "FAILED"
	Cancelled State = "CANCELLED"
)

// Request is what a fleet migration was asked to do.
type Request struct {
	Components  []string      `json:"components"`
	DryRun      bool          `json:"dry_run"`
	Concurrency int           `json:"concurrency"`
	LockTimeout time.Duration `json:"lock_timeout"`
	// Tenants limits the migration to these slugs; empty means all.
	Tenants []string `json:"tenants,omitempty"`
}

// MaxTenants is how many tenants a request may name.
const MaxTenants = 100

// ReasonTenantNotFound is the reason of a request naming a tenant that
// has no schema to migrate.
const ReasonTenantNotFound = "TENANT_NOT_FOUND"

// Failure is a tenant a migration could not migrate.
type Failure struct {
	Tenant    string
	Component string
	Version   int
	Message   string
}

// Plan is a tenant a dry run would migrate.
type Plan struct {
	Tenant    string `json:"tenant"`
	Component string `json:"component"`
	From      int    `json:"from"`
	To        int    `json:"to"`
}

// Operation is a fleet migration's record.
type Operation struct {
	ID              string
	Kind            string
	Request         Request
	State           State
	Total           int
	Done            int
	Failed          int
	CancelRequested bool
	ErrCode         int
	ErrMessage      string
	ErrReason       string
	Planned         []Plan
	Failures        []Failure
	CreateTime      time.Time
	UpdateTime      time.Time
	EndTime         time.Time
}

// Finished reports whether the operation has ended.
func (o *Operation) Finished() bool { return o.State != Running }

// Target is a tenant schema a migration considers.
type Target struct {
	UID       string // the tenant's uid, which names its roles
	Slug      string
	Schema    string
	Placement string
}

// ErrLeaseLost means another replica holds the operation now.
var ErrLeaseLost = errors.New("fleet: the operation's lease is held by another replica")

// Store keeps operations and reaches the fleet.
type Store interface {
	CreateOperation(ctx context.Context, op *Operation, owner string, lease time.Duration) error
	GetOperation(ctx context.Context, id string, withResult bool) (*Operation, error)
	ListOperations(ctx context.Context, afterCreate time.Time, afterID string, limit int) ([]*Operation, error)
	RequestCancel(ctx context.Context, id string) (*Operation, error)
	// Renew extends owner's lease and says whether cancellation was
	// requested; ErrLeaseLost when owner no longer holds it.
	Renew(ctx context.Context, id, owner string, lease time.Duration) (cancel bool, err error)
	// Release gives the lease up at once, for another replica to resume.
	Release(ctx context.Context, id, owner string) error
	// DeleteEnded deletes operations that ended before before.
	DeleteEnded(ctx context.Context, before time.Time) (int64, error)
	// ClaimExpired leases to owner the running operations whose lease ran out.
	ClaimExpired(ctx context.Context, owner string, lease time.Duration) ([]*Operation, error)
	// StartRun records the work of a (re)started run: total is done so far
	// plus stale; failures of an earlier run are cleared (they are retried).
	StartRun(ctx context.Context, id string, stale int) error
	RecordDone(ctx context.Context, id string) error
	RecordFailure(ctx context.Context, id string, f Failure) error
	Finish(ctx context.Context, id, owner string, state State, planned []Plan, code int, message, reason string) error

	// Targets returns every tenant schema a migration may touch, or only
	// those of slugs when it is not empty.
	Targets(ctx context.Context, slugs []string) ([]Target, error)
	// Versions returns, per placement and schema, the recorded version of
	// each of the components, in every schema or only in schemas when it
	// is not empty.
	Versions(ctx context.Context, components, schemas []string) (map[string]map[string]map[string]int, error)
	// ComponentsWithSQL returns the components, with their migrations' SQL.
	ComponentsWithSQL(ctx context.Context, ids []string) ([]*component.Component, error)
	// MigrateTenant applies the components to t's schema in one
	// transaction with lockTimeout; a *Failure when a migration of the
	// tenant's fails, an error when the tenant could not be reached.
	MigrateTenant(ctx context.Context, t Target, comps []*component.Component, lockTimeout time.Duration) (*Failure, error)
}

// Runner starts, runs and resumes fleet migrations on one replica. Every
// replica runs Run, and the leader also Resume.
type Runner struct {
	store Store
	owner string
	lease time.Duration
	log   *slog.Logger
	now   func() time.Time

	workers map[string]Worker // by kind, beside fleet migrations

	mu      sync.Mutex
	bg      context.Context // set by Run: operations outlive the request that starts them
	running map[string]bool
	wg      sync.WaitGroup
}

// NewRunner returns a Runner; lease is how long an operation stays with a
// replica that stops renewing it (30 s when zero).
func NewRunner(store Store, lease time.Duration, logger *slog.Logger) *Runner {
	if lease <= 0 {
		lease = 30 * time.Second
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Runner{store: store, owner: uuid.NewString(), lease: lease, log: logger, now: time.Now, running: map[string]bool{}}
}

// Worker does the work of the operations of one kind other than fleet
// migrations (the registry's tenant moves), with the same lease, resumption
// after a crash and cancellation. Work is called again, on another
// replica, for an operation whose replica stopped or died: it continues
// from what the operation recorded. cancel is closed when a cancellation
// is requested.
type Worker interface {
	Work(ctx context.Context, op *Operation, cancel <-chan struct{}) (state State, code int, message, reason string)
}

// Handle makes w do the operations of kind; call it before Run and Resume.
func (r *Runner) Handle(kind string, w Worker) {
	if r.workers == nil {
		r.workers = map[string]Worker{}
	}
	r.workers[kind] = w
}

// Owner is the id under which this replica leases operations.
func (r *Runner) Owner() string { return r.owner }

// Lease is how long an operation stays with a replica that stops renewing it.
func (r *Runner) Lease() time.Duration { return r.lease }

// Launch runs an operation created (leased to Owner) by a Worker's caller.
func (r *Runner) Launch(op *Operation) { r.launch(nil, op, nil) }

// Start validates and starts a fleet migration, returning it at once.
func (r *Runner) Start(ctx context.Context, req Request) (*Operation, error) {
	if req.Concurrency == 0 {
		req.Concurrency = DefaultConcurrency
	}
	if req.Concurrency < 1 || req.Concurrency > MaxConcurrency {
		return nil, fault.Invalid("concurrency", ReasonRequestInvalid, "concurrency must be from 1 to %d, not %d", MaxConcurrency, req.Concurrency)
	}
	if req.LockTimeout == 0 {
		req.LockTimeout = DefaultLockTimeout
	}
	if req.LockTimeout < time.Millisecond || req.LockTimeout > MaxLockTimeout {
		return nil, fault.Invalid("lock_timeout", ReasonRequestInvalid, "lock_timeout must be from 1ms to %s, not %s", MaxLockTimeout, req.LockTimeout)
	}
	for i, id := range req.Components {
		if err := component.ValidateID(fmt.Sprintf("components[%d]", i), id); err != nil {
			return nil, err
		}
	}
	req.Components = slices.Compact(slices.Sorted(slices.Values(req.Components)))
	if len(req.Tenants) > MaxTenants {
		return nil, fault.Invalid("tenants", ReasonRequestInvalid, "at most %d tenants may be named, not %d; name none to migrate every tenant", MaxTenants, len(req.Tenants))
	}
	req.Tenants = slices.Compact(slices.Sorted(slices.Values(req.Tenants)))
	comps, err := r.store.ComponentsWithSQL(ctx, req.Components)
	if err != nil {
		return nil, err
	}
	if len(req.Tenants) > 0 {
		targets, err := r.store.Targets(ctx, req.Tenants)
		if err != nil {
			return nil, err
		}
		for _, slug := range req.Tenants {
			if !slices.ContainsFunc(targets, func(t Target) bool { return t.Slug == slug }) {
				return nil, fault.New(fault.NotFound, ReasonTenantNotFound,
					"tenant %q has no schema to migrate: it does not exist, is being provisioned (which applies the components itself) or was purged", slug)
			}
		}
	}
	if len(req.Components) == 0 {
		for _, c := range comps {
			req.Components = append(req.Components, c.ID)
		}
	}
	now := r.now().UTC()
	op := &Operation{ID: uuid.NewString(), Kind: KindMigrateTenants, Request: req, State: Running, CreateTime: now, UpdateTime: now}
	if err := r.store.CreateOperation(ctx, op, r.owner, r.lease); err != nil {
		return nil, err
	}
	r.launch(nil, op, nil)
	return op, nil
}

// Run keeps this replica's operations going until ctx ends: operations
// started here run in ctx (they outlive the request that starts them), and
// when it ends Run waits for them to stop and release their leases. Every
// replica runs it.
func (r *Runner) Run(ctx context.Context) {
	r.mu.Lock()
	r.bg = ctx
	r.mu.Unlock()
	<-ctx.Done()
	r.wg.Wait()
}

// Resume resumes operations whose replica is gone (their lease ran out or
// was released) and deletes operations ended longer than Retention ago,
// until ctx ends. It is the leader's work (one replica at a time, package
// leader): operations it resumes run in ctx and are stopped and released
// when it ends, for the next leader to resume; Resume returns once they
// have. Claims are atomic, so replicas resuming at once would still never
// run one operation twice; a single leader just avoids the contention.
func (r *Runner) Resume(ctx context.Context) {
	var resumed sync.WaitGroup
	defer resumed.Wait()
	tick := time.NewTicker(max(r.lease/3, 100*time.Millisecond))
	defer tick.Stop()
	var swept time.Time
	for {
		if time.Since(swept) > time.Hour {
			swept = time.Now()
			if n, err := r.store.DeleteEnded(ctx, r.now().Add(-Retention)); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "cannot delete old operations", "err", err)
			} else if n > 0 {
				r.log.InfoContext(ctx, "deleted old operations", "count", n)
			}
		}
		ops, err := r.store.ClaimExpired(ctx, r.owner, r.lease)
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "cannot look for operations to resume", "err", err)
		}
		for _, op := range ops {
			r.log.InfoContext(ctx, "resuming an operation another replica left", "operation", op.ID)
			r.launch(ctx, op, &resumed)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// launch runs op in the background in ctx (the replica's when nil), once
// per replica; also counted in also when it is not nil.
func (r *Runner) launch(ctx context.Context, op *Operation, also *sync.WaitGroup) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[op.ID] {
		return
	}
	if ctx == nil {
		ctx = r.bg
	}
	if ctx == nil {
		ctx = context.Background()
	}
	r.running[op.ID] = true
	r.wg.Add(1)
	if also != nil {
		also.Add(1)
	}
	go func() {
		defer r.wg.Done()
		if also != nil {
			defer also.Done()
		}
		defer func() {
			r.mu.Lock()
			delete(r.running, op.ID)
			r.mu.Unlock()
		}()
		r.run(ctx, op)
	}()
}

// run does one operation's work while renewing its lease.
func (r *Runner) run(ctx context.Context, op *Operation) {
	log := r.log.With("operation", op.ID)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var cancelled sync.Once
	cancelCh := make(chan struct{})
	lost := make(chan struct{})
	go func() {
		// Renewing is also how a cancellation is heard: often enough that
		// a cancelled operation stops within half a second.
		t := time.NewTicker(min(r.lease/3, 500*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cancel, err := r.store.Renew(ctx, op.ID, r.owner, r.lease)
			switch {
			case errors.Is(err, ErrLeaseLost):
				close(lost)
				stop()
				return
			case err != nil:
				log.WarnContext(ctx, "cannot renew the operation's lease", "err", err)
			case cancel:
				cancelled.Do(func() { close(cancelCh) })
			}
		}
	}()

	var (
		state       State
		planned     []Plan
		code        int
		msg, reason string
	)
	if w, ok := r.workers[op.Kind]; ok {
		state, code, msg, reason = w.Work(ctx, op, cancelCh)
	} else {
		state, planned, code, msg, reason = r.work(ctx, op, cancelCh)
	}
	select {
	case <-lost:
		log.WarnContext(ctx, "another replica took the operation over")
		return
	default:
	}
	if ctx.Err() != nil || state == Running {
		// This replica is stopping, or its term as leader ended, or a
		// Worker asks to be run again later: another one (or this one, as
		// leader) resumes the operation. Bounded, so that a database that is
		// out of reach does not hold the stop up; the lease then runs out.
		release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.store.Release(release, op.ID, r.owner); err != nil {
			log.WarnContext(ctx, "cannot release the operation", "err", err)
		}
		return
	}
	if err := r.store.Finish(ctx, op.ID, r.owner, state, planned, code, msg, reason); err != nil {
		log.ErrorContext(ctx, "cannot record the end of an operation; it will be resumed", "err", err)
		return
	}
	log.InfoContext(ctx, "operation ended", "state", state)
}

// work migrates every stale tenant, or plans it for a dry run.
func (r *Runner) work(ctx context.Context, op *Operation, cancel <-chan struct{}) (State, []Plan, int, string, string) {
	fail := func(err error) (State, []Plan, int, string, string) {
		r.log.ErrorContext(ctx, "fleet migration failed", "operation", op.ID, "err", err)
		return Failed, nil, 13, "the migration could not run: " + err.Error(), ReasonOperationFailed
	}
	comps, err := r.store.ComponentsWithSQL(ctx, op.Request.Components)
	if err != nil {
		return fail(err)
	}
	stale, plans, err := r.stale(ctx, comps, op.Request.Tenants)
	if err != nil {
		return fail(err)
	}
	if op.Request.DryRun {
		// total says how many tenants are behind; none is done.
		if err := r.store.StartRun(ctx, op.ID, len(stale)); err != nil {
			return fail(err)
		}
		return Succeeded, plans, 0, "", ""
	}
	if err := r.store.StartRun(ctx, op.ID, len(stale)); err != nil {
		return fail(err)
	}
	jobs := make(chan Target)
	var wg sync.WaitGroup
	for range min(op.Request.Concurrency, max(len(stale), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range jobs {
				r.migrateOne(ctx, op, t, comps)
			}
		}()
	}
	stopped := false
feed:
	for _, t := range stale {
		select {
		case <-cancel:
			stopped = true
			break feed
		case <-ctx.Done():
			break feed
		case jobs <- t:
		}
	}
	close(jobs)
	wg.Wait()
	if stopped {
		return Cancelled, nil, 1, "the operation was cancelled; tenants not reached are still behind", ReasonOperationCancelled
	}
	return Succeeded, nil, 0, "", ""
}

// migrateOne migrates one tenant and records the outcome.
func (r *Runner) migrateOne(ctx context.Context, op *Operation, t Target, comps []*component.Component) {
	f, err := r.store.MigrateTenant(ctx, t, comps, op.Request.LockTimeout)
	if err != nil && ctx.Err() != nil {
		// Stopping: the tenant's transaction was rolled back, and the
		// resumed run finds the tenant still stale.
		return
	}
	// A tenant migrated is counted even while stopping, or the resumed run
	// (which finds it current) would never count it. Only a crash between
	// the tenant's commit and this write can leave it uncounted.
	ctx = context.WithoutCancel(ctx)
	if err != nil {
		f = &Failure{Tenant: t.Slug, Message: err.Error()}
	}
	if f != nil {
		f.Tenant = t.Slug
		if err := r.store.RecordFailure(ctx, op.ID, *f); err != nil {
			r.log.WarnContext(ctx, "cannot record a tenant's failure", "operation", op.ID, "tenant", t.Slug, "err", err)
		}
		return
	}
	if err := r.store.RecordDone(ctx, op.ID); err != nil {
		r.log.WarnContext(ctx, "cannot record a tenant's progress", "operation", op.ID, "tenant", t.Slug, "err", err)
	}
}

// stale returns the tenants behind on any of comps, and what each is behind on.
// With slugs, only those tenants are considered.
func (r *Runner) stale(ctx context.Context, comps []*component.Component, slugs []string) ([]Target, []Plan, error) {
	ids := make([]string, len(comps))
	for i, c := range comps {
		ids[i] = c.ID
	}
	targets, err := r.store.Targets(ctx, slugs)
	if err != nil {
		return nil, nil, err
	}
	var schemas []string
	if len(slugs) > 0 {
		for _, t := range targets {
			schemas = append(schemas, t.Schema)
		}
	}
	versions, err := r.store.Versions(ctx, ids, schemas)
	if err != nil {
		return nil, nil, err
	}
	var (
		stale []Target
		plans []Plan
	)
	for _, t := range targets {
		behind := false
		for _, c := range comps {
			v := versions[t.Placement][t.Schema][c.ID]
			if v < c.Latest() {
				behind = true
				plans = append(plans, Plan{Tenant: t.Slug, Component: c.ID, From: v, To: c.Latest()})
			}
		}
		if behind {
			stale = append(stale, t)
		}
	}
	return stale, plans, nil
}

// Get returns an operation with its result.
func (r *Runner) Get(ctx context.Context, id string) (*Operation, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNotFound(id)
	}
	return r.store.GetOperation(ctx, id, true)
}

// List returns operations newest first, after a cursor.
func (r *Runner) List(ctx context.Context, afterCreate time.Time, afterID string, limit int) ([]*Operation, error) {
	return r.store.ListOperations(ctx, afterCreate, afterID, limit)
}

// Cancel asks an operation to stop.
func (r *Runner) Cancel(ctx context.Context, id string) (*Operation, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNotFound(id)
	}
	return r.store.RequestCancel(ctx, id)
}

// Wait returns when the operation has ended or timeout has passed.
func (r *Runner) Wait(ctx context.Context, id string, timeout time.Duration) (*Operation, error) {
	deadline := time.Now().Add(timeout)
	for {
		op, err := r.Get(ctx, id)
		if err != nil || op.Finished() || !time.Now().Before(deadline) {
			return op, err
		}
		select {
		case <-ctx.Done():
			return op, nil
		case <-time.After(min(100*time.Millisecond, time.Until(deadline))):
		}
	}
}

// ErrNotFound returns the fault for a missing operation.
func ErrNotFound(id string) error {
	return fault.New(fault.NotFound, ReasonOperationNotFound, "operation %q does not exist", id)
}

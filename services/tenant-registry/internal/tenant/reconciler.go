package tenant

import (
	"context"
	"time"
)

// Reconciler repairs what a crash can leave half-done and carries out
// delayed work: it finishes tenants stuck in Provisioning (a crash between
// recording a tenant and creating its schema in another placement) and
// purges deleted tenants whose grace period is over. Every step it takes is
// idempotent, so several replicas may run it at once.
type Reconciler struct {
	m *Manager
	// StuckAfter is how old a Provisioning tenant must be before the
	// reconciler treats it as abandoned rather than in progress.
	StuckAfter time.Duration
	// Interval is the time between passes of Run.
	Interval time.Duration
}

// NewReconciler returns a reconciler working through m.
func NewReconciler(m *Manager, stuckAfter, interval time.Duration) *Reconciler {
	return &Reconciler{m: m, StuckAfter: stuckAfter, Interval: interval}
}

// Report counts what one pass did.
type Report struct {
	Finished int
	Purged   int
	Failed   int
}

// Pass runs one reconciliation. With startup set, every Provisioning tenant
// is considered abandoned, since a restarting replica cannot have requests
// in flight; other replicas' in-flight creates are safe because each step
// is idempotent.
func (r *Reconciler) Pass(ctx context.Context, startup bool) (Report, error) {
	var rep Report
	log := r.m.cfg.Logger
	now := r.m.cfg.Now()
	before := now.Add(-r.StuckAfter)
	if startup {
		before = now
	}
	stuck, err := r.m.store.Stuck(ctx, before)
	if err != nil {
		return rep, err
	}
	for _, t := range stuck {
		if _, err := r.m.finishProvisioning(ctx, t); err != nil {
			rep.Failed++
			log.ErrorContext(ctx, "reconciler could not finish provisioning", "tenant", t.Slug, "uid", t.UID, "err", err)
			continue
		}
		rep.Finished++
		log.InfoContext(ctx, "reconciler finished provisioning", "tenant", t.Slug, "uid", t.UID)
	}
	expired, err := r.m.store.Expired(ctx, now)
	if err != nil {
		return rep, err
	}
	for _, t := range expired {
		if _, err := r.m.purge(ctx, t); err != nil {
			rep.Failed++
			log.ErrorContext(ctx, "reconciler could not purge", "tenant", t.Slug, "uid", t.UID, "err", err)
			continue
		}
		rep.Purged++
	}
	return rep, nil
}

// Run passes once at start-up and then every Interval until ctx ends.
// Failures are logged and retried on the next pass.
func (r *Reconciler) Run(ctx context.Context) {
	startup := true
	for {
		if _, err := r.Pass(ctx, startup); err != nil && ctx.Err() == nil {
			r.m.cfg.Logger.WarnContext(ctx, "reconciliation pass failed", "err", err)
		} else {
			startup = false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Interval):
		}
	}
}

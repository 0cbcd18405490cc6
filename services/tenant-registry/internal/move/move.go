// Package move moves a tenant's schema to another placement while the
// tenant keeps serving (MoveTenant), as a long-running operation of the
// fleet runner: leased, resumed by another replica after a crash, and
// cancellable until the switch.
//
// The phases, each recorded before the next begins so that a replica
// resuming the move continues where it stood:
//
//  1. PREPARING: both placements are checked (wal_level logical, a
//     superuser login, a replica identity on every table), the source
//     schema is brought to every component's latest version, and the same
//     schema is built on the target by the components' own migrations,
//     then emptied. A publication of the schema (FOR TABLES IN SCHEMA) and
//     a replication slot are made on the source, a subscription on the
//     target.
//  2. COPYING: PostgreSQL copies the tables and then streams every change.
//     The move waits until each table is copied and a marker row written on
//     the source reaches the target quickly: the target has caught up.
//  3. FENCED: a statement trigger on every table of the source schema
//     refuses writes (SQLSTATE TNMOV); installing it waits for the writes in
//     flight, which therefore commit before the fence. A last marker's
//     arrival proves every one of them applied on the target; the
//     sequences are carried over; the tenant's placement is switched in
//     the registry, in the transaction that announces it on WatchTenants.
//     Services re-run a fenced transaction on the new placement
//     (tenantdb.RetryMoving), so their callers see a pause, not an error.
//  4. SWITCHED: the subscription, slot and publication are dropped. The
//     old copy keeps its fence (read-only) until its grace ends, when the
//     leader drops it (DONE).
//
// Before the switch the tenant is written only on the source (services
// route by the registry's placement); after it only on the target (the
// source is fenced). A crash at any step therefore never leaves two
// writable copies, and the resumed move either finishes or, when
// cancelled or failing before the switch, removes the fence and the
// target copy (ABANDONED), leaving the tenant where it was.
package move

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/tenant-registry/internal/fleet"
)

// Kind is the operation kind of a tenant move.
const Kind = "MoveTenant"

// Reasons of the faults of moves.
const (
	ReasonSamePlacement = "MOVE_SAME_PLACEMENT"
	ReasonTenantMoving  = "TENANT_MOVING"
	ReasonUnsupported   = "MOVE_UNSUPPORTED"
	ReasonInvalidGrace  = "MOVE_GRACE_INVALID"
	ReasonMoveFailed    = "MOVE_FAILED"
	ReasonMoveCancelled = "OPERATION_CANCELLED"
)

// Grace bounds.
const (
	DefaultGrace = 24 * time.Hour
	MaxGrace     = 30 * 24 * time.Hour
)

// Phase is where a move stands.
type Phase string

// The phases (see the package documentation).
const (
	Preparing Phase = "PREPARING"
	Copying   Phase = "COPYING"
	Fenced    Phase = "FENCED"
	Switched  Phase = "SWITCHED"
	Done      Phase = "DONE"
	Abandoned Phase = "ABANDONED"
)

// Move is a move's record.
type Move struct {
	Operation   string
	TenantUID   string
	Slug        string
	Schema      string
	Source      string
	Target      string
	Phase       Phase
	Grace       time.Duration
	SourceBytes int64
	FenceStart  time.Time
	SwitchTime  time.Time
	DropTime    time.Time
	UpdateTime  time.Time
}

// FenceDuration is how long writes were fenced, once switched.
func (m *Move) FenceDuration() time.Duration {
	if m.SwitchTime.IsZero() || m.FenceStart.IsZero() {
		return 0
	}
	return m.SwitchTime.Sub(m.FenceStart)
}

// Store keeps moves in the registry database and does each step's SQL on
// the placements. Every step is idempotent: a resumed move repeats the
// step it was in.
type Store interface {
	// Plan reads the tenant and checks the request against the registry:
	// the tenant may move, the target is another placement that accepts it.
	Plan(ctx context.Context, slug, target string, grace time.Duration) (*Move, error)
	// Begin records the operation (leased to owner, its ID set) and the
	// move in PREPARING, in one transaction; TENANT_MOVING when the tenant
	// is moving already.
	Begin(ctx context.Context, op *fleet.Operation, m *Move, owner string, lease time.Duration) error
	Get(ctx context.Context, operation string) (*Move, error)
	// Record writes m's phase and times.
	Record(ctx context.Context, m *Move) error
	// DueOldCopies lists switched moves whose grace has ended.
	DueOldCopies(ctx context.Context, now time.Time) ([]*Move, error)

	// Check verifies both placements can do the move.
	Check(ctx context.Context, m *Move) error
	// Prepare builds the empty schema on the target and returns the size
	// of the source's tables.
	Prepare(ctx context.Context, m *Move) (int64, error)
	// Replicate makes the publication, slot and subscription.
	Replicate(ctx context.Context, m *Move) error
	// Copied reports whether every table has been copied.
	Copied(ctx context.Context, m *Move) (bool, error)
	// RoundTrip writes a marker on the source and waits, at most timeout,
	// until the target has it: every change committed before is applied.
	RoundTrip(ctx context.Context, m *Move, timeout time.Duration) (time.Duration, error)
	// Fence makes the source schema refuse writes, after the writes in
	// flight commit.
	Fence(ctx context.Context, m *Move) error
	// Unfence removes the fence.
	Unfence(ctx context.Context, m *Move) error
	// CopySequences sets the target's sequences to the source's values.
	CopySequences(ctx context.Context, m *Move) error
	// Switch makes the target the tenant's placement, announces it and
	// records m SWITCHED (with its switch and drop times), in one
	// transaction of the registry database.
	Switch(ctx context.Context, m *Move) error
	// Unreplicate drops the subscription, slot, publication and markers.
	Unreplicate(ctx context.Context, m *Move) error
	// DropTarget drops the target copy of a move abandoned before its switch.
	DropTarget(ctx context.Context, m *Move) error
	// DropOldCopy drops the source copy after the switch.
	DropOldCopy(ctx context.Context, m *Move) error
}

// Outcomes of a move, for Mover.Ended.
const (
	OutcomeSwitched  = "switched"
	OutcomeCancelled = "cancelled"
	OutcomeFailed    = "failed"
)

func (mv *Mover) ended(m *Move, outcome string) {
	if mv.Ended != nil {
		mv.Ended(m, outcome)
	}
}

// Timing of the phases.
const (
	// catchUpLag is the marker round trip under which the target is
	// close enough behind to fence: the fence then lasts about as long.
	catchUpLag = 250 * time.Millisecond
	// fencedCatchUp is how long the fenced source waits for the target;
	// past it the fence is lifted and the move goes back to copying.
	fencedCatchUp = 20 * time.Second
	poll          = 100 * time.Millisecond
)

// Mover runs moves.
type Mover struct {
	// Ended, if set, hears of each move that ends on this replica, with its
	// outcome (OutcomeSwitched, OutcomeCancelled or OutcomeFailed).
	Ended func(m *Move, outcome string)

	// Accepts, if set, says whether a tenant may be placed in a
	// placement (closed and occupied dedicated placements refuse).
	Accepts func(ctx context.Context, placement string) error

	store  Store
	runner *fleet.Runner
	log    *slog.Logger
	now    func() time.Time
}

// New returns a Mover that runs its moves on runner.
func New(store Store, runner *fleet.Runner, logger *slog.Logger) *Mover {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Mover{store: store, runner: runner, log: logger, now: time.Now}
	runner.Handle(Kind, m)
	return m
}

// Start validates and starts a move, returning its operation at once.
func (mv *Mover) Start(ctx context.Context, slug, target string, grace time.Duration) (*fleet.Operation, *Move, error) {
	if grace < 0 || grace > MaxGrace {
		return nil, nil, fault.Invalid("grace", ReasonInvalidGrace, "grace must be from 0s to %s, not %s", MaxGrace, grace)
	}
	now := mv.now().UTC()
	m, err := mv.store.Plan(ctx, slug, target, grace)
	if err != nil {
		return nil, nil, err
	}
	if mv.Accepts != nil {
		if err := mv.Accepts(ctx, target); err != nil {
			return nil, nil, err
		}
	}
	// Checked here too, so that a placement that cannot do moves is told
	// at once rather than by a failed operation.
	if err := mv.store.Check(ctx, m); err != nil {
		return nil, nil, err
	}
	op := &fleet.Operation{ID: uuid.NewString(), Kind: Kind, State: fleet.Running, CreateTime: now, UpdateTime: now}
	m.Operation, m.Phase, m.UpdateTime = op.ID, Preparing, now
	if err := mv.store.Begin(ctx, op, m, mv.runner.Owner(), mv.runner.Lease()); err != nil {
		return nil, nil, err
	}
	mv.log.InfoContext(ctx, "tenant move started", "operation", op.ID, "tenant", slug, "from", m.Source, "to", m.Target)
	mv.runner.Launch(op)
	return op, m, nil
}

// Get returns a move's record.
func (mv *Mover) Get(ctx context.Context, operation string) (*Move, error) {
	return mv.store.Get(ctx, operation)
}

// Work implements fleet.Worker.
func (mv *Mover) Work(ctx context.Context, op *fleet.Operation, cancel <-chan struct{}) (fleet.State, int, string, string) {
	m, err := mv.store.Get(ctx, op.ID)
	if err != nil {
		return fleet.Failed, 13, "the move's record cannot be read: " + err.Error(), ReasonMoveFailed
	}
	log := mv.log.With("operation", op.ID, "tenant", m.Slug, "from", m.Source, "to", m.Target)
	cancelled := func() bool {
		select {
		case <-cancel:
			return true
		default:
			return op.CancelRequested
		}
	}
	if m.Phase == Preparing || m.Phase == Copying || m.Phase == Fenced {
		// A cancellation interrupts the steps that wait (the copy, the
		// slot); the switch itself is never interrupted half-way.
		steps, stopSteps := context.WithCancel(ctx)
		defer stopSteps()
		go func() {
			select {
			case <-cancel:
				stopSteps()
			case <-steps.Done():
			}
		}()
		if err := mv.untilSwitched(ctx, steps, m, cancelled, log); err != nil {
			if ctx.Err() != nil {
				return fleet.Running, 0, "", "" // stopping: another replica resumes it
			}
			if cancelled() {
				err = errCancelled
			}
			return mv.abandon(ctx, m, err, log)
		}
	}
	switch m.Phase {
	case Switched, Done:
		// The switch is done and cannot be undone: the clean-up is retried
		// until it succeeds.
		for {
			err := mv.store.Unreplicate(ctx, m)
			if err == nil {
				break
			}
			log.WarnContext(ctx, "cannot drop the move's replication yet; retrying", "err", err)
			select {
			case <-ctx.Done():
				return fleet.Running, 0, "", ""
			case <-time.After(time.Second):
			}
		}
		log.InfoContext(ctx, "tenant moved", "fence", m.FenceDuration(), "old_copy_dropped_at", m.DropTime)
		return fleet.Succeeded, 0, "", ""
	case Abandoned:
		return fleet.Cancelled, 1, "the move was abandoned; the tenant stayed where it was", ReasonMoveCancelled
	}
	return fleet.Failed, 13, fmt.Sprintf("the move is in an unknown phase %q", m.Phase), ReasonMoveFailed
}

// ErrFenceBusy means the fence could not take its locks without making the
// tenant's writers wait long: the move tries again later.
var ErrFenceBusy = errors.New("move: the source's tables are locked by other work")

// errCancelled ends a move cancelled before its switch.
var errCancelled = errors.New("move: cancelled")

// untilSwitched runs the phases before the switch, from m's.
// Steps that may be interrupted by a cancellation run in steps, the
// others in ctx.
func (mv *Mover) untilSwitched(ctx, steps context.Context, m *Move, cancelled func() bool, log *slog.Logger) error {
	if m.Phase == Preparing {
		if cancelled() {
			return errCancelled
		}
		if err := mv.store.Check(steps, m); err != nil {
			return err
		}
		// What an earlier attempt of this phase made is started afresh.
		if err := mv.store.Unreplicate(steps, m); err != nil {
			return fmt.Errorf("clear an earlier attempt: %w", err)
		}
		size, err := mv.store.Prepare(steps, m)
		if err != nil {
			return fmt.Errorf("prepare the target: %w", err)
		}
		m.SourceBytes = size
		if err := mv.store.Replicate(steps, m); err != nil {
			return fmt.Errorf("start replication: %w", err)
		}
		if err := mv.advance(ctx, m, Copying); err != nil {
			return err
		}
		log.InfoContext(ctx, "tenant move copying", "bytes", size)
	}
	for {
		if m.Phase == Copying {
			if err := mv.catchUp(steps, m, cancelled); err != nil {
				return err
			}
			if err := mv.store.Fence(steps, m); errors.Is(err, ErrFenceBusy) {
				// Locks held long on the source (autovacuum of a big
				// table, a long transaction): try again after a while
				// rather than queue the tenant's writers behind the fence.
				log.WarnContext(ctx, "cannot fence the source yet; retrying", "err", err)
				select {
				case <-steps.Done():
					return steps.Err()
				case <-time.After(time.Second):
				}
				continue
			} else if err != nil {
				return fmt.Errorf("fence the source: %w", err)
			}
			m.FenceStart = mv.now().UTC()
			if err := mv.advance(ctx, m, Fenced); err != nil {
				return err
			}
		}
		// Fenced: from here until Switch commits, the tenant's writes are
		// refused, so nothing slow belongs here.
		if cancelled() {
			return errCancelled
		}
		if _, err := mv.store.RoundTrip(ctx, m, fencedCatchUp); err != nil {
			if ctx.Err() != nil {
				return err
			}
			log.WarnContext(ctx, "the target did not catch up while fenced; lifting the fence to try again", "err", err)
			if err := mv.store.Unfence(ctx, m); err != nil {
				return fmt.Errorf("lift the fence: %w", err)
			}
			m.FenceStart = time.Time{}
			if err := mv.advance(ctx, m, Copying); err != nil {
				return err
			}
			continue
		}
		if err := mv.store.CopySequences(ctx, m); err != nil {
			return fmt.Errorf("carry the sequences over: %w", err)
		}
		if err := mv.store.Switch(ctx, m); err != nil {
			return fmt.Errorf("switch the placement: %w", err)
		}
		log.InfoContext(ctx, "tenant switched to its new placement", "fence", m.FenceDuration())
		mv.ended(m, OutcomeSwitched)
		return nil
	}
}

// catchUp waits until every table is copied and the target is less than
// catchUpLag behind.
func (mv *Mover) catchUp(ctx context.Context, m *Move, cancelled func() bool) error {
	for {
		if cancelled() {
			return errCancelled
		}
		copied, err := mv.store.Copied(ctx, m)
		if err != nil {
			return fmt.Errorf("follow the copy: %w", err)
		}
		if copied {
			lag, err := mv.store.RoundTrip(ctx, m, 10*time.Second)
			if err == nil && lag < catchUpLag {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func (mv *Mover) advance(ctx context.Context, m *Move, p Phase) error {
	m.Phase = p
	if err := mv.store.Record(ctx, m); err != nil {
		return fmt.Errorf("record phase %s: %w", p, err)
	}
	return nil
}

// abandon undoes a move that did not switch: fence, replication, target
// copy. A step that fails is retried by the replica that resumes the move
// (the phase is still the old one).
func (mv *Mover) abandon(ctx context.Context, m *Move, cause error, log *slog.Logger) (fleet.State, int, string, string) {
	for _, step := range []func(context.Context, *Move) error{mv.store.Unfence, mv.store.Unreplicate, mv.store.DropTarget} {
		if err := step(ctx, m); err != nil {
			log.ErrorContext(ctx, "cannot undo the move yet; it is retried", "err", err, "cause", cause)
			return fleet.Running, 0, "", ""
		}
	}
	if err := mv.advance(ctx, m, Abandoned); err != nil {
		log.ErrorContext(ctx, "cannot record the move abandoned; it is retried", "err", err)
		return fleet.Running, 0, "", ""
	}
	if errors.Is(cause, errCancelled) {
		mv.ended(m, OutcomeCancelled)
		log.InfoContext(ctx, "tenant move cancelled; the tenant stayed where it was")
		return fleet.Cancelled, 1, "the move was cancelled before the switch; the tenant stayed in placement " + m.Source, ReasonMoveCancelled
	}
	mv.ended(m, OutcomeFailed)
	log.ErrorContext(ctx, "tenant move failed; the tenant stayed where it was", "err", cause)
	if f, ok := fault.As(cause); ok {
		return fleet.Failed, int(grpcerr.Code(f.Kind)), f.Message, f.Reason
	}
	return fleet.Failed, 13, "the move failed and was undone; the tenant stayed in placement " + m.Source + ": " + cause.Error(), ReasonMoveFailed
}

// ReapOldCopies drops the old copies whose grace has ended, until ctx
// ends. It is the leader's work.
func (mv *Mover) ReapOldCopies(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		mv.ReapOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReapOnce drops the old copies whose grace has ended, once.
func (mv *Mover) ReapOnce(ctx context.Context) {
	due, err := mv.store.DueOldCopies(ctx, mv.now())
	if err != nil {
		if ctx.Err() == nil {
			mv.log.WarnContext(ctx, "cannot look for old copies of moved tenants", "err", err)
		}
		return
	}
	for _, m := range due {
		if err := mv.store.DropOldCopy(ctx, m); err != nil {
			mv.log.WarnContext(ctx, "cannot drop the old copy of a moved tenant yet", "tenant", m.Slug, "placement", m.Source, "err", err)
			continue
		}
		if err := mv.advance(ctx, m, Done); err != nil {
			mv.log.WarnContext(ctx, "cannot record the old copy dropped", "tenant", m.Slug, "err", err)
			continue
		}
		mv.log.InfoContext(ctx, "dropped the old copy of a moved tenant", "tenant", m.Slug, "placement", m.Source)
	}
}

package tenantdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// MovingSQLState is the SQLSTATE of the error PostgreSQL raises for a write
// to a tenant schema that is fenced because the tenant is moving to
// another placement (the registry's MoveTenant), and stays fenced as the
// read-only old copy once it has moved. It is a class of its own, so that
// no error of PostgreSQL's is mistaken for it.
const MovingSQLState = "TNMOV"

// IsMoving reports whether err is a write refused by a move's fence.
func IsMoving(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == MovingSQLState
}

// MoveWait is how long RetryMoving waits for the new placement of a
// tenant whose schema is fenced: a move's fence lasts well under a second,
// and the new placement reaches services on the registry's change stream
// within milliseconds after it.
const MoveWait = 10 * time.Second

// RetryMoving runs do with tenant t and, while it fails because the
// tenant's schema is fenced for a move, waits until current reports the
// tenant in another placement (placement tells) and runs do again with
// that. do must be a whole transaction (a fenced write aborts it, so
// nothing of the attempt stays) with no effect outside the database before
// it commits.
//
// The fence refuses the write rather than blocking it so that a service
// never writes to the old copy after the switch: the write is re-run on
// the new copy instead, and the caller sees a short delay, not an error.
func RetryMoving[T any](ctx context.Context, t T, placement func(T) string, current func(ctx context.Context) (T, error), do func(ctx context.Context, t T) error) error {
	err := do(ctx, t)
	if !IsMoving(err) {
		return err
	}
	deadline := time.Now().Add(MoveWait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		next, cerr := current(ctx)
		if cerr != nil {
			return errors.Join(err, cerr)
		}
		if placement(next) != placement(t) {
			t = next
			if err = do(ctx, t); !IsMoving(err) {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tenantdb: the tenant's schema stayed fenced for a move longer than %s: %w", MoveWait, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-tick.C:
		}
	}
}

package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// activePhases are the phases of a move before its switch, when two copies
// of the tenant are kept in step (the partial unique index of migration
// 0005 lists them too).
const activePhases = `('PREPARING', 'COPYING', 'FENCED')`

// RunningOperation is a running operation's progress.
type RunningOperation struct {
	ID, Kind            string
	Total, Done, Failed int
}

// RunningMove is a move before its switch, or an old copy waiting for its
// grace (phase SWITCHED).
type RunningMove struct {
	Operation   string
	Phase       string
	SourceBytes int64
}

// Progress reads the running operations and the moves not yet done, for
// metrics: every replica reports the same, whichever runs the work.
func (s *Store) Progress(ctx context.Context) ([]RunningOperation, []RunningMove, error) {
	rows, err := s.db.Query(ctx, `SELECT id::text, kind, total, done, failed FROM tenantry_registry.operations WHERE state = 'RUNNING'`)
	if err != nil {
		return nil, nil, err
	}
	ops, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunningOperation, error) {
		var o RunningOperation
		err := r.Scan(&o.ID, &o.Kind, &o.Total, &o.Done, &o.Failed)
		return o, err
	})
	if err != nil {
		return nil, nil, err
	}
	rows, err = s.db.Query(ctx, `SELECT operation::text, phase, source_bytes FROM tenantry_registry.moves
		WHERE phase IN ('PREPARING', 'COPYING', 'FENCED', 'SWITCHED')`)
	if err != nil {
		return nil, nil, err
	}
	moves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunningMove, error) {
		var m RunningMove
		err := r.Scan(&m.Operation, &m.Phase, &m.SourceBytes)
		return m, err
	})
	return ops, moves, err
}

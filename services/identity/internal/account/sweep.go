package account

import (
	"context"
	"time"

	"tenantry.dev/identity/internal/tenancy"
)

// EndedRetention is how long an ended session (revoked or expired), with
// its refresh tokens, and an expired single-use token are kept before Sweep
// deletes them. Every refresh adds a token row, so without it a tenant's
// tables would only grow; a used refresh token of a live session is kept,
// since presenting it again must still revoke the session.
const EndedRetention = 30 * 24 * time.Hour

// SweepResult counts what one Sweep deleted.
type SweepResult struct {
	Sessions int64 // with their refresh tokens
	Tokens   int64 // single-use tokens
}

// Sweep deletes a tenant's sessions ended, and single-use tokens expired,
// more than EndedRetention ago.
func (m *Manager) Sweep(ctx context.Context, t tenancy.Tenant) (SweepResult, error) {
	before := m.now().Add(-EndedRetention)
	var res SweepResult
	err := m.store.InTenant(ctx, t, func(ctx context.Context, tx Tx) error {
		var err error
		if res.Sessions, err = tx.DeleteEndedSessions(ctx, before); err != nil {
			return err
		}
		res.Tokens, err = tx.DeleteExpiredTokens(ctx, before)
		return err
	})
	return res, internal(err, "sweep")
}

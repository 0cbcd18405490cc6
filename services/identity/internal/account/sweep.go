package account

import (
	"context"
	"time"

	"tenantry.dev/kit/tenancy"
)

// EndedRetention is how long an ended session (revoked or expired) and an
// expired single-use token are kept before Sweep deletes them: every login
// adds a session row and every reset or verification a token row, so
// without it a tenant's tables would only grow. The wait keeps an ended
// session on record for a while for whoever looks into an incident (the
// audit log names sessions).
const EndedRetention = 30 * 24 * time.Hour

// SweepResult counts what one Sweep deleted.
type SweepResult struct {
	Sessions int64
	Tokens   int64 // single-use tokens
	// AuthRequests are OAuth authorization requests.
	AuthRequests int64
	// DeletedUsers are accounts deleted at the end of the grace period
	// their owners asked for (deletion.go).
	DeletedUsers int64
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
		if res.Tokens, err = tx.DeleteExpiredTokens(ctx, before); err != nil {
			return err
		}
		if res.DeletedUsers, err = m.deleteDue(ctx, tx); err != nil {
			return err
		}
		// Passkey ceremonies are single-use tokens worth nothing, not even
		// to an incident, once expired (after minutes): no retention.
		ceremonies, err := tx.DeleteEndedPasskeyCeremonies(ctx, m.now())
		if err != nil {
			return err
		}
		res.Tokens += ceremonies
		// Authorization requests are kept no longer than the sessions and
		// tokens: past their expiry they only answer "used" to a replayed
		// code, which an unknown code gets as well.
		res.AuthRequests, err = tx.DeleteExpiredAuthRequests(ctx, before)
		return err
	})
	return res, internal(err, "sweep")
}

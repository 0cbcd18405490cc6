package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
)

func TestSweepDeletesWhatEndedLongAgoAndAnnouncesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now().UTC()
	before := now.Add(-account.EndedRetention)

	u, open := f.newUserWithSession(t)
	_, revokedLongAgo := f.newUserWithSession(t)
	_, expiredLongAgo := f.newUserWithSession(t)
	_, revokedRecently := f.newUserWithSession(t)
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		if err := tx.RevokeSession(ctx, revokedLongAgo.ID, "test", before.Add(-time.Hour)); err != nil {
			return err
		}
		if err := tx.RotateSession(ctx, expiredLongAgo.ID, expiredLongAgo.RefreshGeneration, expiredLongAgo.RefreshHash, before.Add(-48*time.Hour), before.Add(-time.Hour)); err != nil {
			return err
		}
		if err := tx.RevokeSession(ctx, revokedRecently.ID, "test", now.Add(-time.Hour)); err != nil {
			return err
		}
		for _, tok := range []*account.OneTimeToken{
			{Hash: randomHash(t), Purpose: account.PurposeVerifyEmail, UserID: u.ID, Email: u.Email, CreateTime: before.Add(-72 * time.Hour), ExpireTime: before.Add(-time.Hour)},
			{Hash: randomHash(t), Purpose: account.PurposeVerifyEmail, UserID: u.ID, Email: u.Email, CreateTime: now, ExpireTime: now.Add(time.Hour)},
		} {
			if err := tx.InsertToken(ctx, tok); err != nil {
				return err
			}
		}
		return nil
	}))
	// The setup's own changes are announced; let them all arrive first.
	f.waitHeard(t, "s "+revokedLongAgo.ID+" acme", "s "+expiredLongAgo.ID+" acme", "s "+revokedRecently.ID+" acme")

	var sessions, tokens int64
	require.NoError(t, f.in(t, func(ctx context.Context, tx account.Tx) error {
		var err error
		if sessions, err = tx.DeleteEndedSessions(ctx, before); err != nil {
			return err
		}
		tokens, err = tx.DeleteExpiredTokens(ctx, before)
		return err
	}))
	require.EqualValues(t, 2, sessions, "the sessions revoked or expired before the retention")
	require.EqualValues(t, 1, tokens, "the single-use token expired before the retention")

	var left []string
	rows, err := f.pool.Query(ctx, `SELECT id::text FROM acme.sessions`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		left = append(left, id)
	}
	require.ElementsMatch(t, []string{open.ID, revokedRecently.ID}, left)

	// Nothing open was deleted, so nothing was announced: a marker change
	// made afterwards is the only thing heard.
	_, m := f.newUserWithSession(t)
	marker := m.ID
	_, err = f.pool.Exec(ctx, `UPDATE acme.sessions SET revoke_time = now() WHERE id = $1`, marker)
	require.NoError(t, err)
	require.Equal(t, []string{"s " + marker + " acme"}, f.waitHeard(t, "s "+marker+" acme"))
}

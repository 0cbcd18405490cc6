package store

import (
	"context"
	"time"
)

// ScheduleDeletion sets (at non-nil) or clears the time userID's account
// is deleted at.
func (t *pgTx) ScheduleDeletion(ctx context.Context, userID string, at *time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE users SET delete_time = $2 WHERE id = $1::uuid`, userID, at)
	t.userChanged(userID)
	return err
}

// DeletionTime is when userID's account is to be deleted; zero when it
// is not.
func (t *pgTx) DeletionTime(ctx context.Context, userID string) (time.Time, error) {
	var at *time.Time
	if err := t.tx.QueryRow(ctx, `SELECT delete_time FROM users WHERE id = $1::uuid`, userID).Scan(&at); err != nil {
		return time.Time{}, err
	}
	if at == nil {
		return time.Time{}, nil
	}
	return *at, nil
}

// UsersDueForDeletion lists up to limit accounts whose deletion time is at
// or before now, locked for the deletion.
func (t *pgTx) UsersDueForDeletion(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT id::text FROM users WHERE delete_time <= $1 ORDER BY delete_time LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/identity/internal/account"
)

// The secondary email addresses of accounts (migration 0020, which also
// explains how an address stays with one account across users.email and
// this table).

func (t *pgTx) EmailAddresses(ctx context.Context, userID string) ([]account.EmailAddress, error) {
	rows, err := t.tx.Query(ctx, `SELECT email, create_time, verify_time FROM email_addresses
		WHERE user_id = $1::uuid ORDER BY create_time, email`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (account.EmailAddress, error) {
		var (
			a        account.EmailAddress
			verified *time.Time
		)
		err := row.Scan(&a.Email, &a.CreateTime, &verified)
		if verified != nil {
			a.VerifyTime = *verified
		}
		return a, err
	})
}

func (t *pgTx) EmailAddress(ctx context.Context, userID, email string) (account.EmailAddress, error) {
	a := account.EmailAddress{Email: email}
	var verified *time.Time
	err := t.tx.QueryRow(ctx, `SELECT create_time, verify_time FROM email_addresses
		WHERE user_id = $1::uuid AND email = $2 FOR UPDATE`, userID, email).Scan(&a.CreateTime, &verified)
	if verified != nil {
		a.VerifyTime = *verified
	}
	return a, notFound(err)
}

func (t *pgTx) EmailAddressOwner(ctx context.Context, email string) (string, error) {
	var id string
	err := t.tx.QueryRow(ctx, `SELECT user_id::text FROM email_addresses WHERE email = $1 AND verify_time IS NOT NULL`, email).Scan(&id)
	return id, notFound(err)
}

func (t *pgTx) InsertEmailAddress(ctx context.Context, userID string, a account.EmailAddress) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO email_addresses (user_id, email, create_time, verify_time)
		VALUES ($1::uuid, $2, $3, $4) ON CONFLICT (user_id, email) DO NOTHING`, userID, a.Email, a.CreateTime, nullTime(a.VerifyTime))
	if constraint(err) == "email_addresses_verified_email_key" {
		return account.ErrEmailTaken
	}
	t.userChanged(userID)
	return err
}

func (t *pgTx) VerifyEmailAddress(ctx context.Context, userID, email string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE email_addresses SET verify_time = $3 WHERE user_id = $1::uuid AND email = $2`, userID, email, at)
	if constraint(err) == "email_addresses_verified_email_key" {
		return account.ErrEmailTaken
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return account.ErrNotFound
	}
	t.userChanged(userID)
	return nil
}

func (t *pgTx) DeleteEmailAddress(ctx context.Context, userID, email string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM email_addresses WHERE user_id = $1::uuid AND email = $2`, userID, email)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return account.ErrNotFound
	}
	t.userChanged(userID)
	return nil
}

package store

import (
	"context"
	"time"

	"tenantry.dev/identity/internal/account"
)

func (t *pgTx) TOTPFactor(ctx context.Context, userID string, forUpdate bool) (*account.TOTPFactor, error) {
	var (
		f         = account.TOTPFactor{UserID: userID}
		confirmed *time.Time
	)
	err := t.tx.QueryRow(ctx, `SELECT secret_sealed, create_time, confirm_time, last_used_step
		FROM totp_factors WHERE user_id = $1::uuid`+lock(forUpdate), userID).
		Scan(&f.SecretSealed, &f.CreateTime, &confirmed, &f.LastUsedStep)
	if err != nil {
		return nil, notFound(err)
	}
	if confirmed != nil {
		f.ConfirmTime = *confirmed
	}
	return &f, nil
}

func (t *pgTx) SaveTOTPFactor(ctx context.Context, f *account.TOTPFactor) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO totp_factors (user_id, secret_sealed, create_time, confirm_time, last_used_step)
		VALUES ($1::uuid, $2, $3, $4, $5)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, create_time = EXCLUDED.create_time,
			confirm_time = EXCLUDED.confirm_time, last_used_step = EXCLUDED.last_used_step`,
		f.UserID, f.SecretSealed, f.CreateTime, nullTime(f.ConfirmTime), f.LastUsedStep)
	// The user's MFAEnabled may change: cached copies are forgotten.
	t.userChanged(f.UserID)
	return err
}

func (t *pgTx) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	_, err := t.tx.Exec(ctx, `UPDATE totp_factors SET last_used_step = $2 WHERE user_id = $1::uuid`, userID, step)
	return err
}

func (t *pgTx) DeleteSecondFactors(ctx context.Context, userID string) error {
	t.userChanged(userID)
	if _, err := t.tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1::uuid`, userID); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `DELETE FROM totp_factors WHERE user_id = $1::uuid`, userID)
	return err
}

func (t *pgTx) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1::uuid`, userID); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, create_time)
		SELECT $1::uuid, h, $3 FROM unnest($2::bytea[]) AS h`, userID, hashes, at)
	return err
}

func (t *pgTx) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE recovery_codes SET use_time = $3
		WHERE user_id = $1::uuid AND code_hash = $2 AND use_time IS NULL`, userID, hash, at)
	return tag.RowsAffected() == 1, err
}

func (t *pgTx) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1::uuid AND use_time IS NULL`, userID).Scan(&n)
	return n, err
}

func (t *pgTx) InsertRememberedDevice(ctx context.Context, d *account.RememberedDevice) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO remembered_devices (token_hash, user_id, create_time, expire_time, user_agent)
		VALUES ($1, $2::uuid, $3, $4, $5)`, d.Hash, d.UserID, d.CreateTime, d.ExpireTime, d.UserAgent)
	return err
}

func (t *pgTx) RememberedDevice(ctx context.Context, hash []byte) (*account.RememberedDevice, error) {
	d := account.RememberedDevice{Hash: hash}
	err := t.tx.QueryRow(ctx, `SELECT user_id::text, create_time, expire_time, user_agent FROM remembered_devices WHERE token_hash = $1`, hash).
		Scan(&d.UserID, &d.CreateTime, &d.ExpireTime, &d.UserAgent)
	if err != nil {
		return nil, notFound(err)
	}
	return &d, nil
}

func (t *pgTx) DeleteRememberedDevices(ctx context.Context, userID string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM remembered_devices WHERE user_id = $1::uuid`, userID)
	return err
}

func (t *pgTx) InsertLoginCode(ctx context.Context, c *account.LoginCode) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO login_codes (token_hash, user_id, email, code_hash, create_time, expire_time)
		VALUES ($1, $2::uuid, $3, $4, $5, $6)`, c.TokenHash, nullString(c.UserID), c.Email, c.CodeHash, c.CreateTime, c.ExpireTime)
	return err
}

func (t *pgTx) LoginCode(ctx context.Context, tokenHash []byte) (*account.LoginCode, error) {
	c := account.LoginCode{TokenHash: tokenHash}
	var used *time.Time
	err := t.tx.QueryRow(ctx, `SELECT COALESCE(user_id::text, ''), email, code_hash, attempts, create_time, expire_time, use_time
		FROM login_codes WHERE token_hash = $1 FOR UPDATE`, tokenHash).
		Scan(&c.UserID, &c.Email, &c.CodeHash, &c.Attempts, &c.CreateTime, &c.ExpireTime, &used)
	if err != nil {
		return nil, notFound(err)
	}
	if used != nil {
		c.UseTime = *used
	}
	return &c, nil
}

func (t *pgTx) UpdateLoginCode(ctx context.Context, c *account.LoginCode) error {
	_, err := t.tx.Exec(ctx, `UPDATE login_codes SET attempts = $2, use_time = $3 WHERE token_hash = $1`, c.TokenHash, c.Attempts, nullTime(c.UseTime))
	return err
}

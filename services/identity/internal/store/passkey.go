package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"tenantry.dev/identity/internal/account"
)

const passkeyColumns = `id::text, user_id::text, credential_id, rp_id, display_name, credential, create_time, last_use_time`

func scanPasskey(row interface{ Scan(...any) error }) (*account.Passkey, error) {
	var (
		p    account.Passkey
		raw  []byte
		used *time.Time
	)
	if err := row.Scan(&p.ID, &p.UserID, &p.CredentialID, &p.RPID, &p.DisplayName, &raw, &p.CreateTime, &used); err != nil {
		return nil, notFound(err)
	}
	if err := json.Unmarshal(raw, &p.Credential); err != nil {
		return nil, fmt.Errorf("decode passkey %s: %w", p.ID, err)
	}
	if used != nil {
		p.LastUseTime = *used
	}
	return &p, nil
}

func (t *pgTx) Passkeys(ctx context.Context, userID string) ([]*account.Passkey, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = $1::uuid ORDER BY create_time, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*account.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (t *pgTx) PasskeyCount(ctx context.Context, userID string) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM passkeys WHERE user_id = $1::uuid`, userID).Scan(&n)
	return n, err
}

func (t *pgTx) InsertPasskey(ctx context.Context, p *account.Passkey) error {
	raw, err := json.Marshal(p.Credential)
	if err != nil {
		return err
	}
	// The user's MFAEnabled may change: cached copies are forgotten.
	t.userChanged(p.UserID)
	_, err = t.tx.Exec(ctx, `INSERT INTO passkeys (id, user_id, credential_id, rp_id, display_name, credential, create_time)
		VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7)`, p.ID, p.UserID, p.CredentialID, p.RPID, p.DisplayName, raw, p.CreateTime)
	if constraint(err) == "passkeys_credential_id_key" {
		return account.ErrPasskeyTaken
	}
	return err
}

func (t *pgTx) RecordPasskeyUse(ctx context.Context, id string, cred webauthn.Credential, at time.Time) error {
	raw, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, `UPDATE passkeys SET credential = $2, last_use_time = $3 WHERE id = $1::uuid`, id, raw, at)
	return err
}

func (t *pgTx) RenamePasskey(ctx context.Context, userID, id, name string) (*account.Passkey, error) {
	return scanPasskey(t.tx.QueryRow(ctx, `UPDATE passkeys SET display_name = $3
		WHERE user_id = $1::uuid AND id = $2::uuid RETURNING `+passkeyColumns, userID, id, name))
}

func (t *pgTx) DeletePasskey(ctx context.Context, userID, id string) error {
	t.userChanged(userID)
	tag, err := t.tx.Exec(ctx, `DELETE FROM passkeys WHERE user_id = $1::uuid AND id = $2::uuid`, userID, id)
	if err == nil && tag.RowsAffected() == 0 {
		return account.ErrNotFound
	}
	return err
}

func (t *pgTx) DeleteUserPasskeys(ctx context.Context, userID string) error {
	t.userChanged(userID)
	_, err := t.tx.Exec(ctx, `DELETE FROM passkeys WHERE user_id = $1::uuid`, userID)
	return err
}

func (t *pgTx) InsertPasskeyCeremony(ctx context.Context, c *account.PasskeyCeremony) error {
	session, err := json.Marshal(c.Session)
	if err != nil {
		return err
	}
	var userID *string
	if c.UserID != "" {
		userID = &c.UserID
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO passkey_ceremonies (token_hash, kind, user_id, mfa_challenge_hash, session, create_time, expire_time)
		VALUES ($1, $2, $3::uuid, $4, $5, $6, $7)`, c.TokenHash, c.Kind, userID, c.MFAChallengeHash, session, c.CreateTime, c.ExpireTime)
	return err
}

func (t *pgTx) UsePasskeyCeremony(ctx context.Context, tokenHash []byte, at time.Time) (*account.PasskeyCeremony, error) {
	c := account.PasskeyCeremony{TokenHash: tokenHash}
	var (
		userID  *string
		session []byte
	)
	// One statement: of two calls with the same token, only one finds it
	// unused.
	err := t.tx.QueryRow(ctx, `UPDATE passkey_ceremonies SET use_time = $2
		WHERE token_hash = $1 AND use_time IS NULL AND expire_time > $2
		RETURNING kind, user_id::text, mfa_challenge_hash, session, create_time, expire_time`, tokenHash, at).
		Scan(&c.Kind, &userID, &c.MFAChallengeHash, &session, &c.CreateTime, &c.ExpireTime)
	if err != nil {
		return nil, notFound(err)
	}
	if userID != nil {
		c.UserID = *userID
	}
	if err := json.Unmarshal(session, &c.Session); err != nil {
		return nil, fmt.Errorf("decode passkey ceremony: %w", err)
	}
	return &c, nil
}

// DeleteEndedPasskeyCeremonies deletes the ceremonies that expired before
// before, used or not.
func (t *pgTx) DeleteEndedPasskeyCeremonies(ctx context.Context, before time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM passkey_ceremonies WHERE expire_time < $1`, before)
	return tag.RowsAffected(), err
}

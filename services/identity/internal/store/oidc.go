package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/identity/internal/account"
)

// The OpenID Provider's rows: authorization requests and consents (see
// migration 0006 and account/oidc.go).

const authRequestColumns = `id::text, client_id, params, binding_hash, COALESCE(user_id::text, ''),
	COALESCE(sso_session_id::text, ''), auth_time, amr, code_use_time IS NOT NULL, COALESCE(grant_id::text, ''),
	create_time, expire_time`

func scanAuthRequest(row pgx.Row) (*account.AuthRequest, error) {
	var (
		r        account.AuthRequest
		params   []byte
		authTime *time.Time
	)
	err := row.Scan(&r.ID, &r.ClientID, &params, &r.BindingHash, &r.UserID, &r.SSOSessionID, &authTime, &r.AMR,
		&r.CodeUsed, &r.GrantID, &r.CreateTime, &r.ExpireTime)
	if err != nil {
		return nil, notFound(err)
	}
	if err := json.Unmarshal(params, &r.Params); err != nil {
		return nil, fmt.Errorf("authorization request %s: parameters: %w", r.ID, err)
	}
	if authTime != nil {
		r.AuthTime = *authTime
	}
	return &r, nil
}

func (t *pgTx) InsertAuthRequest(ctx context.Context, r *account.AuthRequest) error {
	params, err := json.Marshal(r.Params)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO oauth_auth_requests (id, client_id, params, binding_hash, create_time, expire_time)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.ClientID, params, r.BindingHash, r.CreateTime, r.ExpireTime)
	return err
}

func (t *pgTx) AuthRequest(ctx context.Context, id string, forUpdate bool) (*account.AuthRequest, error) {
	if !isUUID(id) {
		return nil, account.ErrNotFound
	}
	return scanAuthRequest(t.tx.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM oauth_auth_requests WHERE id = $1::uuid`+lock(forUpdate), id))
}

func (t *pgTx) CompleteAuthRequest(ctx context.Context, r *account.AuthRequest) error {
	_, err := t.tx.Exec(ctx, `UPDATE oauth_auth_requests SET user_id = $2, sso_session_id = $3, auth_time = $4, amr = $5
		WHERE id = $1::uuid AND code_use_time IS NULL`, r.ID, r.UserID, r.SSOSessionID, r.AuthTime, textArray(r.AMR))
	return err
}

func (t *pgTx) SetAuthCode(ctx context.Context, id string, codeHash []byte) error {
	tag, err := t.tx.Exec(ctx, `UPDATE oauth_auth_requests SET code_hash = $2
		WHERE id = $1::uuid AND user_id IS NOT NULL AND code_use_time IS NULL`, id, codeHash)
	if err == nil && tag.RowsAffected() == 0 {
		return account.ErrNotFound
	}
	return err
}

func (t *pgTx) AuthRequestByCode(ctx context.Context, codeHash []byte) (*account.AuthRequest, error) {
	return scanAuthRequest(t.tx.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM oauth_auth_requests WHERE code_hash = $1 FOR UPDATE`, codeHash))
}

func (t *pgTx) UseAuthCode(ctx context.Context, id, grantID string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE oauth_auth_requests SET code_use_time = $3, grant_id = $2 WHERE id = $1::uuid`, id, grantID, at)
	return err
}

func (t *pgTx) DeleteExpiredAuthRequests(ctx context.Context, before time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM oauth_auth_requests WHERE expire_time < $1`, before)
	return tag.RowsAffected(), err
}

func (t *pgTx) Consent(ctx context.Context, userID, clientID string) ([]string, error) {
	var scopes []string
	err := t.tx.QueryRow(ctx, `SELECT scopes FROM oauth_consents WHERE user_id = $1::uuid AND client_id = $2`, userID, clientID).Scan(&scopes)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	return scopes, err
}

func (t *pgTx) SaveConsent(ctx context.Context, userID, clientID string, scopes []string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO oauth_consents (user_id, client_id, scopes, update_time) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = EXCLUDED.scopes, update_time = EXCLUDED.update_time`,
		userID, clientID, textArray(scopes), at)
	return err
}

func (t *pgTx) RevokeSSOSessions(ctx context.Context, ssoSessionID, reason string, at time.Time) ([]string, error) {
	if !isUUID(ssoSessionID) {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `UPDATE sessions SET revoke_time = $2, revoke_reason = $3
		WHERE (id = $1::uuid OR sso_session_id = $1::uuid) AND revoke_time IS NULL RETURNING id::text`, ssoSessionID, at, reason)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, id := range ids {
		t.sessionChanged(id)
	}
	return ids, err
}

package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/identity/internal/account"
)

const oauthClientColumns = `client_id, display_name, client_type, secret_hash, secret_create_time, redirect_uris,
	post_logout_redirect_uris, grant_types, scopes, first_party, access_token_lifetime_seconds,
	id_token_signed_response_alg, disabled, create_time, update_time, version`

func scanOAuthClient(row pgx.Row) (*account.OAuthClient, error) {
	var (
		c            account.OAuthClient
		typ, alg     string
		grants       []string
		secretTime   *time.Time
		lifetimeSecs *int32
	)
	err := row.Scan(&c.ID, &c.DisplayName, &typ, &c.SecretHash, &secretTime, &c.RedirectURIs,
		&c.PostLogoutRedirectURIs, &grants, &c.Scopes, &c.FirstParty, &lifetimeSecs,
		&alg, &c.Disabled, &c.CreateTime, &c.UpdateTime, &c.Version)
	if err != nil {
		return nil, notFound(err)
	}
	c.Type, c.IDTokenAlg = account.ClientType(typ), account.SigningAlg(alg)
	for _, g := range grants {
		c.GrantTypes = append(c.GrantTypes, account.GrantType(g))
	}
	if secretTime != nil {
		c.SecretCreateTime = *secretTime
	}
	if lifetimeSecs != nil {
		c.AccessTokenLifetime = time.Duration(*lifetimeSecs) * time.Second
	}
	return &c, nil
}

// oauthClientArgs are the values of a client's columns after client_id,
// in oauthClientColumns' order up to disabled.
func oauthClientArgs(c *account.OAuthClient) []any {
	grants := make([]string, len(c.GrantTypes))
	for i, g := range c.GrantTypes {
		grants[i] = string(g)
	}
	var lifetime *int32
	if c.AccessTokenLifetime != 0 {
		secs := int32(c.AccessTokenLifetime / time.Second)
		lifetime = &secs
	}
	return []any{c.DisplayName, string(c.Type), c.SecretHash, nullTime(c.SecretCreateTime), textArray(c.RedirectURIs),
		textArray(c.PostLogoutRedirectURIs), grants, textArray(c.Scopes), c.FirstParty, lifetime,
		string(c.IDTokenAlg), c.Disabled}
}

// textArray makes a nil list an empty array rather than NULL.
func textArray(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (t *pgTx) OAuthClient(ctx context.Context, id string, forUpdate bool) (*account.OAuthClient, error) {
	return scanOAuthClient(t.tx.QueryRow(ctx, `SELECT `+oauthClientColumns+` FROM oauth_clients WHERE client_id = $1`+lock(forUpdate), id))
}

func (t *pgTx) InsertOAuthClient(ctx context.Context, c *account.OAuthClient) error {
	args := append([]any{c.ID}, oauthClientArgs(c)...)
	args = append(args, c.CreateTime, c.UpdateTime)
	_, err := t.tx.Exec(ctx, `INSERT INTO oauth_clients (client_id, display_name, client_type, secret_hash, secret_create_time,
		redirect_uris, post_logout_redirect_uris, grant_types, scopes, first_party, access_token_lifetime_seconds,
		id_token_signed_response_alg, disabled, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, args...)
	if err != nil {
		return err
	}
	c.Version = 1
	return nil
}

func (t *pgTx) UpdateOAuthClient(ctx context.Context, c *account.OAuthClient) error {
	args := append([]any{c.ID}, oauthClientArgs(c)...)
	args = append(args, c.UpdateTime, c.Version)
	tag, err := t.tx.Exec(ctx, `UPDATE oauth_clients SET display_name = $2, client_type = $3, secret_hash = $4, secret_create_time = $5,
		redirect_uris = $6, post_logout_redirect_uris = $7, grant_types = $8, scopes = $9, first_party = $10,
		access_token_lifetime_seconds = $11, id_token_signed_response_alg = $12, disabled = $13, update_time = $14,
		version = version + 1
		WHERE client_id = $1 AND version = $15`, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return account.ErrVersionMismatch
	}
	c.Version++
	return nil
}

func (t *pgTx) DeleteOAuthClient(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM oauth_clients WHERE client_id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		return account.ErrNotFound
	}
	return err
}

func (t *pgTx) ListOAuthClients(ctx context.Context, q account.OAuthClientQuery, limit int) ([]*account.OAuthClient, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if q.AfterID == "" {
		rows, err = t.tx.Query(ctx, `SELECT `+oauthClientColumns+` FROM oauth_clients ORDER BY create_time, client_id LIMIT $1`, limit)
	} else {
		rows, err = t.tx.Query(ctx, `SELECT `+oauthClientColumns+` FROM oauth_clients
			WHERE (create_time, client_id) > ($1, $2) ORDER BY create_time, client_id LIMIT $3`, q.AfterCreateTime, q.AfterID, limit)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*account.OAuthClient
	for rows.Next() {
		c, err := scanOAuthClient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

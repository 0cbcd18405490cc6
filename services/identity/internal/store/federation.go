package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/identity/internal/account"
)

const identityProviderColumns = `provider_id, display_name, kind, issuer, client_id, client_secret, scopes,
	allow_signup, disabled, create_time, update_time, version`

func scanIdentityProvider(row pgx.Row) (*account.IdentityProvider, error) {
	var (
		p    account.IdentityProvider
		kind string
	)
	err := row.Scan(&p.ID, &p.DisplayName, &kind, &p.Issuer, &p.ClientID, &p.SealedSecret, &p.Scopes,
		&p.AllowSignup, &p.Disabled, &p.CreateTime, &p.UpdateTime, &p.Version)
	if err != nil {
		return nil, notFound(err)
	}
	p.Kind = account.ProviderKind(kind)
	return &p, nil
}

func (t *pgTx) IdentityProvider(ctx context.Context, id string, forUpdate bool) (*account.IdentityProvider, error) {
	return scanIdentityProvider(t.tx.QueryRow(ctx,
		`SELECT `+identityProviderColumns+` FROM identity_providers WHERE provider_id = $1`+lock(forUpdate), id))
}

func (t *pgTx) IdentityProviders(ctx context.Context) ([]*account.IdentityProvider, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+identityProviderColumns+` FROM identity_providers ORDER BY provider_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*account.IdentityProvider, error) {
		return scanIdentityProvider(row)
	})
}

func (t *pgTx) InsertIdentityProvider(ctx context.Context, p *account.IdentityProvider) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO identity_providers (provider_id, display_name, kind, issuer, client_id,
		client_secret, scopes, allow_signup, disabled, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (provider_id) DO NOTHING`,
		p.ID, p.DisplayName, string(p.Kind), p.Issuer, p.ClientID, p.SealedSecret, textArray(p.Scopes),
		p.AllowSignup, p.Disabled, p.CreateTime, p.UpdateTime)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return account.ErrAlreadyExists
	}
	p.Version = 1
	t.configChanged()
	return nil
}

func (t *pgTx) UpdateIdentityProvider(ctx context.Context, p *account.IdentityProvider) error {
	tag, err := t.tx.Exec(ctx, `UPDATE identity_providers SET display_name = $2, issuer = $3, client_id = $4,
		client_secret = $5, scopes = $6, allow_signup = $7, disabled = $8, update_time = $9, version = version + 1
		WHERE provider_id = $1 AND version = $10`,
		p.ID, p.DisplayName, p.Issuer, p.ClientID, p.SealedSecret, textArray(p.Scopes), p.AllowSignup, p.Disabled,
		p.UpdateTime, p.Version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return account.ErrVersionMismatch
	}
	p.Version++
	t.configChanged()
	return nil
}

func (t *pgTx) DeleteIdentityProvider(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM identity_providers WHERE provider_id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return account.ErrNotFound
	}
	t.configChanged()
	return nil
}

const linkedIdentityColumns = `provider_id, subject, user_id::text, email, create_time, last_login_time`

func scanLinkedIdentity(row pgx.Row) (*account.LinkedIdentity, error) {
	var (
		l         account.LinkedIdentity
		lastLogin *time.Time
	)
	if err := row.Scan(&l.ProviderID, &l.Subject, &l.UserID, &l.Email, &l.CreateTime, &lastLogin); err != nil {
		return nil, notFound(err)
	}
	if lastLogin != nil {
		l.LastLoginTime = *lastLogin
	}
	return &l, nil
}

func (t *pgTx) LinkedIdentity(ctx context.Context, providerID, subject string) (*account.LinkedIdentity, error) {
	return scanLinkedIdentity(t.tx.QueryRow(ctx,
		`SELECT `+linkedIdentityColumns+` FROM linked_identities WHERE provider_id = $1 AND subject = $2`, providerID, subject))
}

func (t *pgTx) LinkedIdentitiesOf(ctx context.Context, userID string) ([]*account.LinkedIdentity, error) {
	if !isUUID(userID) {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT `+linkedIdentityColumns+` FROM linked_identities
		WHERE user_id = $1::uuid ORDER BY create_time, provider_id`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*account.LinkedIdentity, error) {
		return scanLinkedIdentity(row)
	})
}

// InsertLinkedIdentity reports either unique key's conflict (the subject
// linked already; the user has an identity of the provider) as
// ErrAlreadyExists without aborting the transaction.
func (t *pgTx) InsertLinkedIdentity(ctx context.Context, l *account.LinkedIdentity) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO linked_identities (provider_id, subject, user_id, email, create_time)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		l.ProviderID, l.Subject, l.UserID, l.Email, l.CreateTime)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return account.ErrAlreadyExists
	}
	return nil
}

func (t *pgTx) TouchLinkedIdentity(ctx context.Context, providerID, subject, email string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE linked_identities SET last_login_time = $3, email = $4
		WHERE provider_id = $1 AND subject = $2`, providerID, subject, at, email)
	return err
}

func (t *pgTx) DeleteLinkedIdentity(ctx context.Context, userID, providerID string) error {
	if !isUUID(userID) {
		return account.ErrNotFound
	}
	tag, err := t.tx.Exec(ctx, `DELETE FROM linked_identities WHERE user_id = $1::uuid AND provider_id = $2`, userID, providerID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return account.ErrNotFound
	}
	return nil
}

func (t *pgTx) DeleteLinkedIdentitiesOf(ctx context.Context, providerID string) ([]string, error) {
	rows, err := t.tx.Query(ctx, `DELETE FROM linked_identities WHERE provider_id = $1 RETURNING user_id::text`, providerID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"tenantry.dev/identity/internal/account"
)

// AccountEventsChannel is the notification channel on which a committed
// account event is announced; the payload is the tenant's schema. Watchers
// and the webhook worker listen to it (pglisten) and read the new events
// from the schema.
const AccountEventsChannel = "tenantry_identity_account_events"

// pendingEvent is an account event recorded in a transaction, written when
// the transaction's work is done (flushAccountEvents).
type pendingEvent struct {
	typ    account.AccountEventType
	userID string
	cause  string
}

// RecordAccountEvent implements account.AccountEventTx. The event is only
// noted here and written by flushAccountEvents once the transaction's
// function returns, just before the commit, for two reasons: its data is
// the user as the whole transaction left it (an audit event is often
// recorded before the row it describes is updated), and the tenant's
// revision row is locked for the commit only, not for the transaction's
// whole work, since every event of the tenant waits for that lock.
func (t *pgTx) RecordAccountEvent(_ context.Context, typ account.AccountEventType, userID, cause string) error {
	if !isUUID(userID) {
		return fmt.Errorf("account event %s: user id %q is not a uuid", typ, userID)
	}
	t.events = append(t.events, pendingEvent{typ: typ, userID: userID, cause: cause})
	return nil
}

// recordEventSQL, one statement and one round trip per event, takes the
// tenant's next revision (locking its row until the commit, which orders
// revisions by commit), inserts the event with the user as the
// transaction left them (nothing secret: no password hash; only the id
// once deleted), queues it for every enabled webhook endpoint whose filter
// takes it, and announces the schema on AccountEventsChannel (delivered at
// commit; PostgreSQL sends a transaction's identical notifications once).
// $1 type, $2 user id, $3 the audit event behind it (empty for none), $4 the
// channel.
const recordEventSQL = `
WITH rev AS (
	UPDATE account_event_revision SET revision = revision + 1 RETURNING revision
), usr AS (
	SELECT jsonb_build_object('email', email, 'email_verified', email_verified,
		'username', COALESCE(username, ''), 'display_name', display_name, 'roles', roles,
		'state', state, 'disabled', disabled) AS data
	FROM users WHERE id = $2::uuid
), ev AS (
	INSERT INTO account_events (revision, type, user_id, data)
	SELECT rev.revision, $1, $2::uuid,
	       jsonb_build_object('user_id', $2::text)
	       || CASE WHEN $3 = '' THEN '{}'::jsonb ELSE jsonb_build_object('audit_event', $3::text) END
	       || COALESCE((SELECT data FROM usr), '{}'::jsonb)
	FROM rev
	RETURNING revision
), queued AS (
	INSERT INTO webhook_deliveries (endpoint_id, revision, user_id)
	SELECT e.id, ev.revision, $2::uuid FROM webhook_endpoints e, ev
	WHERE e.enabled AND (e.event_types = '{}' OR $1 = ANY (e.event_types))
)
SELECT pg_notify($4, current_schema())`

// flushAccountEvents writes the events the transaction recorded.
func (t *pgTx) flushAccountEvents(ctx context.Context) error {
	for _, e := range t.events {
		if _, err := t.tx.Exec(ctx, recordEventSQL, string(e.typ), e.userID, e.cause, AccountEventsChannel); err != nil {
			return fmt.Errorf("record account event %s: %w", e.typ, err)
		}
	}
	return nil
}

// AccountEvents implements account.AccountEventTx.
func (t *pgTx) AccountEvents(ctx context.Context, after int64, limit int) ([]account.AccountEvent, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT revision, type, user_id::text, create_time, data FROM account_events
		WHERE revision > $1 ORDER BY revision LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.AccountEvent, error) {
		var (
			e   account.AccountEvent
			typ string
		)
		err := r.Scan(&e.Revision, &typ, &e.UserID, &e.CreateTime, &e.Data)
		e.Type = account.AccountEventType(typ)
		return e, err
	})
}

// AccountEventBounds implements account.AccountEventTx.
func (t *pgTx) AccountEventBounds(ctx context.Context) (oldest, last int64, err error) {
	err = t.tx.QueryRow(ctx, `
		SELECT COALESCE((SELECT min(revision) FROM account_events), 0), revision FROM account_event_revision`).Scan(&oldest, &last)
	return oldest, last, err
}

// AuditEvents implements account.AccountEventTx.
func (t *pgTx) AuditEvents(ctx context.Context, q account.AuditQuery, limit int) ([]account.AuditRecord, error) {
	var userID *string
	if q.UserID != "" {
		if !isUUID(q.UserID) {
			return nil, nil
		}
		userID = &q.UserID
	}
	rows, err := t.tx.Query(ctx, `
		SELECT id, time, event, COALESCE(user_id::text, ''), actor, client_ip, details FROM audit_log
		WHERE ($1 = 0 OR id < $1)
		  AND ($2::uuid IS NULL OR user_id = $2::uuid)
		  AND ($3 = '' OR event = $3)
		  AND ($4::timestamptz IS NULL OR time >= $4)
		  AND ($5::timestamptz IS NULL OR time < $5)
		ORDER BY id DESC LIMIT $6`,
		q.BeforeID, userID, q.Event, nullTime(q.From), nullTime(q.To), limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.AuditRecord, error) {
		var a account.AuditRecord
		err := r.Scan(&a.ID, &a.Time, &a.Event, &a.UserID, &a.Actor, &a.ClientIP, &a.Details)
		return a, err
	})
}

const webhookEndpointColumns = `id::text, url, event_types, enabled, secret_sealed, create_time, update_time,
	last_failure_time, last_failure`

func scanWebhookEndpoint(r pgx.Row) (*account.WebhookEndpoint, error) {
	var (
		e      account.WebhookEndpoint
		types  []string
		failed *time.Time
	)
	err := r.Scan(&e.ID, &e.URL, &types, &e.Enabled, &e.SecretSealed, &e.CreateTime, &e.UpdateTime, &failed, &e.LastFailure)
	if err != nil {
		return nil, notFound(err)
	}
	for _, typ := range types {
		e.EventTypes = append(e.EventTypes, account.AccountEventType(typ))
	}
	if failed != nil {
		e.LastFailureTime = *failed
	}
	return &e, nil
}

func eventTypeStrings(types []account.AccountEventType) []string {
	out := make([]string, 0, len(types))
	for _, t := range types {
		out = append(out, string(t))
	}
	return out
}

// InsertWebhookEndpoint implements account.WebhookTx.
func (t *pgTx) InsertWebhookEndpoint(ctx context.Context, e *account.WebhookEndpoint) error {
	_, err := t.tx.Exec(ctx, `
		INSERT INTO webhook_endpoints (id, url, event_types, enabled, secret_sealed, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ID, e.URL, eventTypeStrings(e.EventTypes), e.Enabled, e.SecretSealed, e.CreateTime, e.UpdateTime)
	return err
}

// WebhookEndpoint implements account.WebhookTx.
func (t *pgTx) WebhookEndpoint(ctx context.Context, id string, forUpdate bool) (*account.WebhookEndpoint, error) {
	if !isUUID(id) {
		return nil, account.ErrNotFound
	}
	return scanWebhookEndpoint(t.tx.QueryRow(ctx, `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints WHERE id = $1::uuid`+lock(forUpdate), id))
}

// WebhookEndpoints implements account.WebhookTx.
func (t *pgTx) WebhookEndpoints(ctx context.Context) ([]*account.WebhookEndpoint, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+webhookEndpointColumns+` FROM webhook_endpoints ORDER BY create_time, id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*account.WebhookEndpoint, error) {
		return scanWebhookEndpoint(r)
	})
}

// UpdateWebhookEndpoint implements account.WebhookTx.
func (t *pgTx) UpdateWebhookEndpoint(ctx context.Context, e *account.WebhookEndpoint) error {
	tag, err := t.tx.Exec(ctx, `
		UPDATE webhook_endpoints SET url = $2, event_types = $3, enabled = $4, secret_sealed = $5, update_time = $6
		WHERE id = $1::uuid`, e.ID, e.URL, eventTypeStrings(e.EventTypes), e.Enabled, e.SecretSealed, e.UpdateTime)
	if err == nil && tag.RowsAffected() == 0 {
		return account.ErrNotFound
	}
	return err
}

// DeleteWebhookEndpoint implements account.WebhookTx.
func (t *pgTx) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1::uuid`, id)
	return err
}

// WebhookDeliveries implements account.WebhookTx.
func (t *pgTx) WebhookDeliveries(ctx context.Context, endpointID string, before int64, limit int) ([]account.WebhookDelivery, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT d.endpoint_id::text, d.revision, e.type, d.user_id::text, d.state, d.attempts, d.last_error,
		       d.next_attempt_time, d.delivered_time
		FROM webhook_deliveries d JOIN account_events e USING (revision)
		WHERE d.endpoint_id = $1::uuid AND ($2 = 0 OR d.revision < $2)
		ORDER BY d.revision DESC LIMIT $3`, endpointID, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.WebhookDelivery, error) {
		var (
			d         account.WebhookDelivery
			typ       string
			delivered *time.Time
		)
		err := r.Scan(&d.EndpointID, &d.Revision, &typ, &d.UserID, &d.State, &d.Attempts, &d.LastError, &d.NextAttemptTime, &delivered)
		d.EventType = account.AccountEventType(typ)
		if delivered != nil {
			d.DeliveredTime = *delivered
		}
		return d, err
	})
}

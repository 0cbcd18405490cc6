package mail

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// setupSQL creates the outbox. The partial index holds only unsent rows, so
// the worker's poll stays cheap however many sent rows accumulate, and rows
// the worker gave up on (next_attempt_time 'infinity') sort past every due
// row. The unique constraint treats NULL keys as distinct, so mails without
// a DedupeKey never conflict.
const setupSQL = `
CREATE SCHEMA IF NOT EXISTS tenantry_identity;
CREATE TABLE IF NOT EXISTS tenantry_identity.outbox (
	id                uuid        PRIMARY KEY,
	tenant            text        NOT NULL,
	kind              text        NOT NULL,
	recipient         text        NOT NULL,
	subject           text        NOT NULL,
	text_body         text        NOT NULL,
	html_body         text,
	create_time       timestamptz NOT NULL DEFAULT now(),
	attempts          integer     NOT NULL DEFAULT 0,
	next_attempt_time timestamptz NOT NULL DEFAULT now(),
	last_error        text,
	sent_time         timestamptz,
	dedupe_key        text,
	CONSTRAINT outbox_tenant_dedupe_key_key UNIQUE (tenant, dedupe_key)
);
CREATE INDEX IF NOT EXISTS outbox_due_idx
	ON tenantry_identity.outbox (next_attempt_time) WHERE sent_time IS NULL;
`

// Setup creates the tenantry_identity schema and its outbox table in the
// database behind pool if they are missing. Run it at start-up for every
// database that holds tenant schemas. It is idempotent and safe to run from
// several processes at once: an advisory lock serialises the DDL, because
// concurrent CREATE ... IF NOT EXISTS can still fail on a catalog
// unique-index race.
func Setup(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tenantry_identity.outbox setup'))"); err != nil {
			return fmt.Errorf("take setup lock: %w", err)
		}
		if _, err := tx.Exec(ctx, setupSQL); err != nil {
			return fmt.Errorf("create tenantry_identity.outbox: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mail: set up outbox: %w", err)
	}
	return nil
}

// enqueueSQL is schema-qualified because tx usually belongs to
// tenantdb.InTenant, whose search_path is the tenant's schema only.
const enqueueSQL = `
INSERT INTO tenantry_identity.outbox
	(id, tenant, kind, recipient, subject, text_body, html_body, dedupe_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant, dedupe_key) DO NOTHING`

// Enqueue writes m to the outbox in tx, the transaction of the change that
// causes the mail, so the mail is sent if and only if tx commits. It fills in
// m.ID when empty. A message whose DedupeKey the tenant has already used is
// dropped without error. An invalid message is refused with
// ErrInvalidMessage before anything is sent to the database, so tx stays
// usable.
//
// Enqueue does not wake a Worker: call Worker.Wake after tx commits for
// prompt delivery, or the mail waits for the next poll.
func Enqueue(ctx context.Context, tx pgx.Tx, m Message) error {
	if m.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("mail: enqueue %s mail: new id: %w", m.Kind, err)
		}
		m.ID = id.String()
	}
	m, _, err := validate(m)
	if err != nil {
		return fmt.Errorf("mail: enqueue %s mail: %w", m.Kind, err)
	}
	if _, err := tx.Exec(ctx, enqueueSQL,
		m.ID, m.Tenant, m.Kind, m.To, m.Subject, m.Text, nullIfEmpty(m.HTML), nullIfEmpty(m.DedupeKey),
	); err != nil {
		return fmt.Errorf("mail: enqueue %s mail %s: %w", m.Kind, m.ID, err)
	}
	return nil
}

// nullIfEmpty maps "" to SQL NULL: an absent HTML body or dedupe key.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Backlog is the mail of one outbox still waiting to be sent: due now, or
// waiting to be retried. Mail the worker gave up on is not in it.
type Backlog struct {
	// Waiting is how many mails wait.
	Waiting int64
	// OldestAge is how long the oldest of them has waited (zero when
	// none does), by the database's clock.
	OldestAge time.Duration
}

// backlogSQL reads the unsent rows through the partial due index: the
// abandoned ones ('infinity') sort last and are left out.
const backlogSQL = `
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(create_time)), 0)::float8
FROM tenantry_identity.outbox
WHERE sent_time IS NULL AND next_attempt_time < 'infinity'`

// ReadBacklog returns the backlog of the outbox behind pool, for metrics.
func ReadBacklog(ctx context.Context, pool *pgxpool.Pool) (Backlog, error) {
	var (
		b       Backlog
		seconds float64
	)
	if err := pool.QueryRow(ctx, backlogSQL).Scan(&b.Waiting, &seconds); err != nil {
		return Backlog{}, fmt.Errorf("mail: read the outbox backlog: %w", err)
	}
	b.OldestAge = time.Duration(max(seconds, 0) * float64(time.Second))
	return b, nil
}

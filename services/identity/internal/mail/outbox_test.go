package mail_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"tenantry.dev/identity/internal/smtptest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

func TestSetup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	pool := openPool(t, url)

	t.Run("concurrent calls all succeed", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = mail.Setup(ctx, pool) })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
	})
	t.Run("a second run changes nothing", func(t *testing.T) {
		enqueue(t, pool, newMessage("acme"))
		require.NoError(t, mail.Setup(ctx, pool))
		require.Equal(t, 1, countRows(t, pool))
	})
}

func TestEnqueueIsPartOfTheCallersTransaction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{})

	errRolledBack := errors.New("the change failed")
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		require.NoError(t, mail.Enqueue(ctx, tx, newMessage("acme")))
		return errRolledBack
	})
	require.ErrorIs(t, err, errRolledBack)
	require.Zero(t, countRows(t, pool), "a rolled-back transaction leaves no mail")
	require.Zero(t, drain(t, w))
	require.Empty(t, srv.Messages())

	enqueue(t, pool, newMessage("acme"))
	require.Equal(t, 1, drain(t, w))
	require.Len(t, srv.Messages(), 1)
}

func TestEnqueueInsideATenantSchemaWritesTheSharedOutbox(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, pool := newOutbox(t)
	// A tenant table named like the outbox: an unqualified INSERT would hit
	// it (and fail, having other columns) under the tenant's search_path.
	_, err := pool.Exec(ctx, `CREATE SCHEMA acme; CREATE TABLE acme.outbox (note text)`)
	require.NoError(t, err)

	m := newMessage("acme")
	require.NoError(t, tenantdb.InTenant(ctx, pool, "acme", func(ctx context.Context, tx pgx.Tx) error {
		return mail.Enqueue(ctx, tx, m)
	}))
	require.Equal(t, 1, countRows(t, pool))
	require.False(t, readRow(t, pool, m.ID).Sent)
	var tenantRows int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM acme.outbox").Scan(&tenantRows))
	require.Zero(t, tenantRows)
}

func TestEnqueueFillsInAMissingID(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)
	m := newMessage("acme")
	m.ID = ""
	enqueue(t, pool, m, m)
	require.Equal(t, 2, countRows(t, pool), "each enqueue without an id is a new mail")
}

func TestDedupeKeyMakesASecondEnqueueOfOneEventANoOp(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})

	first := newMessage("acme")
	first.DedupeKey = "verify-email:token-1"
	again := newMessage("acme") // a retried request: new id, same event
	again.DedupeKey = first.DedupeKey
	otherTenant := newMessage("globex") // another tenant may use the same key
	otherTenant.DedupeKey = first.DedupeKey

	enqueue(t, pool, first, again) // twice in one transaction
	enqueue(t, pool, again)        // and again in a later one
	enqueue(t, pool, otherTenant)  // not suppressed by acme's key
	require.Equal(t, 2, countRows(t, pool))

	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{})
	require.Equal(t, 2, drain(t, w))
	enqueue(t, pool, again) // after delivery too
	require.Zero(t, drain(t, w))
	require.Len(t, srv.Messages(), 2)
	require.True(t, readRow(t, pool, first.ID).Sent)
	require.True(t, readRow(t, pool, otherTenant.ID).Sent)
}

func TestEnqueueRefusesInvalidMessages(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)

	tests := []struct {
		name   string
		change func(m *mail.Message)
	}{
		{"a recipient with CRLF and a Bcc header", func(m *mail.Message) { m.To = "victim@example.com\r\nBcc: attacker@example.com" }},
		{"a recipient with a bare LF", func(m *mail.Message) { m.To = "victim@example.com\nBcc: attacker@example.com" }},
		{"a recipient with a bare CR", func(m *mail.Message) { m.To = "victim@example.com\rBcc: attacker@example.com" }},
		{"a display name hiding CRLF in quotes", func(m *mail.Message) { m.To = "\"Eve\r\nBcc: attacker@example.com\" <eve@example.com>" }},
		{"a subject with CRLF and a Bcc header", func(m *mail.Message) { m.Subject = "Hello\r\nBcc: attacker@example.com" }},
		{"a subject with a bare LF", func(m *mail.Message) { m.Subject = "Hello\nBcc: attacker@example.com" }},
		{"a subject with a NEL", func(m *mail.Message) { m.Subject = "Hello\u0085Bcc: attacker@example.com" }},
		{"a subject with a Unicode line separator", func(m *mail.Message) { m.Subject = "Hello\u2028Bcc: attacker@example.com" }},
		{"a subject with a NUL", func(m *mail.Message) { m.Subject = "Hello\x00" }},
		{"two recipients", func(m *mail.Message) { m.To = "alice@example.com, attacker@example.com" }},
		{"a recipient that is not an address", func(m *mail.Message) { m.To = "alice" }},
		{"a non-ASCII address", func(m *mail.Message) { m.To = "zoë@example.com" }},
		{"no recipient", func(m *mail.Message) { m.To = "" }},
		{"no subject", func(m *mail.Message) { m.Subject = "" }},
		{"no text body", func(m *mail.Message) { m.Text = "" }},
		{"a body with a NUL", func(m *mail.Message) { m.Text = "a\x00b" }},
		{"a body that is not UTF-8", func(m *mail.Message) { m.Text = "\xff" }},
		{"an id that is not a UUID", func(m *mail.Message) { m.ID = "1; DROP TABLE x" }},
		{"no tenant", func(m *mail.Message) { m.Tenant = "" }},
		{"no kind", func(m *mail.Message) { m.Kind = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			m := newMessage("acme")
			tt.change(&m)
			valid := newMessage("acme")
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				err := mail.Enqueue(ctx, tx, m)
				require.ErrorIs(t, err, mail.ErrInvalidMessage)
				// Refused before reaching the database: tx is still usable.
				return mail.Enqueue(ctx, tx, valid)
			})
			require.NoError(t, err)
			require.False(t, readRow(t, pool, valid.ID).Sent)
		})
	}
}

func TestEnqueueAcceptsDisplayNamesAndUnicodeText(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)
	m := newMessage("acme")
	m.To = `"Zoë O'Brien, Jr." <zoe@example.com>`
	m.Subject = "Willkommen bei Ünïcødé ✓"
	m.Text = "Grüße 👋"
	m.HTML = "<p>Grüße 👋</p>"
	m.ID = uuid.NewString()
	enqueue(t, pool, m)
	require.Equal(t, 1, countRows(t, pool))
}

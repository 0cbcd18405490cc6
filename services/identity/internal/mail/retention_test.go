package mail_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/identity/internal/smtptest"
)

// body reads a mail's stored bodies.
func body(t *testing.T, pool *pgxpool.Pool, id string) (text string, html *string) {
	t.Helper()
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT text_body, html_body FROM tenantry_identity.outbox WHERE id = $1`, id).Scan(&text, &html))
	return text, html
}

// A mail's links carry single-use tokens, stored only hashed elsewhere: the
// outbox keeps a body until the mail is sent or abandoned, and no longer.
func TestTheBodyIsKeptOnlyUntilTheMailIsSentOrAbandoned(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	_, pool := newOutbox(t)
	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{MaxAttempts: 5, Backoff: noBackoff})

	waiting := newMessage("acme")
	waiting.HTML = "<p>secret link</p>"
	enqueue(t, pool, waiting)
	srv.Reject(451, 0) // try again later
	require.Zero(t, drain(t, w))
	text, html := body(t, pool, waiting.ID)
	require.Equal(t, waiting.Text, text, "a mail still to be sent lost its body")
	require.NotNil(t, html)

	srv.Reject(0, 0)
	require.Equal(t, 1, drain(t, w))
	text, html = body(t, pool, waiting.ID)
	require.Empty(t, text, "a sent mail's body is still stored")
	require.Nil(t, html)
	require.True(t, readRow(t, pool, waiting.ID).Sent, "the row itself stays")

	abandoned := newMessage("acme")
	enqueue(t, pool, abandoned)
	srv.Reject(550, 0) // permanent failure
	require.Zero(t, drain(t, w))
	require.True(t, readRow(t, pool, abandoned.ID).Parked)
	text, _ = body(t, pool, abandoned.ID)
	require.Empty(t, text, "an abandoned mail's body is still stored")
}

func TestPurgeDeletesOnlyFinishedMailPastItsRetention(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	_, pool := newOutbox(t)
	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{Backoff: noBackoff})

	oldSent, newSent, oldAbandoned, oldWaiting := newMessage("acme"), newMessage("acme"), newMessage("acme"), newMessage("acme")
	enqueue(t, pool, oldSent, newSent)
	require.Equal(t, 2, drain(t, w))
	enqueue(t, pool, oldAbandoned)
	srv.Reject(550, 0)
	require.Zero(t, drain(t, w))
	srv.Reject(451, 0)
	enqueue(t, pool, oldWaiting)
	require.Zero(t, drain(t, w))

	age := func(id, column string) {
		_, err := pool.Exec(t.Context(), `UPDATE tenantry_identity.outbox SET `+column+` = now() - interval '40 days' WHERE id = $1`, id)
		require.NoError(t, err)
	}
	age(oldSent.ID, "sent_time")
	age(oldAbandoned.ID, "create_time")
	age(oldWaiting.ID, "create_time")

	n, err := w.Purge(t.Context(), mail.DefaultRetention)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	var left []string
	rows, err := pool.Query(t.Context(), `SELECT id::text FROM tenantry_identity.outbox ORDER BY create_time`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		left = append(left, id)
	}
	require.ElementsMatch(t, []string{newSent.ID, oldWaiting.ID}, left, "a recent or unsent mail was purged, or an old finished one kept")
}

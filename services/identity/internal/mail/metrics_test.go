package mail_test

import (
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/identity/internal/smtptest"
)

// TestTheWorkerReportsAttemptsAndTheBacklog checks what metrics are made
// of: each recorded attempt's result, and the mail still waiting.
func TestTheWorkerReportsAttemptsAndTheBacklog(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	var (
		mu       sync.Mutex
		attempts []mail.Attempt
	)
	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{
		Backoff: func(int) time.Duration { return time.Hour },
		Logger:  discardLogger(),
		OnAttempt: func(a mail.Attempt) {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, a)
		},
	})
	heard := func() []mail.Attempt {
		mu.Lock()
		defer mu.Unlock()
		return append([]mail.Attempt(nil), attempts...)
	}
	backlog := func() mail.Backlog {
		t.Helper()
		b, err := mail.ReadBacklog(ctx, pool)
		require.NoError(t, err)
		return b
	}

	require.Equal(t, mail.Backlog{}, backlog(), "an empty outbox has no backlog")

	first := newMessage("acme")
	enqueue(t, pool, first)
	_, err := pool.Exec(ctx, "UPDATE tenantry_identity.outbox SET create_time = now() - interval '1 hour'")
	require.NoError(t, err)
	b := backlog()
	require.EqualValues(t, 1, b.Waiting)
	require.InDelta(t, time.Hour.Seconds(), b.OldestAge.Seconds(), 60, "the oldest mail has waited an hour")

	srv.Reject(451, 0)
	require.Zero(t, drain(t, w))
	require.Equal(t, []mail.Attempt{mail.AttemptRetry}, heard())
	require.EqualValues(t, 1, backlog().Waiting, "a mail waiting for its retry is in the backlog")

	srv.Reject(550, 0)
	_, err = pool.Exec(ctx, "UPDATE tenantry_identity.outbox SET next_attempt_time = now()")
	require.NoError(t, err)
	require.Zero(t, drain(t, w))
	require.Equal(t, []mail.Attempt{mail.AttemptRetry, mail.AttemptGaveUp}, heard())
	require.Equal(t, mail.Backlog{}, backlog(), "a mail given up on is not waiting")

	srv.Reject(0, 0)
	enqueue(t, pool, newMessage("acme"), newMessage("acme"))
	require.EqualValues(t, 2, backlog().Waiting)
	require.Equal(t, 2, drain(t, w))
	require.Equal(t, []mail.Attempt{mail.AttemptRetry, mail.AttemptGaveUp, mail.AttemptSent, mail.AttemptSent}, heard())
	require.Equal(t, mail.Backlog{}, backlog())
}

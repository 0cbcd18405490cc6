package mail_test

import (
	"bytes"
	"context"
	"errors"
	netmail "net/mail"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/identity/internal/smtptest"
)

// errCrashed is what a crashed process's sender would answer, if it could
// answer at all.
var errCrashed = errors.New("the worker's process crashed")

// crashingSender delivers through next until next has accepted after
// mails, then crashes the worker the way a killed process would: its
// database sessions die at once (so nothing after the SMTP acceptance is
// committed), and it sends nothing more.
type crashingSender struct {
	next  mail.Sender
	after int
	crash func()

	mu      sync.Mutex
	sent    int
	crashed bool
}

func (s *crashingSender) Send(ctx context.Context, m mail.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed {
		return errCrashed
	}
	if err := s.next.Send(ctx, m); err != nil {
		return err
	}
	s.sent++
	if s.sent == s.after {
		s.crash()
		s.crashed = true
	}
	return nil
}

// messageIDs counts the mails the server accepted by Message-ID.
func messageIDs(t *testing.T, srv *smtptest.Server) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, r := range srv.Messages() {
		msg, err := netmail.ReadMessage(bytes.NewReader(r.Data))
		require.NoError(t, err)
		got[msg.Header.Get("Message-ID")]++
	}
	return got
}

func TestACrashResendsAtMostTheMailInFlight(t *testing.T) {
	t.Parallel()
	url, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	const mails = 20
	var msgs []mail.Message
	for range mails {
		msgs = append(msgs, newMessage("acme"))
	}
	enqueue(t, pool, msgs...)

	// The worker that crashes has a pool of its own, named so that its
	// sessions can be found and killed.
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["application_name"] = "crashing-mail-worker"
	crashPool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(crashPool.Close)
	sender := &crashingSender{
		next:  newSender(t, srv.Addr),
		after: mails / 2,
		crash: func() {
			// With a timeout, pg_terminate_backend waits until the session
			// is gone, so the worker cannot commit anything afterwards.
			var killed int
			require.NoError(t, pool.QueryRow(t.Context(), `
				SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000))
				FROM pg_stat_activity WHERE application_name = 'crashing-mail-worker'`).Scan(&killed))
			require.Positive(t, killed)
		},
	}
	crashing := mail.NewWorker([]*pgxpool.Pool{crashPool}, sender,
		mail.WorkerOptions{Batch: mails, Logger: discardLogger()})
	_, err = crashing.Drain(t.Context())
	require.Error(t, err, "the crashed worker could not record its last delivery")
	require.Len(t, srv.Messages(), mails/2, "the crash came after the server accepted half the mails")

	// The restarted process delivers the rest.
	restarted := mail.NewWorker([]*pgxpool.Pool{openPool(t, url)}, newSender(t, srv.Addr),
		mail.WorkerOptions{Batch: mails, Logger: discardLogger()})
	resent := drain(t, restarted)
	require.Zero(t, drain(t, restarted), "the outbox is drained")

	got := messageIDs(t, srv)
	require.Len(t, got, mails, "every mail arrived")
	for _, m := range msgs {
		require.Contains(t, got, "<"+m.ID+"@tenantry>")
	}
	duplicates := len(srv.Messages()) - mails
	require.LessOrEqual(t, duplicates, 1, "a crash resends at most the mail whose acceptance was not yet recorded; %d mails were resent", resent-mails/2)
	t.Logf("%d mails delivered twice; the restarted worker sent %d", duplicates, resent)
}

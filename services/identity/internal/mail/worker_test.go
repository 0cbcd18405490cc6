package mail_test

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"tenantry.dev/identity/internal/smtptest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/platform/pgtest"
)

// crlfToLF undoes the CRLF line endings of the wire format.
func crlfToLF(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

func TestACommittedMailIsDeliveredOnceWithAProperMessage(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})

	link := "https://acme.tenantry.test/verify?token=" + strings.Repeat("0123456789abcdef", 6)
	m := newMessage("acme")
	m.To = "Zoë Example <zoe@example.com>"
	m.Subject = "Bestätigen Sie Ihre E-Mail-Adresse bei Ünïcødé ✓ – ein recht langer Betreff, der gefaltet wird"
	m.Text = "Grüße, Zoë!\n\nBitte bestätigen: " + link + "\n.a line starting with a dot\n=?not-an-encoded-word?=\ntrailing space \n"
	enqueue(t, pool, m)

	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{})
	require.Equal(t, 1, drain(t, w))
	require.Zero(t, drain(t, w), "a sent mail is not sent again")
	row := readRow(t, pool, m.ID)
	require.True(t, row.Sent)
	require.Equal(t, 1, row.Attempts)

	got := srv.Messages()
	require.Len(t, got, 1)
	require.Equal(t, "no-reply@tenantry.test", got[0].From)
	require.Equal(t, []string{"zoe@example.com"}, got[0].To)
	for line := range strings.SplitSeq(string(got[0].Data), "\r\n") {
		require.LessOrEqual(t, len(line), 78, "line %q", line)
	}

	msg, err := netmail.ReadMessage(bytes.NewReader(got[0].Data))
	require.NoError(t, err)
	h := msg.Header
	require.Equal(t, "<"+m.ID+"@tenantry>", h.Get("Message-ID"))
	require.True(t, strings.HasPrefix(h.Get("Subject"), "=?utf-8?q?"), "a non-ASCII subject is RFC 2047 encoded: %q", h.Get("Subject"))
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, m.Subject, subject)
	from, err := h.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, []*netmail.Address{{Name: "Tenantry", Address: "no-reply@tenantry.test"}}, from)
	to, err := h.AddressList("To")
	require.NoError(t, err)
	require.Equal(t, []*netmail.Address{{Name: "Zoë Example", Address: "zoe@example.com"}}, to)
	_, err = h.Date()
	require.NoError(t, err)
	require.Equal(t, "1.0", h.Get("MIME-Version"))
	require.Equal(t, "auto-generated", h.Get("Auto-Submitted"))
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "text/plain", mediaType)
	require.Equal(t, "utf-8", params["charset"])
	require.Equal(t, "quoted-printable", h.Get("Content-Transfer-Encoding"))
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	require.NoError(t, err)
	require.Equal(t, m.Text, crlfToLF(string(body)))
}

func TestAMailWithHTMLIsMultipartAlternative(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	m := newMessage("acme")
	m.Text = "Grüße!\nhttps://acme.tenantry.test/verify?token=abc\n"
	m.HTML = "<p>Grüße! <a href=\"https://acme.tenantry.test/verify?token=abc\">Bestätigen</a></p>\n"
	enqueue(t, pool, m)

	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{})
	require.Equal(t, 1, drain(t, w))
	got := srv.Messages()
	require.Len(t, got, 1)
	msg, err := netmail.ReadMessage(bytes.NewReader(got[0].Data))
	require.NoError(t, err)
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mediaType)

	parts := multipart.NewReader(msg.Body, params["boundary"])
	for _, want := range []struct{ contentType, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		p, err := parts.NextRawPart()
		require.NoError(t, err)
		require.Equal(t, want.contentType, p.Header.Get("Content-Type"))
		require.Equal(t, "quoted-printable", p.Header.Get("Content-Transfer-Encoding"))
		body, err := io.ReadAll(quotedprintable.NewReader(p))
		require.NoError(t, err)
		require.Equal(t, want.body, crlfToLF(string(body)))
	}
	_, err = parts.NextRawPart()
	require.ErrorIs(t, err, io.EOF)
}

func TestMailWaitsInTheOutboxWhileTheServerIsDown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Stop()
	logger, logs := newLogger()
	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{
		Backoff: func(attempt int) time.Duration { return time.Duration(attempt) * time.Hour },
		Logger:  logger,
	})
	m := newMessage("acme")
	enqueue(t, pool, m)

	require.Zero(t, drain(t, w), "a failed delivery is recorded, not returned as an error")
	row := readRow(t, pool, m.ID)
	require.Equal(t, 1, row.Attempts)
	require.False(t, row.Sent)
	require.False(t, row.Parked)
	require.False(t, row.Due, "the retry waits for the backoff")
	require.NotNil(t, row.LastError)
	require.Contains(t, *row.LastError, "connect to SMTP server")
	require.Contains(t, logs.String(), "will retry")

	srv.Restart()
	require.Zero(t, drain(t, w), "not retried before its time")
	require.Empty(t, srv.Messages())

	// The hour passes.
	_, err := pool.Exec(ctx, "UPDATE tenantry_identity.outbox SET next_attempt_time = now()")
	require.NoError(t, err)
	require.Equal(t, 1, drain(t, w))
	require.Zero(t, drain(t, w))
	require.Len(t, srv.Messages(), 1, "delivered exactly once")
	row = readRow(t, pool, m.ID)
	require.True(t, row.Sent)
	require.Equal(t, 2, row.Attempts)
}

func TestTheServersReplyDecidesBetweenRetryingAndGivingUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		rcptCode, dataCode int
		giveUp             bool
	}{
		{"a 4xx to the recipient is retried", 451, 0, false},
		{"a 4xx to the message is retried", 0, 452, false},
		{"a 5xx to the recipient gives up at once", 550, 0, true},
		{"a 5xx to the message gives up at once", 0, 554, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Options{})
			srv.Reject(tt.rcptCode, tt.dataCode)
			logger, logs := newLogger()
			_, pool := newOutbox(t)
			w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{
				MaxAttempts: 5, Backoff: noBackoff, Logger: logger,
			})
			m := newMessage("acme")
			enqueue(t, pool, m)

			require.Zero(t, drain(t, w))
			row := readRow(t, pool, m.ID)
			require.Equal(t, 1, row.Attempts)
			require.False(t, row.Sent)
			require.Equal(t, tt.giveUp, row.Parked)
			require.Contains(t, *row.LastError, "rejected by the test")
			if tt.giveUp {
				require.Contains(t, logs.String(), "level=ERROR")
				require.Contains(t, logs.String(), "permanent failure")
			}

			srv.Reject(0, 0)
			wantSent := 1
			if tt.giveUp {
				wantSent = 0
			}
			require.Equal(t, wantSent, drain(t, w))
			require.Len(t, srv.Messages(), wantSent)
		})
	}
}

func TestMaxAttemptsStopsRetries(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Reject(451, 0)
	logger, logs := newLogger()
	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{
		MaxAttempts: 3, Backoff: noBackoff, Logger: logger,
	})
	m := newMessage("acme")
	enqueue(t, pool, m)

	for attempt := 1; attempt <= 3; attempt++ {
		require.Zero(t, drain(t, w))
		row := readRow(t, pool, m.ID)
		require.Equal(t, attempt, row.Attempts)
		require.Equal(t, attempt == 3, row.Parked, "parked after attempt %d", attempt)
	}
	require.Zero(t, drain(t, w))
	require.Equal(t, 3, srv.RcptCount(), "no attempt after the last one")
	require.Contains(t, logs.String(), "GIVING UP")
	require.Contains(t, logs.String(), "too many failed attempts")
	require.Equal(t, 1, countRows(t, pool), "the mail is kept for inspection")
}

func TestAnInjectedRowInTheOutboxIsNeverSent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	// Written without Enqueue, as a bug or a manual fix might.
	var id string
	require.NoError(t, pool.QueryRow(ctx, `
		INSERT INTO tenantry_identity.outbox (id, tenant, kind, recipient, subject, text_body)
		VALUES (gen_random_uuid(), 'acme', 'verify_email', $1, $2, 'hello')
		RETURNING id::text`,
		"victim@example.com\r\nBcc: attacker@example.com", "Hi\r\nBcc: attacker@example.com",
	).Scan(&id))

	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{Logger: discardLogger()})
	require.Zero(t, drain(t, w))
	require.Zero(t, srv.RcptCount(), "the server never hears of it")
	row := readRow(t, pool, id)
	require.True(t, row.Parked, "an invalid message is a permanent failure")
	require.Contains(t, *row.LastError, mail.ErrInvalidMessage.Error())
}

func TestConcurrentWorkersDeliverEachMailExactlyOnce(t *testing.T) {
	t.Parallel()
	url, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	const mails = 60
	want := map[string]bool{}
	var msgs []mail.Message
	for range mails {
		m := newMessage("acme")
		msgs = append(msgs, m)
		want["<"+m.ID+"@tenantry>"] = true
	}
	enqueue(t, pool, msgs...)

	// Replicas: each worker has its own pool, as separate processes would.
	workers := make([]*mail.Worker, 4)
	for i := range workers {
		workers[i] = mail.NewWorker([]*pgxpool.Pool{openPool(t, url)}, newSender(t, srv.Addr),
			mail.WorkerOptions{Batch: 3, Logger: discardLogger()})
	}
	sent := make([]int, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			n, err := w.Drain(t.Context())
			sent[i] = n
			if err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range sent {
		total += n
	}
	require.Equal(t, mails, total)
	require.Zero(t, drain(t, workers[0]))

	got := map[string]int{}
	for _, r := range srv.Messages() {
		msg, err := netmail.ReadMessage(bytes.NewReader(r.Data))
		require.NoError(t, err)
		got[msg.Header.Get("Message-ID")]++
	}
	require.Len(t, got, mails)
	for id, n := range got {
		require.True(t, want[id], "unexpected mail %s", id)
		require.Equal(t, 1, n, "mail %s delivered %d times", id, n)
	}
}

func TestOneWorkerServesEveryDatabase(t *testing.T) {
	t.Parallel()
	_, first := newOutbox(t)
	_, second := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	enqueue(t, first, newMessage("acme"))
	enqueue(t, second, newMessage("globex"), newMessage("initech"))

	w := mail.NewWorker([]*pgxpool.Pool{first, second}, newSender(t, srv.Addr), mail.WorkerOptions{})
	require.Equal(t, 3, drain(t, w))
	require.Len(t, srv.Messages(), 3)
}

func TestDrainReportsADatabaseWithoutAnOutboxAndServesTheOthers(t *testing.T) {
	t.Parallel()
	broken := openPool(t, pgtest.NewDatabase(t)) // Setup never ran
	_, ok := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	enqueue(t, ok, newMessage("acme"))

	w := mail.NewWorker([]*pgxpool.Pool{broken, ok}, newSender(t, srv.Addr), mail.WorkerOptions{})
	sent, err := w.Drain(t.Context())
	require.Error(t, err)
	require.Contains(t, err.Error(), "tenantry_identity.outbox")
	require.Equal(t, 1, sent)
}

func TestRunDeliversPromptlyOnWakeAndStopsOnCancel(t *testing.T) {
	t.Parallel()
	_, pool := newOutbox(t)
	srv := smtptest.Start(t, smtptest.Options{})
	// An interval longer than the test: only Wake can explain prompt delivery.
	w := mail.NewWorker([]*pgxpool.Pool{pool}, newSender(t, srv.Addr), mail.WorkerOptions{Interval: time.Hour})

	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		w.Run(ctx)
	}()

	for want := 1; want <= 2; want++ {
		enqueue(t, pool, newMessage("acme"))
		w.Wake()
		require.Eventually(t, func() bool { return len(srv.Messages()) == want }, 10*time.Second, 5*time.Millisecond)
	}

	cancel()
	require.Eventually(t, func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}, 10*time.Second, 5*time.Millisecond, "Run returns once its context ends")
}

func TestExponentialBackoff(t *testing.T) {
	t.Parallel()
	backoff := mail.ExponentialBackoff(30*time.Second, time.Hour)
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 30 * time.Second},
		{2, time.Minute},
		{3, 2 * time.Minute},
		{7, 32 * time.Minute},
		{8, time.Hour},
		{1000, time.Hour},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, backoff(tt.attempt), "attempt %d", tt.attempt)
	}
}

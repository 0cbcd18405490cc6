package mail_test

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newOutbox returns the URL of a fresh database whose outbox is set up, and
// a pool on it.
func newOutbox(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool := openPool(t, url)
	require.NoError(t, mail.Setup(t.Context(), pool))
	return url, pool
}

// openPool opens a pool closed when the test ends (before its database is
// dropped, since cleanups run in reverse).
func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// enqueue writes msgs in one committed transaction.
func enqueue(t *testing.T, pool *pgxpool.Pool, msgs ...mail.Message) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, m := range msgs {
			if err := mail.Enqueue(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	}))
}

// newMessage returns a valid message with a fresh id.
func newMessage(tenant string) mail.Message {
	return mail.Message{
		ID:      uuid.NewString(),
		Tenant:  tenant,
		Kind:    "verify_email",
		To:      "alice@example.com",
		Subject: "Verify your email address",
		Text:    "Hello,\n\nconfirm your address: https://" + tenant + ".tenantry.test/verify?token=abc123\n",
	}
}

// newSender returns an SMTPSender for a test server on addr.
func newSender(t *testing.T, addr string) *mail.SMTPSender {
	t.Helper()
	s, err := mail.NewSMTPSender(mail.SMTPConfig{
		Addr:     addr,
		From:     "Tenantry <no-reply@tenantry.test>",
		StartTLS: mail.StartTLSOff,
		Timeout:  10 * time.Second,
		HELO:     "worker.tenantry.test",
	})
	require.NoError(t, err)
	return s
}

// noBackoff retries at the next pass, so each Drain makes one attempt.
func noBackoff(int) time.Duration { return 0 }

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLogger returns a logger writing to a buffer the test can read.
func newLogger() (*slog.Logger, *logBuffer) {
	var b logBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// outboxRow is what tests read back about one mail.
type outboxRow struct {
	Attempts  int
	LastError *string
	Sent      bool
	Parked    bool // next_attempt_time = 'infinity': the worker gave up
	Due       bool // next_attempt_time <= now()
}

// readRow reads the delivery state of mail id.
func readRow(t *testing.T, pool *pgxpool.Pool, id string) outboxRow {
	t.Helper()
	var r outboxRow
	require.NoError(t, pool.QueryRow(t.Context(), `
		SELECT attempts, last_error, sent_time IS NOT NULL,
		       next_attempt_time = 'infinity', next_attempt_time <= now()
		FROM tenantry_identity.outbox WHERE id = $1`, id,
	).Scan(&r.Attempts, &r.LastError, &r.Sent, &r.Parked, &r.Due))
	return r
}

// countRows counts the outbox rows.
func countRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM tenantry_identity.outbox").Scan(&n))
	return n
}

// drain runs one pass and requires it to succeed.
func drain(t *testing.T, w *mail.Worker) int {
	t.Helper()
	n, err := w.Drain(t.Context())
	require.NoError(t, err)
	return n
}

// discardLogger drops logs the test does not look at.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

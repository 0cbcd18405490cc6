package mail_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5/pgxpool"

	"tenantry.dev/identity/internal/mail"
	"tenantry.dev/platform/pgtest"
)

// sinkSession accepts every mail and counts it.
type sinkSession struct{ accepted *atomic.Int64 }

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.accepted.Add(1)
	return nil
}
func (sinkSession) Reset()        {}
func (sinkSession) Logout() error { return nil }

// startSink runs a real SMTP server (go-smtp, as smtptest does) that keeps
// nothing, so that a benchmark measures the worker rather than the test
// server's memory.
func startSink(b *testing.B) (addr string, accepted *atomic.Int64) {
	b.Helper()
	accepted = new(atomic.Int64)
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return sinkSession{accepted: accepted}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	b.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			b.Error(err)
		}
	})
	return ln.Addr().String(), accepted
}

// BenchmarkDrain measures delivery through a real SMTP server and
// PostgreSQL: one op is one mail taken from the outbox, sent and recorded.
// Run it against a cluster with fsync on (withpg -data DIR) to count what
// each commit really costs.
func BenchmarkDrain(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := mail.Setup(ctx, pool); err != nil {
		b.Fatal(err)
	}
	addr, accepted := startSink(b)
	sender, err := mail.NewSMTPSender(mail.SMTPConfig{
		Addr: addr, From: "Tenantry <no-reply@tenantry.test>", StartTLS: mail.StartTLSOff,
		Timeout: 10 * time.Second, HELO: "worker.tenantry.test",
	})
	if err != nil {
		b.Fatal(err)
	}
	w := mail.NewWorker([]*pgxpool.Pool{pool}, sender, mail.WorkerOptions{Logger: discardLogger()})

	msgs := make([]mail.Message, b.N)
	for i := range msgs {
		msgs[i] = newMessage("acme")
	}
	enqueueMany(b, pool, msgs)
	b.ResetTimer()
	sent, err := w.Drain(ctx)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if sent != b.N || accepted.Load() != int64(b.N) {
		b.Fatalf("sent %d and the server accepted %d of %d mails", sent, accepted.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
}

// enqueueMany writes msgs in transactions of up to 1000.
func enqueueMany(b *testing.B, pool *pgxpool.Pool, msgs []mail.Message) {
	b.Helper()
	ctx := context.Background()
	for len(msgs) > 0 {
		n := min(len(msgs), 1000)
		tx, err := pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs[:n] {
			if err := mail.Enqueue(ctx, tx, m); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

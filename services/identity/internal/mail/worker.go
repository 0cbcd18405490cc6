package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for WorkerOptions. With these, a mail is retried for about a day
// (30 s, 1 min, 2 min, ... then hourly) before the worker gives up.
const (
	DefaultInterval    = 10 * time.Second
	DefaultBatch       = 20
	DefaultMaxAttempts = 30
	// DefaultRetention is how long a sent or abandoned mail's row is kept
	// (without its body) before Run deletes it.
	DefaultRetention = 30 * 24 * time.Hour
)

// recordTimeout bounds each statement that records an outcome. Those
// statements run on a context that shutdown does not cancel, so that a mail
// the SMTP server already accepted is marked sent rather than sent again.
const recordTimeout = 15 * time.Second

// maxErrorBytes caps the last_error kept per row.
const maxErrorBytes = 2000

// WorkerOptions tunes a Worker. Zero fields take the defaults.
type WorkerOptions struct {
	// Interval is the time between polls of the outbox; zero means
	// DefaultInterval. Wake delivers sooner.
	Interval time.Duration
	// Batch is how many mails one round of a pass delivers from a database
	// before checking whether the pass should go on; zero means
	// DefaultBatch. Each mail is still claimed and recorded in its own
	// transaction, so Batch does not widen what a crash can resend.
	Batch int
	// MaxAttempts is how many failed attempts a mail gets before the worker
	// gives up on it; zero means DefaultMaxAttempts.
	MaxAttempts int
	// Backoff returns the wait before the next attempt after the given
	// number of failed attempts (1 after the first failure); nil means
	// ExponentialBackoff(30*time.Second, time.Hour).
	Backoff func(attempt int) time.Duration
	// Logger receives failures and give-ups; nil means slog.Default().
	Logger *slog.Logger
	// Retention is how long Run keeps the rows of sent and abandoned mail;
	// zero means DefaultRetention.
	Retention time.Duration
	// OnAttempt hears the result of every delivery attempt once it is
	// recorded in the outbox, for metrics; it must return at once. nil
	// hears nothing.
	OnAttempt func(Attempt)
}

// Attempt is the result of one delivery attempt, for WorkerOptions.OnAttempt.
type Attempt string

// Results of delivery attempts.
const (
	// AttemptSent: the server accepted the mail.
	AttemptSent Attempt = "sent"
	// AttemptRetry: the delivery failed and will be tried again.
	AttemptRetry Attempt = "retry"
	// AttemptGaveUp: the delivery failed for good (a permanent rejection,
	// or the last attempt); the mail stays unsent in the outbox.
	AttemptGaveUp Attempt = "gave_up"
)

// ExponentialBackoff returns a backoff that waits base after the first
// failure and doubles with each further one, up to limit.
func ExponentialBackoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < limit; i++ {
			d *= 2
		}
		return min(d, limit)
	}
}

// Worker delivers mail from the outboxes of a set of databases. Any number
// of workers, in one process or many, may drain the same outboxes: rows are
// claimed with FOR UPDATE SKIP LOCKED, so none is sent by two at once.
type Worker struct {
	pools  []*pgxpool.Pool
	sender Sender
	opts   WorkerOptions
	wake   chan struct{}
}

// NewWorker returns a worker that delivers the mail in the outboxes of pools
// (one per database holding tenant schemas, each already Setup) through
// sender.
func NewWorker(pools []*pgxpool.Pool, sender Sender, opts WorkerOptions) *Worker {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Backoff == nil {
		opts.Backoff = ExponentialBackoff(30*time.Second, time.Hour)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.OnAttempt == nil {
		opts.OnAttempt = func(Attempt) {}
	}
	return &Worker{
		pools:  pools,
		sender: sender,
		opts:   opts,
		wake:   make(chan struct{}, 1),
	}
}

// purgeEvery is how often Run deletes the rows past their retention.
const purgeEvery = time.Hour

// Run drains the outboxes at once, then every Interval and whenever Wake is
// called, until ctx ends. Failures are logged and retried on the next pass.
// Once an hour it also deletes the rows of mail finished (sent or
// abandoned) longer than Retention ago.
func (w *Worker) Run(ctx context.Context) {
	ticker := time.NewTicker(w.opts.Interval)
	defer ticker.Stop()
	var lastPurge time.Time
	for {
		if _, err := w.Drain(ctx); err != nil && ctx.Err() == nil {
			w.opts.Logger.WarnContext(ctx, "mail: outbox pass failed", slog.Any("err", err))
		}
		if time.Since(lastPurge) >= purgeEvery {
			lastPurge = time.Now()
			if n, err := w.Purge(ctx, w.opts.Retention); err != nil && ctx.Err() == nil {
				w.opts.Logger.WarnContext(ctx, "mail: outbox purge failed", slog.Any("err", err))
			} else if n > 0 {
				w.opts.Logger.InfoContext(ctx, "mail: purged finished mail from the outbox", slog.Int64("rows", n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-w.wake:
		}
	}
}

// Wake asks Run for a pass now rather than at the next tick; call it after
// committing a transaction that enqueued mail. It never blocks, and wakes
// made while a pass runs cause one more pass.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Drain makes one pass over every outbox, delivering the mail due now, and
// returns how many mails were sent. Failed deliveries are recorded for retry
// and are not errors; the error reports databases that could not be read or
// written, after the other databases were still served. Once ctx ends no
// further mail is sent, but what was already sent is recorded.
func (w *Worker) Drain(ctx context.Context) (sent int, err error) {
	var errs []error
	for _, pool := range w.pools {
		n, err := w.drainPool(ctx, pool)
		sent += n
		if err != nil {
			cfg := pool.Config().ConnConfig
			errs = append(errs, fmt.Errorf("mail: outbox in database %q on %s: %w", cfg.Database, cfg.Host, err))
		}
	}
	return sent, errors.Join(errs...)
}

// drainPool delivers the due mail of one database, round by round. It
// stops after a round that found fewer than Batch due mails (the outbox is
// drained) or sent none of them: the server is likely down, and the failed
// mails are already scheduled for later.
func (w *Worker) drainPool(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tried, sent, err := w.deliverRound(ctx, pool)
		total += sent
		if err != nil || tried < w.opts.Batch || sent == 0 {
			return total, err
		}
	}
}

// outboxRow is a claimed mail with its delivery history.
type outboxRow struct {
	Message
	attempts int
}

// claimSQL takes the first due mail that no other worker holds, other than
// the ids in $1 (those this round already tried). READ COMMITTED matters:
// if another worker marked a row sent after this statement's snapshot,
// PostgreSQL re-checks the WHERE clause against the committed row when
// locking it and skips it.
const claimSQL = `
SELECT id::text, tenant, kind, recipient, subject, text_body,
       COALESCE(html_body, ''), COALESCE(dedupe_key, ''), attempts
FROM tenantry_identity.outbox
WHERE sent_time IS NULL AND next_attempt_time <= now() AND id <> ALL($1::uuid[])
ORDER BY next_attempt_time
LIMIT 1
FOR UPDATE SKIP LOCKED`

// markSentSQL records a delivery and empties the body: a mail's links carry
// single-use tokens (stored hashed everywhere else), which must not outlive
// their delivery in the database. The row stays, for its deduplication key
// and for inspection, until Purge.
const markSentSQL = `
UPDATE tenantry_identity.outbox
SET sent_time = now(), attempts = attempts + 1, text_body = '', html_body = NULL
WHERE id = $1`

// markFailedSQL schedules a retry after $3 seconds, or with $4 parks the row
// for good ('infinity' is never due, and stays out of the due index range),
// emptying its body as a sent mail's is.
const markFailedSQL = `
UPDATE tenantry_identity.outbox
SET attempts = attempts + 1,
    last_error = $2,
    next_attempt_time = CASE WHEN $4 THEN 'infinity'::timestamptz
                             ELSE now() + make_interval(secs => $3) END,
    text_body = CASE WHEN $4 THEN '' ELSE text_body END,
    html_body = CASE WHEN $4 THEN NULL ELSE html_body END
WHERE id = $1`

// purgeSQL deletes mail sent, or abandoned, more than $1 seconds ago.
// Abandoned rows have no finish time of their own: their creation time is
// used, which is earlier, so they never outstay a sent one.
const purgeSQL = `
DELETE FROM tenantry_identity.outbox
WHERE (sent_time IS NOT NULL AND sent_time < now() - make_interval(secs => $1))
   OR (next_attempt_time = 'infinity' AND create_time < now() - make_interval(secs => $1))`

// Purge deletes, in every outbox, the rows of mail sent or abandoned more
// than retention ago, and returns how many. Mail still to be sent is never
// deleted.
func (w *Worker) Purge(ctx context.Context, retention time.Duration) (int64, error) {
	var (
		total int64
		errs  []error
	)
	for _, pool := range w.pools {
		tag, err := pool.Exec(ctx, purgeSQL, retention.Seconds())
		if err != nil {
			errs = append(errs, fmt.Errorf("mail: purge outbox: %w", err))
			continue
		}
		total += tag.RowsAffected()
	}
	return total, errors.Join(errs...)
}

// deliverRound delivers up to Batch due mails of one database, one after
// another, each with deliverOne, and none twice (a mail that failed without
// backoff stays due, and waits for the next round). It returns how many
// mails it tried and how many of them were sent.
func (w *Worker) deliverRound(ctx context.Context, pool *pgxpool.Pool) (tried, sent int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()
	ids := make([]string, 0, w.opts.Batch)
	for len(ids) < w.opts.Batch && ctx.Err() == nil {
		id, delivered, err := w.deliverOne(ctx, conn.Conn(), ids)
		if err != nil || id == "" {
			return len(ids), sent, err
		}
		ids = append(ids, id)
		if delivered {
			sent++
		}
	}
	return len(ids), sent, nil
}

// deliverOne claims one due mail other than exclude, sends it and records
// the outcome in one transaction, and returns its id ("" when no mail was
// due) and whether it was sent.
//
// One mail per transaction is what keeps at-least-once close to once: the
// only mail a crash (of the process, of the connection, of the database)
// can resend is the one whose SMTP acceptance had not been committed yet.
// With a batch per transaction, as before, one crash resent every mail of
// the batch delivered so far. The price is a commit, a WAL flush, per mail:
// small next to a conversation with a relay across a network, which takes
// several round trips, though BenchmarkDrain, against a local server,
// shows it.
func (w *Worker) deliverOne(ctx context.Context, conn *pgx.Conn, exclude []string) (id string, delivered bool, err error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return "", false, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		// A no-op after Commit; otherwise releases the claimed row untouched.
		rctx, cancel := recordContext(ctx)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()

	var r outboxRow
	err = tx.QueryRow(ctx, claimSQL, exclude).Scan(
		&r.ID, &r.Tenant, &r.Kind, &r.To, &r.Subject, &r.Text, &r.HTML, &r.DedupeKey, &r.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("claim due mail: %w", err)
	}

	sendErr := w.sender.Send(ctx, r.Message)
	if sendErr != nil && ctx.Err() != nil {
		// Interrupted by shutdown: not the mail's fault, no attempt
		// counted; the rollback leaves it due.
		return r.ID, false, nil
	}
	result, err := w.record(ctx, tx, r, sendErr)
	if err != nil {
		return r.ID, false, err
	}
	rctx, cancel := recordContext(ctx)
	defer cancel()
	if err := tx.Commit(rctx); err != nil {
		return r.ID, false, fmt.Errorf("commit: %w", err)
	}
	w.opts.OnAttempt(result)
	return r.ID, sendErr == nil, nil
}

// record writes the outcome of one delivery attempt and logs failures.
func (w *Worker) record(ctx context.Context, tx pgx.Tx, r outboxRow, sendErr error) (Attempt, error) {
	rctx, cancel := recordContext(ctx)
	defer cancel()
	if sendErr == nil {
		if _, err := tx.Exec(rctx, markSentSQL, r.ID); err != nil {
			return "", fmt.Errorf("mark mail %s sent: %w", r.ID, err)
		}
		return AttemptSent, nil
	}

	attempts := r.attempts + 1
	permanent := errors.Is(sendErr, ErrPermanent)
	giveUp := permanent || attempts >= w.opts.MaxAttempts
	retryIn := max(w.opts.Backoff(attempts), 0)
	if _, err := tx.Exec(rctx, markFailedSQL, r.ID, truncateError(sendErr), retryIn.Seconds(), giveUp); err != nil {
		return "", fmt.Errorf("record failed delivery of mail %s: %w", r.ID, err)
	}

	// The recipient is left out of logs; the row has it.
	attrs := []slog.Attr{
		slog.String("id", r.ID),
		slog.String("tenant", r.Tenant),
		slog.String("kind", r.Kind),
		slog.Int("attempts", attempts),
		slog.Any("err", sendErr),
	}
	if giveUp {
		reason := "too many failed attempts"
		if permanent {
			reason = "permanent failure"
		}
		w.opts.Logger.LogAttrs(ctx, slog.LevelError,
			"mail: GIVING UP on delivering a mail; it stays unsent in tenantry_identity.outbox",
			append(attrs, slog.String("reason", reason))...)
		return AttemptGaveUp, nil
	}
	w.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "mail: delivery failed; will retry",
		append(attrs, slog.Duration("retry_in", retryIn))...)
	return AttemptRetry, nil
}

// recordContext returns a context for bookkeeping statements that keeps
// ctx's values but not its cancellation, bounded by recordTimeout.
func recordContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}

// truncateError renders err for the last_error column: valid UTF-8 without
// NUL (PostgreSQL's text refuses both), at most maxErrorBytes.
func truncateError(err error) string {
	s := strings.ToValidUTF8(strings.ReplaceAll(err.Error(), "\x00", ""), "\uFFFD")
	if len(s) <= maxErrorBytes {
		return s
	}
	cut := maxErrorBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

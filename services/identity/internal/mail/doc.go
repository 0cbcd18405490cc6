// Package mail sends the identity service's transactional emails
// (verification, password reset, invitation, sign-up attempts with an
// existing address, email-changed notices) through a transactional outbox.
//
// # Outbox
//
// The change that causes a mail and the mail itself are written in one
// transaction: [Enqueue] inserts into tenantry_identity.outbox using the
// caller's pgx.Tx, so a rolled-back sign-up sends nothing and a committed one
// cannot lose its verification mail. The outbox lives in every database that
// holds tenant schemas, because a tenant's transaction runs in its placement
// database; [Setup] creates it there. Statements always name the table with
// its schema, since callers run inside tenantdb.InTenant, whose search_path
// points at the tenant's schema.
//
// A [Message] may carry a DedupeKey naming the event that caused it (e.g.
// "verify-email:<token id>"). Enqueuing the same key twice for one tenant is
// a no-op, so a retried request cannot mail twice. Keys are unique per tenant
// rather than per database, so one tenant's key can never suppress another
// tenant's mail in a shared placement database.
//
// # Delivery
//
// A [Worker] drains the outbox of each database it is given, one mail per
// transaction: it claims a due row with SELECT ... FOR UPDATE SKIP LOCKED,
// hands it to a [Sender], records the outcome and commits before it takes
// the next. SKIP LOCKED lets any number of replicas run workers without two
// of them sending one row concurrently. A failed send is recorded (attempts,
// last_error) and retried after an exponential backoff, so mail waits out an
// SMTP outage in the outbox. After MaxAttempts failures, or at once for a
// permanent rejection ([ErrPermanent], e.g. 550 no such user), the worker
// gives up: it logs at ERROR and parks the row by setting next_attempt_time
// to 'infinity'. Parked rows are kept for inspection and are found with
//
//	SELECT id, tenant, kind, attempts, last_error FROM tenantry_identity.outbox
//	WHERE sent_time IS NULL AND next_attempt_time = 'infinity';
//
// and re-queued by setting attempts = 0, next_attempt_time = now().
//
// # At least once
//
// Delivery is at-least-once, not exactly-once. If the process dies, or the
// database connection breaks, after the SMTP server accepted a mail but
// before the transaction recording it committed, the row is still unsent and
// is sent again. Since every mail is recorded in its own transaction, that
// is only ever the one mail a worker had in flight, whatever
// WorkerOptions.Batch is: the mails before it are committed as sent, those
// after it were never claimed. (Until the claims went one by one, a crash
// resent every mail of its batch sent so far.) The resent mail is
// byte-for-byte the same apart from its Date header and carries the same
// Message-ID, <id@tenantry> from the outbox row's id, so receiving systems
// that deduplicate on Message-ID drop it and people can see it is the same
// mail. On an orderly shutdown the worker stops claiming mail but still
// records what it already sent.
//
// # Senders
//
// [SMTPSender] speaks SMTP (net/smtp) to a relay, with STARTTLS and PLAIN
// authentication, and builds an RFC 5322 message: quoted-printable UTF-8
// bodies, multipart/alternative when there is an HTML body, RFC 2047 encoded
// subjects. No header line ever carries a CR or LF from message data:
// [Enqueue] refuses such messages and senders check again before sending.
// Subjects also lose any text direction controls (a right-to-left override
// in a tenant's name would make the subject read as something else), which
// rows enqueued before display names were checked for them may hold.
//
// [LogSender] is for development (make run): it writes each mail, including
// its full text body, to the log instead of sending it, which is how a
// developer follows verification and reset links. Those bodies hold
// single-use secrets, so LogSender must never be configured in production.
package mail

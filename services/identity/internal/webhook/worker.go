// Package webhook delivers a tenant's account events to the tenant's
// webhook endpoints, signed as Standard Webhooks say
// (https://www.standardwebhooks.com).
//
// # Outbox
//
// An account event and its deliveries (one row per enabled endpoint whose
// filter takes it) are written in the transaction of the change, in the
// tenant's schema (store.RecordAccountEvent), so an event is delivered if
// and only if its change committed, even when identity dies right after
// the commit. The commit also sends a notification
// (store.AccountEventsChannel) naming the schema, which makes the Worker
// visit that tenant at once. It visits a tenant again when its next retry
// falls due, and each Interval (a minute) as a safety net for
// notifications lost and retries another replica noted before it died.
//
// # The safety net
//
// Most tenants have no webhook endpoint, and a tenant without an enabled
// endpoint never has anything to deliver (deliveries are only queued for
// enabled endpoints). So every visit also learns, in its last transaction
// and in a query it runs anyway, whether the tenant has an enabled
// endpoint or a pending delivery (one to a disabled endpoint resumes when
// the endpoint is enabled again); the safety net visits only the tenants
// that have, and those it knows nothing about yet (new since the last full
// visit, or announced since). Every tenant is visited at start and each
// FullInterval (an hour), in the transaction that purges its old events,
// which learns everything anew. For N tenants of which M have webhooks a
// minute costs M visits instead of N, and an hour N+60M instead of 61N
// (N=10,000, M=100: about 4.4 transactions a second instead of 170).
//
// The price: a tenant known to have none whose first endpoint is created
// on another replica, which dies before delivering, and whose
// notifications all miss this replica, is served at the next full visit,
// within FullInterval. Any announcement of the tenant (every account event
// commits one) has it visited and learned at once, and so does Wake, which
// the replica creating or enabling an endpoint calls.
//
// # Delivery
//
// A delivery is claimed with SELECT ... FOR UPDATE SKIP LOCKED, POSTed,
// and its outcome recorded in the same transaction, one delivery per
// transaction, as the mail worker does: any number of replicas may run
// workers, and a crash resends at most the delivery in flight. Delivery is
// therefore at least once; every attempt of one event carries the same
// webhook-id, on which receivers deduplicate. A failed attempt is retried
// after an exponential backoff with full jitter (replicas and endpoints
// coming back at once do not retry in step), up to MaxAttempts, then the
// delivery is abandoned and the endpoint's last failure says why.
//
// Deliveries are in order per user and endpoint: a delivery is only
// claimed when no earlier pending delivery of the same user to the same
// endpoint exists, so a failing event of one user holds back that user's
// later events and nobody else's.
//
// # Signing
//
// The signature is the Standard Webhooks library's
// (github.com/standard-webhooks/standard-webhooks/libraries/go): HMAC-SHA256
// over "id.timestamp.body" with the endpoint's secret, which is kept sealed
// (sealbox) in the tenant's schema, not hashed, since signing needs it.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/pglisten"
	"tenantry.dev/platform/tenantdb"
)

// Defaults for Options.
const (
	// DefaultInterval is the safety net's: notifications and the noted
	// retry times bring deliveries on time; the visit of the tenants with
	// webhooks finds what another replica left (it died with retries
	// noted).
	DefaultInterval = time.Minute
	// DefaultFullInterval is the full visit's, which also purges old
	// events: a tenant's first endpoint that no notification announced to
	// this replica is served within it.
	DefaultFullInterval = time.Hour
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = time.Hour
	DefaultMaxAttempts  = 40 // about a day and a half at the cap
	DefaultTimeout      = 10 * time.Second
	// DefaultRetention is how long account events are kept for watchers
	// resuming from a revision.
	DefaultRetention = 30 * 24 * time.Hour
)

// Attempt is the result of one delivery attempt, for metrics.
type Attempt string

// Results of delivery attempts.
const (
	AttemptDelivered Attempt = "delivered"
	AttemptRetry     Attempt = "retry"
	AttemptAbandoned Attempt = "abandoned"
)

// Options tune a Worker; zero fields take the defaults.
type Options struct {
	// Interval is the time between the safety net's visits of the
	// tenants that may have webhooks: an enabled endpoint or a pending
	// delivery, as their last visit found, or not known yet.
	Interval time.Duration
	// FullInterval is the time between visits of every tenant, which
	// learn anew which have webhooks and purge events past Retention.
	FullInterval time.Duration
	// Backoff is the wait after a first failure; it doubles with each
	// further one up to MaxBackoff, and the wait is drawn at random below
	// that bound (full jitter).
	Backoff, MaxBackoff time.Duration
	// MaxAttempts is how many attempts a delivery gets.
	MaxAttempts int
	// Timeout bounds one POST.
	Timeout time.Duration
	// Retention is how long account events are kept; an event whose
	// delivery is still pending is kept, with every later one, until it
	// is delivered or abandoned.
	Retention time.Duration
	// Guard refuses connections to private addresses.
	Guard Guard
	// Logger receives failures; nil means slog.Default().
	Logger *slog.Logger
	// OnAttempt hears each recorded attempt; nil hears nothing.
	OnAttempt func(Attempt)
}

// Worker delivers the account events of every tenant to its endpoints.
type Worker struct {
	pools   map[string]*pgxpool.Pool
	tenants func() []tenancy.Tenant
	secrets account.Sealer
	client  *http.Client
	opts    Options

	mu  sync.Mutex
	due map[string]bool // schemas announced since the last visit
	// netDue asks the next visit to be the safety net's (Wake("")).
	netDue bool
	// webhooks is whether each tenant's last visit found an enabled
	// endpoint or a pending delivery. A tenant missing from it may have
	// either: the safety net visits it until a visit tells.
	webhooks map[string]bool
	// retryAt is when each tenant's next pending delivery falls due, as
	// its last visit found: retries are made at their time, not at the
	// next Interval.
	retryAt map[string]time.Time
	wake    chan struct{}
}

// NewWorker returns a worker over the placements' pools, visiting the
// tenants tenants returns (those with a schema identity serves) and
// opening endpoints' secrets with secrets.
func NewWorker(pools map[string]*pgxpool.Pool, tenants func() []tenancy.Tenant, secrets account.Sealer, opts Options) *Worker {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.FullInterval <= 0 {
		opts.FullInterval = DefaultFullInterval
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.OnAttempt == nil {
		opts.OnAttempt = func(Attempt) {}
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: opts.Guard.Control}
	transport := &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 2,
		TLSHandshakeTimeout: opts.Timeout, ResponseHeaderTimeout: opts.Timeout}
	return &Worker{
		pools: pools, tenants: tenants, secrets: secrets, opts: opts,
		// Redirects are not followed: a receiver must not be able to send
		// identity's POST somewhere the URL check never saw.
		client: &http.Client{Transport: transport, Timeout: opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		due:      map[string]bool{},
		webhooks: map[string]bool{},
		retryAt:  map[string]time.Time{},
		wake:     make(chan struct{}, 1),
	}
}

// Backoff returns the wait before the next attempt after attempts failed
// ones: a random duration below min(Backoff·2^(attempts-1), MaxBackoff),
// at least a tenth of that bound.
func (w *Worker) Backoff(attempts int) time.Duration {
	bound := w.opts.Backoff
	for i := 1; i < attempts && bound < w.opts.MaxBackoff; i++ {
		bound *= 2
	}
	bound = min(bound, w.opts.MaxBackoff)
	return bound/10 + rand.N(bound-bound/10+1)
}

// pass is which tenants a visit takes besides those announced or whose
// retry is due.
type pass int

const (
	duePass  pass = iota // no others
	netPass              // the safety net: those that may have webhooks
	fullPass             // every tenant, learning anew and purging
)

// Run delivers until ctx ends: it listens for committed events on every
// placement, visits announced tenants at once, those that may have
// webhooks each Interval (retries and anything a lost notification left
// behind) and every tenant at start and each FullInterval.
func (w *Worker) Run(ctx context.Context) {
	for _, pool := range w.pools {
		go pglisten.Run(ctx, pool, pglisten.Options{
			Channel: store.AccountEventsChannel, What: "webhook worker listener", Logger: w.opts.Logger,
			// Notifications sent while not listening are lost: the tenants
			// with webhooks are visited for what they may have announced.
			// Those without had nothing queued, unless their first
			// endpoint came meanwhile, which the full visit finds.
			OnListen: func(context.Context) error { w.Wake(""); return nil },
			OnNotify: func(_ context.Context, schema string) error { w.Wake(schema); return nil },
		})
	}
	net := time.NewTicker(w.opts.Interval)
	defer net.Stop()
	full := time.NewTicker(w.opts.FullInterval)
	defer full.Stop()
	retry := time.NewTimer(w.opts.Interval)
	defer retry.Stop()
	next := fullPass
	for {
		w.visit(ctx, next)
		if ctx.Err() != nil {
			return
		}
		next = duePass
		retry.Reset(w.untilNextRetry())
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			next = fullPass
			net.Reset(w.opts.Interval) // the full visit does the net's work
		case <-net.C:
			next = netPass
		case <-retry.C:
		case <-w.wake:
		}
	}
}

// VisitAll visits every tenant: it purges the tenant's events past
// Retention and learns whether it has webhooks, in one transaction, then
// delivers what is due where it has. Run does it at start and each
// FullInterval.
func (w *Worker) VisitAll(ctx context.Context) { w.visit(ctx, fullPass) }

// visit makes one pass over the tenants, delivering in those announced,
// those whose retry is due and those p takes.
func (w *Worker) visit(ctx context.Context, p pass) {
	w.mu.Lock()
	due := w.due
	w.due = map[string]bool{}
	if w.netDue {
		p = max(p, netPass)
		w.netDue = false
	}
	now := time.Now()
	for schema, at := range w.retryAt {
		if !at.After(now) {
			due[schema] = true
			delete(w.retryAt, schema)
		}
	}
	w.mu.Unlock()
	tenants := w.tenants()
	for _, t := range tenants {
		if ctx.Err() != nil {
			return
		}
		if p == fullPass {
			w.purgeTenant(ctx, t)
		}
		if !due[t.Schema] && (p == duePass || !w.mayHaveWebhooks(t.Schema)) {
			continue
		}
		if err := w.DrainTenant(ctx, t); err != nil && ctx.Err() == nil {
			w.opts.Logger.WarnContext(ctx, "webhook: delivering a tenant's events failed", "tenant", t.Slug, "err", err)
		}
	}
	if p == fullPass {
		w.forgetAllBut(tenants)
	}
}

// Wake asks Run to visit the tenant of schema now and to learn again
// whether it has webhooks (it may have got its first endpoint); "" asks
// for the safety net's visit of every tenant that may have webhooks.
func (w *Worker) Wake(schema string) {
	w.mu.Lock()
	if schema == "" {
		w.netDue = true
	} else {
		w.due[schema] = true
		delete(w.webhooks, schema)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// hasWebhooksSQL is whether the tenant has anything for the worker: an
// enabled endpoint (deliveries are only queued for those) or a pending
// delivery (to an endpoint since disabled, resumed when it is enabled
// again). A tenant has at most 20 endpoints, and pending deliveries have
// partial indexes, so both are a lookup.
const hasWebhooksSQL = `EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled)
	OR EXISTS (SELECT 1 FROM webhook_deliveries WHERE state = 'pending')`

// learn remembers whether schema has webhooks, as a visit found.
func (w *Worker) learn(schema string, has bool) {
	w.mu.Lock()
	w.webhooks[schema] = has
	w.mu.Unlock()
}

// mayHaveWebhooks is whether the safety net visits schema: its last visit
// found webhooks, or nothing is known of it (first listed, or announced,
// since the last visit).
func (w *Worker) mayHaveWebhooks(schema string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	has, known := w.webhooks[schema]
	return has || !known
}

// forgetAllBut drops what is known of tenants no longer listed (purged,
// or served elsewhere), so the map does not grow with them.
func (w *Worker) forgetAllBut(tenants []tenancy.Tenant) {
	listed := make(map[string]bool, len(tenants))
	for _, t := range tenants {
		listed[t.Schema] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for schema := range w.webhooks {
		if !listed[schema] {
			delete(w.webhooks, schema)
		}
	}
}

// DrainTenant delivers t's due deliveries, one per transaction, until none
// is left (failed ones wait for their backoff).
func (w *Worker) DrainTenant(ctx context.Context, t tenancy.Tenant) error {
	pool, ok := w.pools[t.Placement]
	if !ok {
		return nil
	}
	for ctx.Err() == nil {
		found, err := w.deliverOne(ctx, pool, t)
		if err != nil || !found {
			return err
		}
	}
	return ctx.Err()
}

// purgeSQL deletes the events older than $1 seconds, oldest first and
// without holes (a watcher resuming from a revision must find either every
// later event or a clear refusal), stopping at the first event still
// pending delivery. Finished deliveries go with their events (cascade).
// It answers whether the tenant has webhooks (the purge deletes no pending
// delivery, and the answer is read from before it anyway), so the full
// visit of a tenant without webhooks is this one statement.
const purgeSQL = `
WITH purged AS (
	DELETE FROM account_events
	WHERE revision < LEAST(
		(SELECT min(revision) FROM webhook_deliveries WHERE state = 'pending'),
		(SELECT COALESCE(min(revision), 9223372036854775807) FROM account_events
		 WHERE create_time >= now() - make_interval(secs => $1))))
SELECT ` + hasWebhooksSQL

// Purge deletes every tenant's events past Retention, learning which
// tenants have webhooks (VisitAll does it too, and delivers).
func (w *Worker) Purge(ctx context.Context) {
	for _, t := range w.tenants() {
		if ctx.Err() != nil {
			return
		}
		w.purgeTenant(ctx, t)
	}
}

// purgeTenant deletes t's events past Retention and learns whether t has
// webhooks, in one transaction; a failure is logged and leaves what was
// known.
func (w *Worker) purgeTenant(ctx context.Context, t tenancy.Tenant) {
	pool, ok := w.pools[t.Placement]
	if !ok {
		return
	}
	var has bool
	err := tenantdb.InTenant(ctx, pool, t.Schema, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, purgeSQL, w.opts.Retention.Seconds()).Scan(&has)
	})
	if err != nil {
		if ctx.Err() == nil {
			w.opts.Logger.WarnContext(ctx, "webhook: purging a tenant's old account events failed", "tenant", t.Slug, "err", err)
		}
		return
	}
	w.learn(t.Schema, has)
}

// nextRetrySQL is when the first pending delivery that nothing holds back
// (no earlier pending one of its user and endpoint) falls due. Those held
// back are due already but wait for their predecessor, whose time counts.
// It also answers whether the tenant has webhooks, which the visit learns
// without a statement of its own.
const nextRetrySQL = `
SELECT (
	SELECT min(d.next_attempt_time) FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
	WHERE d.state = 'pending' AND e.enabled
	  AND NOT EXISTS (
		SELECT 1 FROM webhook_deliveries p
		WHERE p.endpoint_id = d.endpoint_id AND p.user_id = d.user_id
		  AND p.state = 'pending' AND p.revision < d.revision)),
	` + hasWebhooksSQL

// noteNextRetry remembers, in the transaction whose claim found nothing
// due, when t's next delivery falls due, and whether t has webhooks. One
// already due was claimed by another worker, which has it in flight: it is
// looked at again a moment later (the least backoff, at most a second),
// not in a busy loop.
func (w *Worker) noteNextRetry(ctx context.Context, tx pgx.Tx, t tenancy.Tenant) error {
	var (
		next *time.Time
		has  bool
	)
	if err := tx.QueryRow(ctx, nextRetrySQL).Scan(&next, &has); err != nil {
		return fmt.Errorf("read the next retry: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.webhooks[t.Schema] = has
	if next == nil {
		delete(w.retryAt, t.Schema)
		return nil
	}
	w.retryAt[t.Schema] = later(*next, time.Now().Add(min(w.opts.Backoff, time.Second)))
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// untilNextRetry is the wait until the earliest noted retry, at most
// Interval (the safety net visits every tenant with a retry noted then
// anyway).
func (w *Worker) untilNextRetry() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	wait := w.opts.Interval
	for _, at := range w.retryAt {
		wait = min(wait, time.Until(at))
	}
	return max(wait, time.Millisecond)
}

// claimSQL takes the oldest due pending delivery that no other worker
// holds and that no earlier pending delivery of the same user to the same
// endpoint holds back (the subquery sees those rows whether or not another
// worker has them locked, so two workers never deliver one user's events
// out of order).
const claimSQL = `
SELECT d.endpoint_id::text, d.revision, d.attempts, e.url, e.secret_sealed,
       ev.type, ev.user_id::text, ev.create_time, ev.data
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
JOIN account_events ev ON ev.revision = d.revision
WHERE d.state = 'pending' AND d.next_attempt_time <= now() AND e.enabled
  AND NOT EXISTS (
	SELECT 1 FROM webhook_deliveries p
	WHERE p.endpoint_id = d.endpoint_id AND p.user_id = d.user_id
	  AND p.state = 'pending' AND p.revision < d.revision)
ORDER BY d.revision
LIMIT 1
FOR UPDATE OF d SKIP LOCKED`

// claimed is a claimed delivery with its event.
type claimed struct {
	endpointID string
	revision   int64
	attempts   int
	url        string
	sealed     []byte
	event      account.AccountEvent
}

// deliverOne claims one delivery of t, POSTs it and records the outcome
// in one transaction; found is false when nothing was due.
func (w *Worker) deliverOne(ctx context.Context, pool *pgxpool.Pool, t tenancy.Tenant) (found bool, err error) {
	err = tenantdb.InTenant(ctx, pool, t.Schema, func(ctx context.Context, tx pgx.Tx) error {
		var (
			c   claimed
			typ string
		)
		err := tx.QueryRow(ctx, claimSQL).Scan(&c.endpointID, &c.revision, &c.attempts, &c.url, &c.sealed,
			&typ, &c.event.UserID, &c.event.CreateTime, &c.event.Data)
		if errors.Is(err, pgx.ErrNoRows) {
			return w.noteNextRetry(ctx, tx, t)
		}
		if err != nil {
			return fmt.Errorf("claim a due delivery: %w", err)
		}
		found = true
		c.event.Revision, c.event.Type = c.revision, account.AccountEventType(typ)
		sendErr := w.send(ctx, t, c)
		if sendErr != nil && ctx.Err() != nil {
			// Shutdown, not the endpoint's fault: the rollback leaves the
			// delivery due, no attempt counted.
			return ctx.Err()
		}
		return w.record(ctx, tx, t, c, sendErr)
	})
	return found, err
}

// MessageID is the webhook-id of an event of a tenant: the same on every
// attempt, so receivers can drop what they already processed.
func MessageID(tenantUID string, revision int64) string {
	return fmt.Sprintf("msg_%s_%d", strings.ReplaceAll(tenantUID, "-", ""), revision)
}

// Payload is the JSON body POSTed for an event, in the shape Standard
// Webhooks suggest (type, timestamp, data).
type Payload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
	// Tenant is the tenant's slug, Revision the event's revision in it.
	Tenant   string `json:"tenant"`
	Revision int64  `json:"revision"`
}

// send POSTs one event, signed with the endpoint's secret.
func (w *Worker) send(ctx context.Context, t tenancy.Tenant, c claimed) error {
	secret, err := w.secrets.Open(c.sealed, account.WebhookSecretAD(t.UID, c.endpointID))
	if err != nil {
		return fmt.Errorf("open the endpoint's secret: %w", err)
	}
	signer, err := standardwebhooks.NewWebhook(string(secret))
	if err != nil {
		return fmt.Errorf("the endpoint's secret: %w", err)
	}
	body, err := json.Marshal(Payload{Type: string(c.event.Type), Timestamp: c.event.CreateTime.UTC(),
		Data: c.event.Data, Tenant: t.Slug, Revision: c.revision})
	if err != nil {
		return fmt.Errorf("encode the event: %w", err)
	}
	id, now := MessageID(t.UID, c.revision), time.Now()
	signature, err := signer.Sign(id, now, body)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("user-agent", "tenantry-identity-webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, signature)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return nil
}

// disableSQL disables the endpoint of an abandoned delivery when nothing
// was delivered to it since that delivery's event: it has failed through
// the whole retry window (MaxAttempts backoffs, about a day and a half by
// default), and every further event would only wait out the same window.
// Its pending deliveries stay; re-enabling it (UpdateWebhookEndpoint)
// resumes them in order.
const disableSQL = `
UPDATE webhook_endpoints e SET enabled = false, update_time = now(),
	last_failure = 'disabled: every delivery failed since revision ' || ($2::bigint)::text || '; ' || last_failure
WHERE e.id = $1::uuid AND e.enabled AND NOT EXISTS (
	SELECT 1 FROM webhook_deliveries d
	WHERE d.endpoint_id = e.id AND d.state = 'delivered'
	  AND d.delivered_time >= (SELECT create_time FROM account_events WHERE revision = $2))`

// disableIfDead disables an endpoint that failed through a whole retry
// window, and says so at ERROR: the tenant's admins see it in
// ListWebhookEndpoints (enabled false, last_failure).
func (w *Worker) disableIfDead(ctx context.Context, tx pgx.Tx, t tenancy.Tenant, c claimed) error {
	tag, err := tx.Exec(ctx, disableSQL, c.endpointID, c.revision)
	if err != nil {
		return fmt.Errorf("disable a failing endpoint: %w", err)
	}
	if tag.RowsAffected() > 0 {
		w.opts.Logger.ErrorContext(ctx, "webhook: DISABLED an endpoint that failed every delivery through a whole retry window; re-enable it once it answers",
			"tenant", t.Slug, "endpoint", c.endpointID)
	}
	return nil
}

// record writes an attempt's outcome in the claim's transaction.
func (w *Worker) record(ctx context.Context, tx pgx.Tx, t tenancy.Tenant, c claimed, sendErr error) error {
	if sendErr == nil {
		if _, err := tx.Exec(ctx, `
			UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, delivered_time = now(), last_error = ''
			WHERE endpoint_id = $1::uuid AND revision = $2`, c.endpointID, c.revision); err != nil {
			return fmt.Errorf("record a delivery: %w", err)
		}
		w.opts.OnAttempt(AttemptDelivered)
		return nil
	}
	attempts := c.attempts + 1
	abandon := attempts >= w.opts.MaxAttempts
	retryIn := w.Backoff(attempts)
	msg := sendErr.Error()
	if errors.Is(sendErr, errForbiddenAddress) {
		// The dial error names the address the host resolved to, and
		// tenant admins read last_error: it must not tell them what an
		// internal name resolves to.
		msg = "refused to connect: the URL's host resolves to a loopback, private, link-local or otherwise non-public address"
	}
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	msg = strings.ToValidUTF8(msg, "?")
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_deliveries
		SET attempts = attempts + 1, last_error = $3,
		    state = CASE WHEN $4 THEN 'abandoned' ELSE 'pending' END,
		    next_attempt_time = now() + make_interval(secs => $5)
		WHERE endpoint_id = $1::uuid AND revision = $2`, c.endpointID, c.revision, msg, abandon, retryIn.Seconds()); err != nil {
		return fmt.Errorf("record a failed delivery: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET last_failure_time = now(), last_failure = $2 WHERE id = $1::uuid`,
		c.endpointID, msg); err != nil {
		return fmt.Errorf("record an endpoint's failure: %w", err)
	}
	attrs := []any{"tenant", t.Slug, "endpoint", c.endpointID, "revision", c.revision, "attempts", attempts, "err", sendErr}
	if abandon {
		w.opts.Logger.ErrorContext(ctx, "webhook: GIVING UP on a delivery after too many attempts", attrs...)
		w.opts.OnAttempt(AttemptAbandoned)
		return w.disableIfDead(ctx, tx, t, c)
	}
	w.opts.Logger.WarnContext(ctx, "webhook: delivery failed; will retry", append(attrs, "retry_in", retryIn)...)
	w.opts.OnAttempt(AttemptRetry)
	return nil
}

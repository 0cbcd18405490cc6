package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/sealbox"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/identity/internal/webhook"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/pgtest"
)

// visitCounter counts the transactions the worker opens in each tenant's
// schema: tenantdb.InTenant begins every one with set_config of the
// search path, in a batch, whose second argument is the schema.
type visitCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (v *visitCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (v *visitCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (v *visitCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (v *visitCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (v *visitCounter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if !strings.Contains(data.SQL, "set_config('search_path'") || len(data.Args) != 2 {
		return
	}
	if schema, ok := data.Args[1].(string); ok {
		v.mu.Lock()
		v.n[schema]++
		v.mu.Unlock()
	}
}

func (v *visitCounter) of(schema string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n[schema]
}

func (v *visitCounter) reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n = map[string]int{}
}

// placement is a database of tenant schemas whose transactions are
// counted, the tenants the worker is given, and a receiver of webhooks.
type placement struct {
	pool    *pgxpool.Pool
	visits  *visitCounter
	secrets *sealbox.Box
	// received counts the deliveries the receiver took, by webhook-id.
	received *receiver

	mu      sync.Mutex
	tenants []tenancy.Tenant
}

type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	ids []string
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

func newPlacement(t *testing.T) *placement {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	p := &placement{visits: &visitCounter{n: map[string]int{}}, received: &receiver{}}
	cfg.ConnConfig.Tracer = p.visits
	p.pool, err = pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.pool.Close)
	p.secrets, err = sealbox.New("key-encryption-key-for-tests-0123456789abcdef", "webhook endpoint secrets v1")
	require.NoError(t, err)
	p.received.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.received.mu.Lock()
		p.received.ids = append(p.received.ids, r.Header.Get("webhook-id"))
		p.received.mu.Unlock()
	}))
	t.Cleanup(p.received.Close)
	return p
}

// addTenant makes a tenant's schema with identity's tables, as the
// registry's migration would, and lists it for the worker once it is
// ready.
func (p *placement) addTenant(t *testing.T, i int) tenancy.Tenant {
	t.Helper()
	tenant := tenancy.Tenant{UID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Slug: fmt.Sprintf("t%02d", i),
		Schema: fmt.Sprintf("t_t%02d", i), Placement: "default", State: tenancy.Active}
	migrations, err := store.Migrations()
	require.NoError(t, err)
	var sql strings.Builder
	fmt.Fprintf(&sql, "CREATE SCHEMA %s; SET search_path TO %[1]s;\n", tenant.Schema)
	for _, m := range migrations {
		sql.WriteString(m.SQL)
		sql.WriteString(";\n")
	}
	sql.WriteString("RESET search_path")
	_, err = p.pool.Exec(t.Context(), sql.String())
	require.NoError(t, err)
	p.mu.Lock()
	p.tenants = append(p.tenants, tenant)
	p.mu.Unlock()
	return tenant
}

func (p *placement) list() []tenancy.Tenant {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]tenancy.Tenant(nil), p.tenants...)
}

// addEndpoint gives the tenant an enabled endpoint at the receiver,
// announcing nothing.
func (p *placement) addEndpoint(t *testing.T, tenant tenancy.Tenant) {
	t.Helper()
	id := "11111111-1111-1111-1111-" + tenant.UID[len(tenant.UID)-12:]
	_, err := p.pool.Exec(t.Context(), fmt.Sprintf(`INSERT INTO %s.webhook_endpoints (id, url, secret_sealed) VALUES ($1, $2, $3)`,
		pgx.Identifier{tenant.Schema}.Sanitize()),
		id, p.received.URL, p.secrets.Seal([]byte("whsec_c2VjcmV0"), account.WebhookSecretAD(tenant.UID, id)))
	require.NoError(t, err)
}

// queueSilently records an event and its deliveries as a change would,
// but sends no notification: as if it had been lost.
func (p *placement) queueSilently(t *testing.T, tenant tenancy.Tenant) {
	t.Helper()
	_, err := p.pool.Exec(t.Context(), fmt.Sprintf(`
		SET search_path TO %s;
		WITH rev AS (
			UPDATE account_event_revision SET revision = revision + 1 RETURNING revision
		), ev AS (
			INSERT INTO account_events (revision, type, user_id) SELECT revision, 'user.created', gen_random_uuid() FROM rev
			RETURNING revision, user_id
		)
		INSERT INTO webhook_deliveries (endpoint_id, revision, user_id)
		SELECT e.id, ev.revision, ev.user_id FROM webhook_endpoints e, ev WHERE e.enabled;
		RESET search_path`, pgx.Identifier{tenant.Schema}.Sanitize()))
	require.NoError(t, err)
}

// deliveries counts the tenant's deliveries, and those delivered.
func (p *placement) deliveries(t *testing.T, tenant tenancy.Tenant) (queued, delivered int) {
	t.Helper()
	require.NoError(t, p.pool.QueryRow(t.Context(), fmt.Sprintf(`
		SELECT count(*), count(*) FILTER (WHERE state = 'delivered') FROM %s.webhook_deliveries`,
		pgx.Identifier{tenant.Schema}.Sanitize())).Scan(&queued, &delivered))
	return queued, delivered
}

// deliveredAll is whether every delivery of the tenant (there is one) is
// recorded as delivered.
func (p *placement) deliveredAll(t *testing.T, tenant tenancy.Tenant) bool {
	queued, delivered := p.deliveries(t, tenant)
	require.Equal(t, 1, queued, "one event was queued for one endpoint")
	return delivered == queued
}

// run starts a worker whose safety net passes every few milliseconds and
// whose full visit is an hour away (the one at start aside); it stops
// with the test.
func (p *placement) run(t *testing.T) *webhook.Worker {
	t.Helper()
	w := webhook.NewWorker(map[string]*pgxpool.Pool{"default": p.pool}, p.list, p.secrets, webhook.Options{
		Interval: 20 * time.Millisecond, FullInterval: time.Hour,
		Guard: webhook.Guard{AllowPrivate: true}, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// eventually polls cond until it holds, failing the test after a deadline
// far beyond what it takes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "still not so: %s", what)
	}
}

// netPasses waits until the tenant with webhooks was visited n more
// times: n passes of the safety net went by.
func (p *placement) netPasses(t *testing.T, busy tenancy.Tenant, n int) {
	t.Helper()
	from := p.visits.of(busy.Schema)
	eventually(t, fmt.Sprintf("%d passes of the safety net", n), func() bool { return p.visits.of(busy.Schema) >= from+n })
}

func TestTheSafetyNetVisitsOnlyTheTenantsWithWebhooks(t *testing.T) {
	t.Parallel()
	p := newPlacement(t)
	withEndpoints := map[int]bool{7: true, 23: true, 41: true}
	var tenants []tenancy.Tenant
	for i := range 50 {
		tenant := p.addTenant(t, i)
		if withEndpoints[i] {
			p.addEndpoint(t, tenant)
		}
		tenants = append(tenants, tenant)
	}
	p.run(t)
	last := tenants[len(tenants)-1]
	eventually(t, "the full visit at start reached the last tenant", func() bool { return p.visits.of(last.Schema) > 0 })
	for _, tenant := range tenants {
		require.Positive(t, p.visits.of(tenant.Schema), "the full visit at start visits %s", tenant.Slug)
	}

	p.visits.reset()
	// Every tenant with an endpoint is visited pass after pass (waited for
	// each: the count may be read while a pass is between two of them).
	for i := range withEndpoints {
		eventually(t, fmt.Sprintf("3 visits of %s, which has an endpoint", tenants[i].Slug),
			func() bool { return p.visits.of(tenants[i].Schema) >= 3 })
	}
	for i, tenant := range tenants {
		if !withEndpoints[i] {
			require.Zero(t, p.visits.of(tenant.Schema), "the safety net leaves %s alone: it has no endpoint", tenant.Slug)
		}
	}

	newcomer := p.addTenant(t, 50)
	eventually(t, "the newcomer was visited", func() bool { return p.visits.of(newcomer.Schema) > 0 })
	p.netPasses(t, tenants[23], 3)
	require.Equal(t, 1, p.visits.of(newcomer.Schema), "a tenant listed since the full visit is visited once, which learns it has no endpoint")
	for i, tenant := range tenants {
		if !withEndpoints[i] {
			require.Zero(t, p.visits.of(tenant.Schema), "%s is still left alone", tenant.Slug)
		}
	}
}

func TestTheSafetyNetDeliversAnEventWhoseNotificationWasLost(t *testing.T) {
	t.Parallel()
	p := newPlacement(t)
	busy := p.addTenant(t, 1)
	p.addEndpoint(t, busy)
	quiet := p.addTenant(t, 2)
	p.run(t)
	eventually(t, "the full visit at start is done", func() bool { return p.visits.of(quiet.Schema) > 0 })

	p.queueSilently(t, busy)
	eventually(t, "the safety net delivered the event nobody announced", func() bool { return p.received.count() == 1 })
	eventually(t, "the delivery is recorded", func() bool { return p.deliveredAll(t, busy) })
}

func TestAFirstEndpointNoNotificationAnnouncedIsServed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		learn func(w *webhook.Worker, quiet tenancy.Tenant)
	}{
		{"after the next full visit", func(w *webhook.Worker, _ tenancy.Tenant) { w.VisitAll(context.Background()) }},
		{"at once when this replica created it and woke the worker", func(w *webhook.Worker, quiet tenancy.Tenant) { w.Wake(quiet.Schema) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPlacement(t)
			busy := p.addTenant(t, 1)
			p.addEndpoint(t, busy)
			quiet := p.addTenant(t, 2)
			w := p.run(t)
			eventually(t, "the full visit at start is done", func() bool { return p.visits.of(quiet.Schema) > 0 })

			// The endpoint is created, and an event queued for it, on a
			// replica whose notifications never reach this one.
			p.addEndpoint(t, quiet)
			p.queueSilently(t, quiet)
			seen := p.visits.of(quiet.Schema)
			p.netPasses(t, busy, 3)
			require.Equal(t, seen, p.visits.of(quiet.Schema), "the safety net still takes the tenant for one without endpoints")
			require.Zero(t, p.received.count())
			require.False(t, p.deliveredAll(t, quiet))

			tc.learn(w, quiet)
			eventually(t, "the event was delivered", func() bool { return p.received.count() == 1 })
			eventually(t, "the delivery is recorded", func() bool { return p.deliveredAll(t, quiet) })
			seen = p.visits.of(quiet.Schema)
			p.netPasses(t, busy, 3)
			require.Greater(t, p.visits.of(quiet.Schema), seen, "the safety net visits the tenant from then on")
		})
	}
}

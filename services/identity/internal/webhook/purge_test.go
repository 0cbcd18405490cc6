package webhook_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/sealbox"
	"tenantry.dev/identity/internal/store"
	"tenantry.dev/identity/internal/webhook"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// tenantSchema makes a schema with identity's tables, as the registry's
// migration would, and returns a pool and the tenant.
func tenantSchema(t *testing.T) (*pgxpool.Pool, tenancy.Tenant) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	migrations, err := store.Migrations()
	require.NoError(t, err)
	conn, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(t.Context(), `CREATE SCHEMA t_acme; SET search_path TO t_acme`)
	require.NoError(t, err)
	for _, m := range migrations {
		_, err := conn.Exec(t.Context(), m.SQL)
		require.NoError(t, err, "migration %d", m.Version)
	}
	_, err = conn.Exec(t.Context(), `RESET search_path`)
	require.NoError(t, err)
	return pool, tenancy.Tenant{UID: "00000000-0000-0000-0000-00000000acme", Slug: "acme", Schema: "t_acme", Placement: "default", State: tenancy.Active}
}

func TestPurgeDeletesOldEventsOldestFirstAndKeepsPendingOnes(t *testing.T) {
	t.Parallel()
	pool, acme := tenantSchema(t)
	// Revisions 1-5 are 40 days old, 6 is new; 3 is still pending
	// delivery to an endpoint.
	_, err := pool.Exec(t.Context(), `
		SET search_path TO t_acme;
		INSERT INTO account_events (revision, type, user_id, create_time)
		SELECT r, 'user.created', gen_random_uuid(), now() - CASE WHEN r < 6 THEN interval '40 days' ELSE interval '0' END
		FROM generate_series(1, 6) r;
		UPDATE account_event_revision SET revision = 6;
		INSERT INTO webhook_endpoints (id, url, secret_sealed) VALUES ('11111111-1111-1111-1111-111111111111', 'https://example.com', '\x00');
		INSERT INTO webhook_deliveries (endpoint_id, revision, user_id, state)
		SELECT '11111111-1111-1111-1111-111111111111', revision, user_id, CASE WHEN revision = 3 THEN 'pending' ELSE 'delivered' END
		FROM account_events;
		RESET search_path`)
	require.NoError(t, err)
	kept := func() []int64 {
		rows, err := pool.Query(t.Context(), `SELECT revision FROM t_acme.account_events ORDER BY revision`)
		require.NoError(t, err)
		var revs []int64
		for rows.Next() {
			var r int64
			require.NoError(t, rows.Scan(&r))
			revs = append(revs, r)
		}
		require.NoError(t, rows.Err())
		return revs
	}
	w := webhook.NewWorker(map[string]*pgxpool.Pool{"default": pool}, func() []tenancy.Tenant { return []tenancy.Tenant{acme} }, nil,
		webhook.Options{Retention: 30 * 24 * time.Hour})
	w.Purge(t.Context())
	require.Equal(t, []int64{3, 4, 5, 6}, kept(), "the pending delivery of 3 keeps it and every later event")

	_, err = pool.Exec(t.Context(), `UPDATE t_acme.webhook_deliveries SET state = 'delivered'`)
	require.NoError(t, err)
	w.Purge(t.Context())
	require.Equal(t, []int64{6}, kept(), "once delivered, the old events go; the new one stays")
}

func TestAnEndpointFailingThroughAWholeRetryWindowIsDisabled(t *testing.T) {
	t.Parallel()
	pool, acme := tenantSchema(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	secrets, err := sealbox.New("key-encryption-key-for-tests-0123456789abcdef", "webhook endpoint secrets v1")
	require.NoError(t, err)
	const (
		dead  = "11111111-1111-1111-1111-111111111111"
		alive = "22222222-2222-2222-2222-222222222222"
	)
	// Both endpoints fail revision 1 (an hour old); alive has delivered
	// revision 2 since, dead nothing.
	for _, id := range []string{dead, alive} {
		_, err := pool.Exec(t.Context(), `INSERT INTO t_acme.webhook_endpoints (id, url, secret_sealed) VALUES ($1, $2, $3)`,
			id, failing.URL, secrets.Seal([]byte("whsec_c2VjcmV0"), account.WebhookSecretAD(acme.UID, id)))
		require.NoError(t, err)
	}
	_, err = pool.Exec(t.Context(), `
		SET search_path TO t_acme;
		INSERT INTO account_events (revision, type, user_id, create_time) VALUES
			(1, 'user.created', '33333333-3333-3333-3333-333333333333', now() - interval '1 hour'),
			(2, 'user.created', '44444444-4444-4444-4444-444444444444', now() - interval '1 hour');
		UPDATE account_event_revision SET revision = 2;
		INSERT INTO webhook_deliveries (endpoint_id, revision, user_id) SELECT id, 1, '33333333-3333-3333-3333-333333333333' FROM webhook_endpoints;
		INSERT INTO webhook_deliveries (endpoint_id, revision, user_id, state, delivered_time)
			VALUES ('22222222-2222-2222-2222-222222222222', 2, '44444444-4444-4444-4444-444444444444', 'delivered', now() - interval '30 minutes');
		RESET search_path`)
	require.NoError(t, err)

	w := webhook.NewWorker(map[string]*pgxpool.Pool{"default": pool}, func() []tenancy.Tenant { return []tenancy.Tenant{acme} }, secrets,
		webhook.Options{MaxAttempts: 2, Backoff: time.Millisecond, Guard: webhook.Guard{AllowPrivate: true}})
	pending := func() int {
		var n int
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM t_acme.webhook_deliveries WHERE state = 'pending'`).Scan(&n))
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); pending() > 0; {
		require.True(t, time.Now().Before(deadline), "the deliveries were never abandoned")
		require.NoError(t, w.DrainTenant(t.Context(), acme))
	}
	enabled := func(id string) (bool, string) {
		var (
			on  bool
			why string
		)
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT enabled, last_failure FROM t_acme.webhook_endpoints WHERE id = $1`, id).Scan(&on, &why))
		return on, why
	}
	on, why := enabled(dead)
	require.False(t, on, "an endpoint that delivered nothing through the window is disabled")
	require.Contains(t, why, "disabled: every delivery failed since revision 1")
	require.Contains(t, why, "500")
	on, _ = enabled(alive)
	require.True(t, on, "an endpoint that delivered something since stays enabled")
}

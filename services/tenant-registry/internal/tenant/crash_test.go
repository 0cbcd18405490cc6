package tenant_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/tenant-registry/internal/store"
	"tenantry.dev/tenant-registry/internal/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var errCrash = errors.New("simulated crash")

// world is a registry database with a second placement, and a way to build
// fresh managers on it as a restarted process would.
type world struct {
	t        *testing.T
	registry *pgxpool.Pool
	other    *pgxpool.Pool
}

func newWorld(t *testing.T) *world {
	ctx := context.Background()
	registry, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(registry.Close)
	other, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(other.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, store.Migrate(ctx, registry, logger))
	return &world{t: t, registry: registry, other: other}
}

// boot builds a manager and reconciler the way a starting process does.
func (w *world) boot() (*tenant.Manager, *tenant.Reconciler) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	index := tenant.NewIndex([]string{"localhost"})
	follower := store.NewFollower(w.registry, index, logger)
	require.NoError(w.t, follower.Load(context.Background()))
	st := store.New(w.registry, map[string]*pgxpool.Pool{"default": w.registry, "other": w.other}, nil, logger)
	m := tenant.NewManager(st, index, follower, tenant.Config{PurgeGrace: time.Hour, Logger: logger})
	return m, tenant.NewReconciler(m, time.Minute, time.Hour)
}

func schemaExists(t *testing.T, db *pgxpool.Pool, schema string) bool {
	var ok bool
	require.NoError(t, db.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok))
	return ok
}

func stateOf(t *testing.T, db *pgxpool.Pool, slug string) string {
	var s string
	err := db.QueryRow(context.Background(), `SELECT state FROM tenantry_registry.tenants WHERE slug = $1`, slug).Scan(&s)
	if err != nil {
		return "absent"
	}
	return s
}

func TestCrashBetweenProvisioningStepsIsRepairedOnRestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()

	crashed, _ := w.boot()
	tenant.SetCrashPoints(crashed, func() error { return errCrash }, nil)
	_, err := crashed.Create(ctx, tenant.CreateParams{Slug: "halfway", Placement: "other"})
	require.ErrorIs(t, err, errCrash)
	require.Equal(t, "PROVISIONING", stateOf(t, w.registry, "halfway"), "recorded, not finished")
	require.False(t, schemaExists(t, w.other, "halfway"))

	crashedLater, _ := w.boot()
	tenant.SetCrashPoints(crashedLater, nil, func() error { return errCrash })
	_, err = crashedLater.Create(ctx, tenant.CreateParams{Slug: "almost", Placement: "other"})
	require.ErrorIs(t, err, errCrash)
	require.Equal(t, "PROVISIONING", stateOf(t, w.registry, "almost"))
	require.True(t, schemaExists(t, w.other, "almost"), "schema made, tenant not activated")

	// A half-provisioned tenant is never served as active.
	m, rec := w.boot()
	res, err := m.ResolveSlug("halfway")
	require.NoError(t, err)
	require.Equal(t, tenant.Provisioning, res.Tenant.State)

	// The restarted process repairs both: active with its schema.
	rep, err := rec.Pass(ctx, true)
	require.NoError(t, err)
	require.Equal(t, tenant.Report{Finished: 2}, rep)
	for _, slug := range []string{"halfway", "almost"} {
		require.Equal(t, "ACTIVE", stateOf(t, w.registry, slug), slug)
		require.True(t, schemaExists(t, w.other, slug), slug)
		res, err := m.ResolveSlug(slug)
		require.NoError(t, err)
		require.Equal(t, tenant.Active, res.Tenant.State)
	}
	require.False(t, schemaExists(t, w.registry, "halfway"), "the schema lives in its placement only")
}

func TestProvisioningInTheRegistryDatabaseIsOneTransaction(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	// A schema that is not ours holds the name: creating the tenant fails
	// and leaves no tenant behind.
	_, err := w.registry.Exec(ctx, `CREATE SCHEMA squatter`)
	require.NoError(t, err)
	m, _ := w.boot()
	_, err = m.Create(ctx, tenant.CreateParams{Slug: "squatter", Placement: "default"})
	require.Equal(t, fault.FailedPrecondition, fault.KindOf(err), "err: %v", err)
	require.Equal(t, tenant.ReasonSchemaTaken, fault.ReasonOf(err))
	require.Equal(t, "absent", stateOf(t, w.registry, "squatter"))
	_, err = m.ResolveSlug("squatter")
	require.Error(t, err)

	// Purge refuses to drop a schema that is not marked as the tenant's.
	created, err := m.Create(ctx, tenant.CreateParams{Slug: "marked", Placement: "default"})
	require.NoError(t, err)
	require.Equal(t, tenant.Active, created.State)
	_, err = w.registry.Exec(ctx, `COMMENT ON SCHEMA marked IS 'someone else'`)
	require.NoError(t, err)
	_, err = m.Delete(ctx, "marked", "", true)
	require.Equal(t, tenant.ReasonSchemaTaken, fault.ReasonOf(err))
	require.True(t, schemaExists(t, w.registry, "marked"))
}

func TestCrashDuringPurgeIsFinishedByTheReconciler(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	m, rec := w.boot()
	_, err := m.Create(ctx, tenant.CreateParams{Slug: "doomed", Placement: "other"})
	require.NoError(t, err)
	_, err = m.Delete(ctx, "doomed", "", false)
	require.NoError(t, err)
	// The purge's first step (dropping the schema in its placement)
	// committed, then the process died before the registry forgot the tenant.
	_, err = w.registry.Exec(ctx, `UPDATE tenantry_registry.tenants SET purge_time = now() - interval '1 second' WHERE slug = 'doomed'`)
	require.NoError(t, err)
	_, err = w.other.Exec(ctx, `DROP SCHEMA doomed CASCADE`)
	require.NoError(t, err)

	rep, err := rec.Pass(ctx, true)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Purged)
	require.Equal(t, "absent", stateOf(t, w.registry, "doomed"))
	_, err = m.ResolveSlug("doomed")
	require.Equal(t, fault.NotFound, fault.KindOf(err))
}

// A force delete and the reconciler both purge a tenant whose purge time
// has come, and may race: the one that finds the tenant gone already has
// nothing left to do, and does not fail.
func TestPurgingATenantPurgedMeanwhileSucceeds(t *testing.T) {
	w := newWorld(t)
	m, _ := w.boot()
	ctx := context.Background()
	created, err := m.Create(ctx, tenant.CreateParams{Slug: "racer", DisplayName: "Racer"})
	require.NoError(t, err)
	deleted, err := m.Delete(ctx, "racer", "", true)
	require.NoError(t, err)
	require.False(t, schemaExists(t, w.registry, created.Schema))

	purged, err := tenant.PurgeTenant(m, deleted)
	require.NoError(t, err, "the other purge's work is done")
	require.Nil(t, purged)
}

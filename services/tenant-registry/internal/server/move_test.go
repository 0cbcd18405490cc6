package server_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/tenantdb"
)

// moveFixture is a registry with a second placement (another database of
// the test cluster), the notes component, and pools on both placements.
type moveFixture struct {
	*registry
	pools map[string]*pgxpool.Pool
	// tenants is the registry client the writer asks, swapped when a test
	// replaces the registry.
	tenants atomic.Pointer[registryv1.TenantServiceClient]
}

func newMoveFixture(t *testing.T, databaseURL string, opts ...registryOption) *moveFixture {
	t.Helper()
	if databaseURL == "" {
		databaseURL = pgtest.NewDatabase(t)
	}
	second := pgtest.NewDatabase(t)
	r := startRegistry(t, databaseURL, append([]registryOption{withPlacement("second", second)}, opts...)...)
	_, err := r.register(notes())
	require.NoError(t, err)
	f := &moveFixture{registry: r, pools: map[string]*pgxpool.Pool{}}
	f.tenants.Store(&r.client)
	for name, url := range map[string]string{"default": databaseURL, "second": second} {
		p, err := pgxpool.New(context.Background(), url)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		f.pools[name] = p
	}
	return f
}

// writer stands for a product service: it writes notes to a tenant over
// and over, through tenantdb.RetryMoving with the registry's placement of
// the tenant, and remembers every write that was acknowledged.
type writer struct {
	stop    atomic.Bool // set to stop after the write in flight
	acked   sync.Map    // body → id
	n       atomic.Int64
	retries atomic.Int64
	errs    chan error
}

func (f *moveFixture) startWriter(t *testing.T, slug string) *writer {
	w := &writer{errs: make(chan error, 1)}
	t.Cleanup(func() { w.stop.Store(true) })
	ctx := context.Background()
	current := func(ctx context.Context) (*registryv1.Tenant, error) {
		resp, err := (*f.tenants.Load()).GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/" + slug})
		return resp.GetTenant(), err
	}
	t0, err := current(ctx)
	require.NoError(t, err)
	go func() {
		defer close(w.errs)
		for i := 0; !w.stop.Load(); i++ {
			body := "note " + strconv.Itoa(i)
			var id int64
			attempts := 0
			err := tenantdb.RetryMoving(ctx, t0, (*registryv1.Tenant).GetPlacement, current,
				func(ctx context.Context, tn *registryv1.Tenant) error {
					attempts++
					t0 = tn
					return tenantdb.InTenant(ctx, f.pools[tn.GetPlacement()], tn.GetSchema(), func(ctx context.Context, tx pgx.Tx) error {
						return tx.QueryRow(ctx, `INSERT INTO notes (owner, body) VALUES (gen_random_uuid(), $1) RETURNING id`, body).Scan(&id)
					})
				})
			if err != nil {
				w.errs <- err
				return
			}
			w.retries.Add(int64(attempts - 1))
			w.acked.Store(body, id)
			w.n.Add(1)
		}
	}()
	return w
}

func (f *moveFixture) waitMove(t *testing.T, op *registryv1.Operation) *registryv1.Operation {
	t.Helper()
	for !op.GetDone() {
		resp, err := f.operations().WaitOperation(operator(), &registryv1.WaitOperationRequest{Name: op.GetName(), Timeout: durationpb.New(5 * time.Second)})
		require.NoError(t, err)
		op = resp.GetOperation()
	}
	return op
}

// TestMoveTenantUnderWrites moves a tenant to another placement while a
// client keeps writing to it: every acknowledged write is on the target
// afterwards, the identity sequence goes on where it was, the tenant's
// placement is switched, the old copy refuses writes and is dropped once
// its grace ends.
func TestMoveTenantUnderWrites(t *testing.T) {
	f := newMoveFixture(t, "")
	tn := f.create("acme")
	require.Equal(t, "default", tn.GetPlacement())

	w := f.startWriter(t, "acme")
	eventually(t, 10*time.Second, "writes before the move", func() bool { return w.n.Load() >= 200 })

	resp, err := f.client.MoveTenant(operator(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "second", Grace: durationpb.New(0)})
	require.NoError(t, err)
	require.Equal(t, "MoveTenant", resp.GetOperation().GetKind())
	require.Equal(t, "tenants/acme", resp.GetOperation().GetMoveMetadata().GetTenant())
	op := f.waitMove(t, resp.GetOperation())
	require.Nil(t, op.GetError(), "move failed: %v", op.GetError())
	md := op.GetMoveMetadata()
	require.Equal(t, registryv1.MoveMetadata_PHASE_SWITCHED, md.GetPhase())
	require.Equal(t, "default", md.GetSourcePlacement())
	require.Equal(t, "second", md.GetTargetPlacement())
	require.NotNil(t, md.GetFenceDuration())
	require.Positive(t, md.GetSourceBytes())
	t.Logf("fence %s, %d writes acknowledged by the switch", md.GetFenceDuration().AsDuration(), w.n.Load())

	// Writes go on after the switch, on the target.
	after := w.n.Load()
	eventually(t, 10*time.Second, "writes after the move", func() bool { return w.n.Load() >= after+200 })
	w.stop.Store(true)
	require.NoError(t, <-w.errs)

	got, err := f.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	require.Equal(t, "second", got.GetTenant().GetPlacement())

	// Every acknowledged write is on the target, with the id it was given.
	onTarget := map[string]int64{}
	require.NoError(t, tenantdb.InTenant(context.Background(), f.pools["second"], "acme", func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT body, id FROM notes`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var body string
			var id int64
			if err := rows.Scan(&body, &id); err != nil {
				return err
			}
			onTarget[body] = id
		}
		return rows.Err()
	}))
	lost := 0
	w.acked.Range(func(k, v any) bool {
		if onTarget[k.(string)] != v.(int64) {
			lost++
		}
		return true
	})
	require.Zero(t, lost, "acknowledged writes missing on the target (of %d)", w.n.Load())
	require.Equal(t, int(w.n.Load()), len(onTarget), "the target has exactly the acknowledged writes")

	// The move's metrics: its outcome, its fence, the old copy waiting.
	families := scrape(t, "http://"+f.app.HTTPAddr().String()+"/metrics")
	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"tenantry_registry_moves_ended_total", map[string]string{"outcome": "switched"}, 1},
		{"tenantry_registry_move_fence_seconds", nil, 1}, // observations
		{"tenantry_registry_moves", map[string]string{"phase": "SWITCHED"}, 1},
		{"tenantry_registry_moves", map[string]string{"phase": "COPYING"}, 0},
		{"tenantry_registry_operations_running", map[string]string{"kind": "MoveTenant"}, 0},
	} {
		v, ok := value(t, families, c.family, c.labels)
		require.True(t, ok, "no %s%v in the exposition", c.family, c.labels)
		require.Equal(t, c.want, v, "%s%v", c.family, c.labels)
	}

	// The old copy is read-only until its grace (0 s here) ends...
	err = tenantdb.InTenant(context.Background(), f.pools["default"], "acme", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO notes (owner, body) VALUES (gen_random_uuid(), 'late')`)
		return err
	})
	require.True(t, tenantdb.IsMoving(err), "a write to the old copy: %v", err)
	// ...then dropped, with nothing of the move left behind.
	f.app.ReapOldCopies(context.Background())
	require.False(t, schemaExists(t, f.pools["default"], "acme"))
	require.True(t, schemaExists(t, f.pools["second"], "acme"))
	var leftovers int
	require.NoError(t, f.pools["default"].QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)`).Scan(&leftovers))
	require.Zero(t, leftovers, "slots and publications left on the source")
	require.NoError(t, f.pools["second"].QueryRow(context.Background(), `SELECT count(*) FROM pg_subscription WHERE subname LIKE 'tenantry_move_%'`).Scan(&leftovers))
	require.Zero(t, leftovers, "subscriptions left on the target")
	op = getOperation(t, f.registry, op.GetName())
	require.Equal(t, registryv1.MoveMetadata_PHASE_DONE, op.GetMoveMetadata().GetPhase())

	// The moved tenant is served from its new placement: a fleet
	// migration reaches it there.
	_, err = f.register(notes(&registryv1.Migration{Version: 3, Name: "add_pinned", Sql: `ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false`}))
	require.NoError(t, err)
	mig, err := f.components().MigrateTenants(operator(), &registryv1.MigrateTenantsRequest{Tenants: []string{"tenants/acme"}})
	require.NoError(t, err)
	mop := f.waitMove(t, mig.GetOperation())
	require.Nil(t, mop.GetError())
	require.Zero(t, mop.GetMetadata().GetFailed())
	require.Contains(t, columns(t, f.pools["second"], "acme", "notes"), "pinned")
}

func getOperation(t *testing.T, r *registry, name string) *registryv1.Operation {
	t.Helper()
	resp, err := r.operations().GetOperation(operator(), &registryv1.GetOperationRequest{Name: name})
	require.NoError(t, err)
	return resp.GetOperation()
}

// TestMoveTenantRefusals: what cannot move is told at once, with a reason,
// and only the operator moves tenants.
func TestMoveTenantRefusals(t *testing.T) {
	f := newMoveFixture(t, "")
	f.create("acme")
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		req    *registryv1.MoveTenantRequest
		code   codes.Code
		reason string
	}{
		{"same placement", operator(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "default"}, codes.FailedPrecondition, "MOVE_SAME_PLACEMENT"},
		{"unknown placement", operator(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "mars"}, codes.InvalidArgument, "PLACEMENT_UNKNOWN"},
		{"no placement", operator(), &registryv1.MoveTenantRequest{Name: "tenants/acme"}, codes.InvalidArgument, "PLACEMENT_REQUIRED"},
		{"unknown tenant", operator(), &registryv1.MoveTenantRequest{Name: "tenants/nobody", Placement: "second"}, codes.NotFound, "TENANT_NOT_FOUND"},
		{"grace too long", operator(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "second", Grace: durationpb.New(31 * 24 * time.Hour)}, codes.InvalidArgument, "MOVE_GRACE_INVALID"},
		{"service credential", as(serviceToken), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "second"}, codes.PermissionDenied, ""},
		{"anonymous", context.Background(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "second"}, codes.Unauthenticated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.client.MoveTenant(tc.ctx, tc.req)
			st := requireCode(t, err, tc.code)
			if tc.reason != "" {
				require.Equal(t, tc.reason, reasonOf(st), st.Message())
			}
		})
	}
	// Nothing was started, and the tenant has not moved.
	list, err := f.operations().ListOperations(operator(), &registryv1.ListOperationsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetOperations())
	require.False(t, schemaExists(t, f.pools["second"], "acme"))
}

// TestMoveTenantCancelled: a move cancelled before its switch leaves the
// tenant where it was, writable, with nothing of the move left.
func TestMoveTenantCancelled(t *testing.T) {
	f := newMoveFixture(t, "")
	f.create("acme")
	// A transaction left open in the cluster holds the move up where it
	// makes the replication slot (which waits for running transactions).
	blocker, err := f.pools["default"].Begin(context.Background())
	require.NoError(t, err)
	_, err = blocker.Exec(context.Background(), `SELECT txid_current()`)
	require.NoError(t, err)
	defer func() { _ = blocker.Rollback(context.Background()) }()

	resp, err := f.client.MoveTenant(operator(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "second"})
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	_, err = f.operations().CancelOperation(operator(), &registryv1.CancelOperationRequest{Name: resp.GetOperation().GetName()})
	require.NoError(t, err)
	op := f.waitMove(t, resp.GetOperation())
	require.Equal(t, int32(codes.Canceled), op.GetError().GetCode(), op.GetError().GetMessage())
	require.Equal(t, registryv1.MoveMetadata_PHASE_ABANDONED, op.GetMoveMetadata().GetPhase())
	require.NoError(t, blocker.Rollback(context.Background()))

	got, err := f.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	require.Equal(t, "default", got.GetTenant().GetPlacement())
	require.False(t, schemaExists(t, f.pools["second"], "acme"), "the target copy was dropped")
	require.NoError(t, tenantdb.InTenant(context.Background(), f.pools["default"], "acme", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO notes (owner, body) VALUES (gen_random_uuid(), 'still here')`)
		return err
	}), "the tenant is writable where it was")
	var leftovers int
	require.NoError(t, f.pools["default"].QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)`).Scan(&leftovers))
	require.Zero(t, leftovers, "slots and publications left on the source")
}

// TestMoveTenantResumedAfterCrash: the registry running a move stops in
// the middle of it; another registry resumes the move and finishes it,
// and no acknowledged write is lost.
func TestMoveTenantResumedAfterCrash(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	f := newMoveFixture(t, dbURL)
	f.create("acme")
	w := f.startWriter(t, "acme")
	eventually(t, 10*time.Second, "writes before the move", func() bool { return w.n.Load() >= 100 })

	// Held up at the slot, as in TestMoveTenantCancelled, so that the
	// registry is sure to stop mid-move.
	blocker, err := f.pools["default"].Begin(context.Background())
	require.NoError(t, err)
	_, err = blocker.Exec(context.Background(), `SELECT txid_current()`)
	require.NoError(t, err)
	resp, err := f.client.MoveTenant(operator(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "second"})
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	f.stop()
	require.NoError(t, blocker.Rollback(context.Background()))

	// The writer's registry is gone: it follows the new one's answers.
	second := startRegistry(t, dbURL, withPlacement("second", f.pools["second"].Config().ConnString()))
	f.registry = second
	f.tenants.Store(&second.client)
	op := f.waitMove(t, resp.GetOperation())
	require.Nil(t, op.GetError(), "move failed: %v", op.GetError())
	require.Equal(t, registryv1.MoveMetadata_PHASE_SWITCHED, op.GetMoveMetadata().GetPhase())
	after := w.n.Load()
	eventually(t, 10*time.Second, "writes after the move", func() bool { return w.n.Load() >= after+50 })
	w.stop.Store(true)
	require.NoError(t, <-w.errs)

	var count int
	require.NoError(t, tenantdb.InTenant(context.Background(), f.pools["second"], "acme", func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM notes`).Scan(&count)
	}))
	require.Equal(t, int(w.n.Load()), count, "the target has exactly the acknowledged writes")
}

package server_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/tenant-registry/internal/config"
)

func (r *registry) operations() registryv1.OperationServiceClient {
	return registryv1.NewOperationServiceClient(r.conn)
}

// migrate starts a fleet migration and waits for it to end.
func (r *registry) migrate(req *registryv1.MigrateTenantsRequest) *registryv1.Operation {
	r.t.Helper()
	resp, err := r.components().MigrateTenants(operator(), req)
	require.NoError(r.t, err)
	return r.wait(resp.GetOperation().GetName())
}

func (r *registry) wait(name string) *registryv1.Operation {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := r.operations().WaitOperation(operator(), &registryv1.WaitOperationRequest{Name: name, Timeout: durationpb.New(10 * time.Second)})
		require.NoError(r.t, err)
		if resp.GetOperation().GetDone() {
			return resp.GetOperation()
		}
		require.True(r.t, time.Now().Before(deadline), "operation %s did not end: %v", name, resp.GetOperation().GetMetadata())
	}
}

func notesV2() *registryv1.Component {
	return notes(&registryv1.Migration{Version: 3, Name: "add_pinned", Sql: `ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false`})
}

func TestFleetMigrationBringsExistingTenantsUpToDate(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	_, err := r.register(notes())
	require.NoError(t, err)
	for _, slug := range []string{"ann", "bob", "cid"} {
		r.create(slug)
	}
	_, err = r.register(notesV2())
	require.NoError(t, err)

	t.Run("a dry run lists what would change and changes nothing", func(t *testing.T) {
		op := r.migrate(&registryv1.MigrateTenantsRequest{DryRun: true})
		require.Nil(t, op.GetError())
		var planned []string
		for _, p := range op.GetResult().GetPlanned() {
			planned = append(planned, fmt.Sprintf("%s %s %d→%d", p.GetTenant(), p.GetComponent(), p.GetFromVersion(), p.GetToVersion()))
		}
		sort.Strings(planned)
		require.Equal(t, []string{"tenants/ann components/notes 2→3", "tenants/bob components/notes 2→3", "tenants/cid components/notes 2→3"}, planned)
		require.Equal(t, map[string][2]int32{"notes": {2, 3}}, r.versions("ann"))
	})

	t.Run("a migration brings every stale tenant to the latest version", func(t *testing.T) {
		op := r.migrate(&registryv1.MigrateTenantsRequest{})
		require.Nil(t, op.GetError())
		require.Empty(t, op.GetResult().GetFailures())
		require.EqualValues(t, 3, op.GetMetadata().GetTotal())
		require.EqualValues(t, 3, op.GetMetadata().GetDone())
		require.Equal(t, []string{"components/notes"}, op.GetMetadata().GetComponents())
		for _, slug := range []string{"ann", "bob", "cid"} {
			require.Equal(t, map[string][2]int32{"notes": {3, 3}}, r.versions(slug))
			require.Contains(t, columns(t, r.db, slug, "notes"), "pinned")
		}
	})

	t.Run("a second migration finds nothing to do", func(t *testing.T) {
		op := r.migrate(&registryv1.MigrateTenantsRequest{Components: []string{"components/notes"}})
		require.Nil(t, op.GetError())
		require.Zero(t, op.GetMetadata().GetTotal())
	})

	t.Run("operations are listed newest first and can be read back", func(t *testing.T) {
		list, err := r.operations().ListOperations(operator(), &registryv1.ListOperationsRequest{PageSize: 2})
		require.NoError(t, err)
		require.Len(t, list.GetOperations(), 2)
		require.NotEmpty(t, list.GetNextPageToken())
		rest, err := r.operations().ListOperations(operator(), &registryv1.ListOperationsRequest{PageSize: 2, PageToken: list.GetNextPageToken()})
		require.NoError(t, err)
		require.Len(t, rest.GetOperations(), 1)
		require.True(t, rest.GetOperations()[0].GetMetadata().GetDryRun(), "the oldest is the dry run")
	})

	t.Run("bad requests are refused", func(t *testing.T) {
		_, err := r.components().MigrateTenants(operator(), &registryv1.MigrateTenantsRequest{Components: []string{"components/nothing"}})
		requireCode(t, err, codes.NotFound)
		_, err = r.components().MigrateTenants(operator(), &registryv1.MigrateTenantsRequest{Concurrency: 1000})
		requireCode(t, err, codes.InvalidArgument)
		_, err = r.operations().GetOperation(operator(), &registryv1.GetOperationRequest{Name: "operations/not-a-uuid"})
		requireCode(t, err, codes.NotFound)
		_, err = r.components().MigrateTenants(as(serviceToken), &registryv1.MigrateTenantsRequest{})
		requireCode(t, err, codes.PermissionDenied)
	})
}

// A tenant that fails (broken by hand, or locked by a long transaction) is
// reported with its error, and the others are migrated.
func TestFleetMigrationReportsFailingTenantsAndGoesOn(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	_, err := r.register(notes())
	require.NoError(t, err)
	for _, slug := range []string{"good", "broken", "locked"} {
		r.create(slug)
	}
	ctx := context.Background()
	_, err = r.db.Exec(ctx, `DROP TABLE broken.notes`)
	require.NoError(t, err)
	// A long transaction holds the locked tenant's table.
	holder, err := r.db.Begin(ctx)
	require.NoError(t, err)
	defer holder.Rollback(ctx)
	_, err = holder.Exec(ctx, `LOCK TABLE locked.notes IN ACCESS SHARE MODE`)
	require.NoError(t, err)

	_, err = r.register(notesV2())
	require.NoError(t, err)
	op := r.migrate(&registryv1.MigrateTenantsRequest{LockTimeout: durationpb.New(200 * time.Millisecond)})
	require.Nil(t, op.GetError())
	require.EqualValues(t, 3, op.GetMetadata().GetTotal())
	require.EqualValues(t, 1, op.GetMetadata().GetDone())
	require.EqualValues(t, 2, op.GetMetadata().GetFailed())
	failures := map[string]*registryv1.TenantMigrationFailure{}
	for _, f := range op.GetResult().GetFailures() {
		failures[f.GetTenant()] = f
	}
	require.Len(t, failures, 2)
	require.Contains(t, failures["tenants/broken"].GetMessage(), `"notes" does not exist`)
	require.EqualValues(t, 3, failures["tenants/broken"].GetVersion())
	require.Contains(t, failures["tenants/locked"].GetMessage(), "lock timeout")
	require.Equal(t, map[string][2]int32{"notes": {3, 3}}, r.versions("good"))
	require.Equal(t, map[string][2]int32{"notes": {2, 3}}, r.versions("locked"), "the locked tenant was not half-migrated")

	// Once the long transaction is over, a new migration finishes the job
	// for the tenant that was only locked.
	require.NoError(t, holder.Rollback(ctx))
	op = r.migrate(&registryv1.MigrateTenantsRequest{})
	require.EqualValues(t, 2, op.GetMetadata().GetTotal())
	require.EqualValues(t, 1, op.GetMetadata().GetDone())
	require.Equal(t, map[string][2]int32{"notes": {3, 3}}, r.versions("locked"))
}

// An operation outlives its replica: stopped mid-way, or crashed with its
// lease still on the books, it is resumed by the next registry on the same
// database and finishes every tenant exactly once.
func TestFleetMigrationSurvivesTheRegistry(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	withLease := func(c *config.Config) { c.OperationLease = time.Second }
	r := startRegistry(t, url, withLease)
	_, err := r.register(notes())
	require.NoError(t, err)
	const tenants = 24
	for i := range tenants {
		r.create(fmt.Sprintf("t%02d", i))
	}
	// Each tenant's migration takes a while, so the operation is caught
	// in the middle.
	_, err = r.register(notes(&registryv1.Migration{Version: 3, Name: "slow", Sql: `SELECT pg_sleep(0.1); ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false`}))
	require.NoError(t, err)
	resp, err := r.components().MigrateTenants(operator(), &registryv1.MigrateTenantsRequest{Concurrency: 1})
	require.NoError(t, err)
	name := resp.GetOperation().GetName()
	progress := func(r *registry) int32 {
		got, err := r.operations().GetOperation(operator(), &registryv1.GetOperationRequest{Name: name})
		require.NoError(t, err)
		return got.GetOperation().GetMetadata().GetDone()
	}
	waitDone := func(r *registry, n int32) {
		deadline := time.Now().Add(30 * time.Second)
		for progress(r) < n {
			require.True(t, time.Now().Before(deadline), "the operation made no progress")
			time.Sleep(20 * time.Millisecond) // polling the operation, as a client would
		}
	}
	waitDone(r, 3)
	r.stop() // a graceful stop releases the operation

	r2 := startRegistry(t, url, withLease)
	waitDone(r2, progress(r2)+2)
	// Now a crash: the replica vanishes with the lease on the books. Its
	// lease must run out before another replica resumes the operation.
	r2.stop()
	db, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(context.Background(), `UPDATE tenantry_registry.operations
		SET lease_owner = 'a-replica-that-crashed', lease_expires = now() + interval '1 second' WHERE state = 'RUNNING'`)
	require.NoError(t, err)

	r3 := startRegistry(t, url, withLease)
	op := r3.wait(name)
	require.Nil(t, op.GetError())
	require.Empty(t, op.GetResult().GetFailures())
	require.EqualValues(t, tenants, op.GetMetadata().GetDone(), "every tenant done, each counted once")
	for i := range tenants {
		slug := fmt.Sprintf("t%02d", i)
		require.Equal(t, map[string][2]int32{"notes": {3, 3}}, r3.versions(slug))
		require.Contains(t, columns(t, r3.db, slug, "notes"), "pinned")
	}
}

// Cancelling stops a migration between tenants: no new tenant starts.
func TestFleetMigrationCanBeCancelled(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	_, err := r.register(notes())
	require.NoError(t, err)
	for i := range 12 {
		r.create(fmt.Sprintf("c%02d", i))
	}
	_, err = r.register(notes(&registryv1.Migration{Version: 3, Name: "slow", Sql: `SELECT pg_sleep(0.2)`}))
	require.NoError(t, err)
	resp, err := r.components().MigrateTenants(operator(), &registryv1.MigrateTenantsRequest{Concurrency: 1})
	require.NoError(t, err)
	cancelled, err := r.operations().CancelOperation(operator(), &registryv1.CancelOperationRequest{Name: resp.GetOperation().GetName()})
	require.NoError(t, err)
	require.True(t, cancelled.GetOperation().GetMetadata().GetCancelRequested())
	op := r.wait(resp.GetOperation().GetName())
	require.NotNil(t, op.GetError())
	require.EqualValues(t, codes.Canceled, op.GetError().GetCode())
	require.Equal(t, "OPERATION_CANCELLED", op.GetError().GetReason())
	require.Less(t, op.GetMetadata().GetDone(), int32(12), "the cancelled migration went on to the end")
}

// A component's own credential migrates its own component, optionally of
// named tenants (identity does so at start-up and for a tenant it finds
// behind), and follows only those operations.
func TestAComponentMigratesItsOwnTenantsOnly(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	_, err := r.register(notes())
	require.NoError(t, err)
	_, err = r.register(vault())
	require.NoError(t, err)
	for _, slug := range []string{"ann", "bob"} {
		r.create(slug)
	}
	_, err = r.register(notesV2())
	require.NoError(t, err)
	own := as(r.credential("notes"))

	t.Run("only the named tenants are migrated", func(t *testing.T) {
		resp, err := r.components().MigrateTenants(own, &registryv1.MigrateTenantsRequest{
			Components: []string{"components/notes"}, Tenants: []string{"tenants/ann"}})
		require.NoError(t, err)
		require.Equal(t, []string{"tenants/ann"}, resp.GetOperation().GetMetadata().GetTenants())
		got, err := r.operations().GetOperation(own, &registryv1.GetOperationRequest{Name: resp.GetOperation().GetName()})
		require.NoError(t, err, "a component follows its own operation")
		var done *registryv1.Operation
		for done = got.GetOperation(); !done.GetDone(); {
			w, err := r.operations().WaitOperation(own, &registryv1.WaitOperationRequest{Name: done.GetName(), Timeout: durationpb.New(10 * time.Second)})
			require.NoError(t, err)
			done = w.GetOperation()
		}
		require.Nil(t, done.GetError())
		require.EqualValues(t, 1, done.GetMetadata().GetDone())
		require.Equal(t, map[string][2]int32{"notes": {3, 3}, "vault": {1, 1}}, r.versions("ann"))
		require.Equal(t, map[string][2]int32{"notes": {2, 3}, "vault": {1, 1}}, r.versions("bob"), "bob was not named")
	})

	t.Run("a tenant that does not exist is NOT_FOUND, and a bad name INVALID_ARGUMENT", func(t *testing.T) {
		_, err := r.components().MigrateTenants(own, &registryv1.MigrateTenantsRequest{
			Components: []string{"components/notes"}, Tenants: []string{"tenants/nobody"}})
		st := requireCode(t, err, codes.NotFound)
		require.Contains(t, st.Message(), `"nobody"`)
		_, err = r.components().MigrateTenants(own, &registryv1.MigrateTenantsRequest{
			Components: []string{"components/notes"}, Tenants: []string{"ann"}})
		requireCode(t, err, codes.InvalidArgument)
	})

	t.Run("another component, or all of them, is refused", func(t *testing.T) {
		for name, comps := range map[string][]string{
			"another":       {"components/vault"},
			"all (none)":    nil,
			"own and other": {"components/notes", "components/vault"},
		} {
			_, err := r.components().MigrateTenants(own, &registryv1.MigrateTenantsRequest{Components: comps})
			st := requireCode(t, err, codes.PermissionDenied)
			require.Equal(t, "COMPONENT_NOT_YOURS", reasonOf(st), name)
		}
	})

	t.Run("an operation migrating anything else is invisible to it", func(t *testing.T) {
		op := r.migrate(&registryv1.MigrateTenantsRequest{})
		_, err := r.operations().GetOperation(own, &registryv1.GetOperationRequest{Name: op.GetName()})
		requireCode(t, err, codes.NotFound)
		_, err = r.operations().WaitOperation(own, &registryv1.WaitOperationRequest{Name: op.GetName()})
		requireCode(t, err, codes.NotFound)
		_, err = r.operations().ListOperations(own, &registryv1.ListOperationsRequest{})
		requireCode(t, err, codes.PermissionDenied)
		_, err = r.operations().CancelOperation(own, &registryv1.CancelOperationRequest{Name: op.GetName()})
		requireCode(t, err, codes.PermissionDenied)
	})
}

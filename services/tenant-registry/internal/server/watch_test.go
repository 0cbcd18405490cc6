package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/pgtest"
)

type watchEvent struct {
	typ  registryv1.WatchTenantsResponse_EventType
	slug string
	rev  int64
}

func recvEvent(t *testing.T, stream interface {
	Recv() (*registryv1.WatchTenantsResponse, error)
}) watchEvent {
	t.Helper()
	ev, err := stream.Recv()
	require.NoError(t, err)
	return watchEvent{typ: ev.GetType(), slug: ev.GetTenant().GetSlug(), rev: ev.GetRevision()}
}

func TestWatchTenants(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	r.create("first")
	r.create("second")

	ctx, cancel := context.WithTimeout(operator(), 30*time.Second)
	defer cancel()
	stream, err := r.client.WatchTenants(ctx, &registryv1.WatchTenantsRequest{})
	require.NoError(t, err)

	// A snapshot of every tenant, then SYNCED at the current revision.
	require.Equal(t, "first", recvEvent(t, stream).slug)
	require.Equal(t, "second", recvEvent(t, stream).slug)
	synced := recvEvent(t, stream)
	require.Equal(t, registryv1.WatchTenantsResponse_EVENT_TYPE_SYNCED, synced.typ)

	// Live changes follow in order.
	r.create("third")
	_, err = r.client.SuspendTenant(operator(), &registryv1.SuspendTenantRequest{Name: "tenants/first"})
	require.NoError(t, err)
	_, err = r.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/second", Force: true})
	require.NoError(t, err)

	created := recvEvent(t, stream)
	require.Equal(t, watchEvent{registryv1.WatchTenantsResponse_EVENT_TYPE_UPSERT, "third", created.rev}, created)
	require.Greater(t, created.rev, synced.rev)
	suspended := recvEvent(t, stream)
	require.Equal(t, "first", suspended.slug)
	deleted := recvEvent(t, stream)
	require.Equal(t, "second", deleted.slug)
	require.Equal(t, registryv1.WatchTenantsResponse_EVENT_TYPE_UPSERT, deleted.typ)
	purged := recvEvent(t, stream)
	require.Equal(t, watchEvent{registryv1.WatchTenantsResponse_EVENT_TYPE_PURGE, "second", purged.rev}, purged)
	cancel()

	// Resuming from a revision replays exactly what came after it.
	ctx2, cancel2 := context.WithTimeout(operator(), 30*time.Second)
	defer cancel2()
	resumed, err := r.client.WatchTenants(ctx2, &registryv1.WatchTenantsRequest{StartRevision: created.rev})
	require.NoError(t, err)
	require.Equal(t, suspended, recvEvent(t, resumed))
	require.Equal(t, deleted, recvEvent(t, resumed))
	require.Equal(t, purged, recvEvent(t, resumed))
	end := recvEvent(t, resumed)
	require.Equal(t, registryv1.WatchTenantsResponse_EVENT_TYPE_SYNCED, end.typ)
	require.Equal(t, purged.rev, end.rev)

	// A revision from the future is refused.
	bad, err := r.client.WatchTenants(operator(), &registryv1.WatchTenantsRequest{StartRevision: purged.rev + 1000})
	require.NoError(t, err)
	_, err = bad.Recv()
	requireCode(t, err, codes.InvalidArgument)
}

func TestReplicasStayCoherent(t *testing.T) {
	t.Parallel()
	a := startRegistry(t, "")
	// The second replica shares the first one's database.
	b := startRegistry(t, a.db.Config().ConnString())

	a.create("shared")
	eventually(t, 10*time.Second, "replica b to resolve a tenant created on a", func() bool {
		res, err := b.client.ResolveTenant(operator(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: "shared.localhost"}})
		return err == nil && res.GetTenant().GetState() == registryv1.Tenant_STATE_ACTIVE
	})
	_, err := b.client.SuspendTenant(operator(), &registryv1.SuspendTenantRequest{Name: "tenants/shared"})
	require.NoError(t, err)
	eventually(t, 10*time.Second, "replica a to see the suspension made on b", func() bool {
		res, err := a.client.ResolveTenant(operator(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "shared"}})
		return err == nil && res.GetTenant().GetState() == registryv1.Tenant_STATE_SUSPENDED
	})
}

func TestDatabaseRestartWhileRunning(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	url := cluster.URL("postgres")
	a := startRegistry(t, url)
	b := startRegistry(t, url)
	a.create("before")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Restart(ctx))

	// The registry recovers without a restart of its own: writes succeed
	// again once the database is back (the first may see it unavailable).
	eventually(t, 30*time.Second, "create to succeed after the database restart", func() bool {
		_, err := a.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: "after"})
		return err == nil
	})
	// Its change-log listener reconnected: a change made by the other
	// replica reaches it through NOTIFY (or the poll fallback).
	eventually(t, 30*time.Second, "b to be able to write again", func() bool {
		_, err := b.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{TenantId: "from-b"})
		return err == nil
	})
	eventually(t, 30*time.Second, "a to resolve the tenant created on b after the restart", func() bool {
		res, err := a.client.ResolveTenant(operator(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Host{Host: "from-b.localhost"}})
		return err == nil && res.GetTenant().GetSlug() == "from-b"
	})
	res, err := a.client.ResolveTenant(operator(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "before"}})
	require.NoError(t, err)
	require.Equal(t, registryv1.Tenant_STATE_ACTIVE, res.GetTenant().GetState())
}

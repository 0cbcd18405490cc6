package server

import (
	"sort"

	"google.golang.org/grpc"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/fault"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// WatchTenants implements TenantServiceServer. It subscribes to the index
// first and then replays (or snapshots) up to the subscription's revision,
// so no event falls between the replay and the live feed.
func (s *TenantServer) WatchTenants(req *registryv1.WatchTenantsRequest, stream grpc.ServerStreamingServer[registryv1.WatchTenantsResponse]) error {
	ctx := stream.Context()
	start := req.GetStartRevision()
	if start < 0 {
		return fault.Invalid("start_revision", "START_REVISION_INVALID", "start_revision must be 0 (snapshot) or a revision seen before")
	}
	// A replica may lag the database by a notification; catch up first so a
	// revision returned by another replica is not mistaken for the future.
	if err := s.log.Sync(ctx); err != nil {
		return err
	}
	sub, snapshot, at := s.m.Index().Subscribe(s.WatchBuffer, start == 0)
	defer sub.Close()
	if start > at {
		return fault.Invalid("start_revision", "START_REVISION_INVALID",
			"start_revision %d is ahead of the registry's revision %d", start, at)
	}
	send := func(typ registryv1.WatchTenantsResponse_EventType, t *tenant.Tenant, rev int64) error {
		return stream.Send(&registryv1.WatchTenantsResponse{Type: typ, Tenant: toProto(t), Revision: rev})
	}
	if start == 0 {
		sort.Slice(snapshot, func(i, j int) bool { return snapshot[i].Slug < snapshot[j].Slug })
		for _, t := range snapshot {
			if err := send(registryv1.WatchTenantsResponse_EVENT_TYPE_UPSERT, t, t.Revision); err != nil {
				return err
			}
		}
	} else {
		err := s.log.Events(ctx, start, at, func(ev tenant.Event) error {
			return send(eventType(ev.Kind), ev.Tenant, ev.Revision)
		})
		if err != nil {
			return err
		}
	}
	if err := send(registryv1.WatchTenantsResponse_EVENT_TYPE_SYNCED, nil, at); err != nil {
		return err
	}
	last := at
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.Events():
			if !ok {
				return fault.New(fault.Unavailable, "WATCH_FELL_BEHIND",
					"this watch fell too far behind; resume with start_revision=%d", last).
					WithMetadata("resume_revision", itoa(last))
			}
			if ev.Revision <= last {
				continue
			}
			if err := send(eventType(ev.Kind), ev.Tenant, ev.Revision); err != nil {
				return err
			}
			last = ev.Revision
		}
	}
}

func eventType(k tenant.EventKind) registryv1.WatchTenantsResponse_EventType {
	if k == tenant.Purge {
		return registryv1.WatchTenantsResponse_EVENT_TYPE_PURGE
	}
	return registryv1.WatchTenantsResponse_EVENT_TYPE_UPSERT
}

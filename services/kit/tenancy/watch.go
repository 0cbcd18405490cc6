package tenancy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
)

// Reconnection delays of the watch. The first retry is quick because most
// interruptions are a registry restarting or a connection being recycled;
// the cap bounds how long the cache can lag once the registry is back.
const (
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 2 * time.Second
)

// reasonStartRevisionInvalid is the registry's reason for a start revision
// it does not know.
const reasonStartRevisionInvalid = "START_REVISION_INVALID"

// Run keeps the cache coherent with the registry until ctx ends. It opens a
// WatchTenants stream, loads the snapshot of all tenants it starts with,
// then applies each change as it comes: an UPSERT replaces the cached
// tenant, a PURGE removes it and calls the OnPurge hooks. When the stream
// breaks, Run reconnects with a growing, jittered delay and resumes after the
// last change it applied, so nothing is missed; when the registry does not
// know that revision any more (its history was lost), Run starts over from a
// snapshot and reports the tenants missing from it as purged.
//
// Give the client's connection keepalive parameters so that a registry that
// vanishes without closing connections is noticed. Run returns once ctx is
// done; it panics if called while another Run of the same Resolver runs,
// since two watches would apply changes out of order.
func (r *Resolver) Run(ctx context.Context) {
	if !r.running.CompareAndSwap(false, true) {
		panic("tenancy: Resolver.Run called while another Run is running")
	}
	defer r.running.Store(false)

	// The first stream loads a snapshot even if answers were cached before:
	// the cache cannot know what happened before it watched.
	w := &watch{r: r, needSnapshot: true}
	delay := minRetryDelay
	for {
		err := w.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if w.synced {
			delay = minRetryDelay
		}
		if invalidStart(err) && !w.needSnapshot {
			r.logger.WarnContext(ctx, "the tenant registry does not know the watch's revision; reloading all tenants",
				"revision", r.cache.watchRevision(), "error", err)
			w.needSnapshot = true
			continue
		}
		wait := delay/2 + rand.N(delay/2+1)
		r.logger.WarnContext(ctx, "tenant watch interrupted; reconnecting",
			"error", err, "retry_in", wait, "revision", r.cache.watchRevision())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		delay = min(delay*2, maxRetryDelay)
	}
}

// watch is the state of Run between streams.
type watch struct {
	r *Resolver
	// needSnapshot makes the next stream start from revision 0.
	needSnapshot bool
	// synced is set when the last stream reached its SYNCED event.
	synced bool
}

// stream runs one WatchTenants stream until it breaks, and returns why.
func (w *watch) stream(ctx context.Context) error {
	r := w.r
	w.synced = false
	start := int64(0)
	if !w.needSnapshot {
		start = r.cache.watchRevision()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Waiting for the connection to be ready, rather than failing at once,
	// spares a retry loop while the registry is down; the channel's own
	// backoff paces the reconnection.
	s, err := r.client.WatchTenants(r.authorized(ctx), &registryv1.WatchTenantsRequest{StartRevision: start},
		grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("open tenant watch at revision %d: %w", start, err)
	}
	// Snapshot events are collected and loaded at once on SYNCED, so that
	// lookups never see half a snapshot.
	var snapshot []entry
	snapshotting := start == 0
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("the tenant registry ended the watch")
		}
		if err != nil {
			return fmt.Errorf("receive tenant watch event: %w", err)
		}
		switch ev.GetType() {
		case registryv1.WatchTenantsResponse_EVENT_TYPE_UPSERT:
			e := fromProto(ev.GetTenant())
			if snapshotting {
				snapshot = append(snapshot, e)
				continue
			}
			r.cache.applyUpsert(e, ev.GetRevision())
		case registryv1.WatchTenantsResponse_EVENT_TYPE_PURGE:
			t := fromProto(ev.GetTenant()).tenant
			if snapshotting {
				// A snapshot only holds tenants that exist; be safe anyway.
				continue
			}
			if r.cache.applyPurge(t, ev.GetRevision()) {
				r.logger.InfoContext(ctx, "tenant purged", "tenant", t.Slug, "uid", t.UID)
				r.purged(t)
			}
		case registryv1.WatchTenantsResponse_EVENT_TYPE_SYNCED:
			w.sync(ctx, snapshotting, snapshot, ev.GetRevision())
			snapshotting, snapshot = false, nil
		default:
			r.logger.DebugContext(ctx, "ignoring an unknown tenant watch event", "type", ev.GetType().String())
		}
	}
}

// sync handles a SYNCED event at rev: it loads the snapshot, if the stream
// began with one, and marks the resolver ready.
func (w *watch) sync(ctx context.Context, snapshotting bool, snapshot []entry, rev int64) {
	r := w.r
	if snapshotting {
		gone := r.cache.replaceAll(snapshot, rev)
		w.needSnapshot = false
		for _, t := range gone {
			r.logger.InfoContext(ctx, "tenant gone from the registry", "tenant", t.Slug, "uid", t.UID)
		}
		r.purged(gone...)
	} else {
		r.cache.caughtUp(rev)
	}
	if !w.synced {
		r.logger.InfoContext(ctx, "tenant watch synced",
			"revision", rev, "snapshot", snapshotting, "tenants", r.cache.size())
	}
	w.synced = true
	r.ready.Store(true)
}

// invalidStart reports whether err says the watch's start revision is not
// one the registry knows.
func invalidStart(err error) bool {
	return status.Code(err) == codes.InvalidArgument || errorReason(err) == reasonStartRevisionInvalid
}

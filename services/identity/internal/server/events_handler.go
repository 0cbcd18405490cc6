package server

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
)

// eventServer serves AccountEventService and WebhookService: thin
// handlers over account.Manager, plus the live part of the watch.
type eventServer struct {
	identityv1.UnimplementedAccountEventServiceServer
	identityv1.UnimplementedWebhookServiceServer
	s   *Server
	hub *eventHub
	// tenants finds a tenant as the registry now has it (the resolver's
	// BySlug), for a watch to follow its tenant; nil in tests that build
	// the server without one.
	tenants func(ctx context.Context, slug string) (tenancy.Tenant, error)
}

var (
	_ identityv1.AccountEventServiceServer = (*eventServer)(nil)
	_ identityv1.WebhookServiceServer      = (*eventServer)(nil)
)

// watchPage is how many events one read of a watch fetches.
const watchPage = 500

// watchReread is how often a watch reads its tenant's events without a
// notification: a notification lost while the listener reconnected is
// made up for within this time.
const watchReread = 5 * time.Second

// WatchAccountEvents implements AccountEventServiceServer. It subscribes
// to the tenant's notifications before reading history, so an event
// committed between the read and the subscription is still read.
func (e *eventServer) WatchAccountEvents(req *identityv1.WatchAccountEventsRequest, stream grpc.ServerStreamingServer[identityv1.WatchAccountEventsResponse]) error {
	ctx := stream.Context()
	t := tenantFrom(ctx)
	sub := e.hub.subscribe(t.Schema)
	defer e.hub.unsubscribe(t.Schema, sub)

	// admitted decides again, before each page is sent, what was decided
	// when the watch opened, and ends the watch with the error a new call
	// would get:
	//   - the tenant, as the resolver now has it: one suspended or deleted
	//     since is refused as tenantScope refuses it, and one moved to
	//     another placement is read there (the tenant the call began with
	//     would go on reading the old copy, read-only and frozen, until
	//     its grace ends);
	//   - the caller (authn.Recheck): an admin who has since logged out,
	//     been demoted, disabled or deleted, or whose access token has
	//     expired. The session cache answers without a query. The wake-up
	//     and the session cache's invalidation come by separate
	//     notifications, so the event that records a demotion may still
	//     reach the admin it demotes; the next wake-up, within the re-read,
	//     ends the watch.
	admitted := func() error {
		if e.tenants != nil {
			now, err := e.tenants(ctx, t.Slug)
			if err == nil && now.UID != t.UID {
				// The slug was freed by a purge and taken by another tenant.
				err = fault.New(fault.NotFound, tenancy.ReasonTenantNotFound, "tenant %q does not exist", t.Slug)
			}
			if err == nil {
				err = tenancy.RequireActive(now)
			}
			if err != nil {
				return err
			}
			t = now
			ctx = context.WithValue(ctx, tenantKey{}, now)
		}
		return authn.Recheck(ctx)
	}
	last := req.GetStartRevision()
	// sendAfter sends every event after last, page by page, checking the
	// watch is still admitted before each page.
	sendAfter := func() (int64, error) {
		var upTo int64
		for {
			if err := admitted(); err != nil {
				return 0, err
			}
			page, err := e.s.accounts.AccountEvents(ctx, t, last, watchPage)
			if err != nil {
				return 0, err
			}
			upTo = page.Last
			for _, ev := range page.Events {
				pe, err := accountEventToProto(ev)
				if err != nil {
					return 0, err
				}
				if err := stream.Send(&identityv1.WatchAccountEventsResponse{
					Kind: identityv1.WatchAccountEventsResponse_KIND_EVENT, Event: pe, Revision: ev.Revision}); err != nil {
					return 0, err
				}
				last = ev.Revision
			}
			if len(page.Events) < watchPage {
				return upTo, nil
			}
		}
	}
	if _, err := sendAfter(); err != nil {
		return err
	}
	if err := stream.Send(&identityv1.WatchAccountEventsResponse{
		Kind: identityv1.WatchAccountEventsResponse_KIND_SYNCED, Revision: last}); err != nil {
		return err
	}
	reread := time.NewTicker(watchReread)
	defer reread.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub:
		case <-reread.C:
		}
		if _, err := sendAfter(); err != nil {
			if ctx.Err() != nil {
				// The caller left meanwhile: nobody to tell.
				return nil
			}
			return err
		}
	}
}

func accountEventToProto(ev account.AccountEvent) (*identityv1.AccountEvent, error) {
	data, err := structpb.NewStruct(ev.Data)
	if err != nil {
		return nil, fault.New(fault.Internal, "INTERNAL", "internal error").WithCause(err)
	}
	return &identityv1.AccountEvent{Revision: ev.Revision, Type: string(ev.Type), User: "users/" + ev.UserID,
		CreateTime: ts(ev.CreateTime), Data: data}, nil
}

// ListAuditEvents implements AccountEventServiceServer.
func (e *eventServer) ListAuditEvents(ctx context.Context, req *identityv1.ListAuditEventsRequest) (*identityv1.ListAuditEventsResponse, error) {
	limit, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q := account.AuditQuery{Event: req.GetEvent()}
	if req.GetUser() != "" {
		if q.UserID, err = userID("user", req.GetUser()); err != nil {
			return nil, err
		}
	}
	if req.GetStartTime() != nil {
		q.From = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		q.To = req.GetEndTime().AsTime()
	}
	filter := auditFilterKey(req)
	if tok := req.GetPageToken(); tok != "" {
		if q.BeforeID, err = decodeAfterToken(tok, filter); err != nil {
			return nil, err
		}
	}
	recs, more, err := e.s.accounts.AuditEvents(ctx, tenantFrom(ctx), q, limit)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListAuditEventsResponse{}
	for _, r := range recs {
		details, err := structpb.NewStruct(r.Details)
		if err != nil {
			return nil, fault.New(fault.Internal, "INTERNAL", "internal error").WithCause(err)
		}
		a := &identityv1.AuditEvent{Id: r.ID, Time: ts(r.Time), Event: r.Event, Actor: r.Actor, ClientIp: r.ClientIP, Details: details}
		if r.UserID != "" {
			a.User = "users/" + r.UserID
		}
		resp.AuditEvents = append(resp.AuditEvents, a)
	}
	if more {
		resp.NextPageToken = encodeAfterToken(recs[len(recs)-1].ID, filter)
	}
	return resp, nil
}

// auditFilterKey is what a page token is bound to: a token of one query
// is refused by another, rather than paging it from a wrong place.
func auditFilterKey(req *identityv1.ListAuditEventsRequest) string {
	return strings.Join([]string{req.GetUser(), req.GetEvent(),
		req.GetStartTime().AsTime().String(), req.GetEndTime().AsTime().String()}, "\x00")
}

// encodeAfterToken makes a page token of a position and the filter it
// belongs to. It is opaque, not secret: it holds only a number the caller
// could see anyway.
func encodeAfterToken(pos int64, filter string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(pos, 10) + "\x00" + filter))
}

func decodeAfterToken(tok, filter string) (int64, error) {
	bad := fault.Invalid("page_token", "PAGE_TOKEN_INVALID", "page_token is not a token of this query; start again without one")
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, bad
	}
	pos, f, ok := strings.Cut(string(raw), "\x00")
	n, err := strconv.ParseInt(pos, 10, 64)
	if !ok || err != nil || f != filter || n <= 0 {
		return 0, bad
	}
	return n, nil
}

func webhookEndpointID(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "webhookEndpoints/")
	if !ok || len(id) != 36 || strings.Count(id, "-") != 4 {
		return "", fault.Invalid(field, "WEBHOOK_ENDPOINT_NAME_INVALID", "%s must be a name like webhookEndpoints/123e4567-e89b-12d3-a456-426614174000", field)
	}
	return strings.ToLower(id), nil
}

func eventTypes(in []string) []account.AccountEventType {
	out := make([]account.AccountEventType, 0, len(in))
	for _, t := range in {
		out = append(out, account.AccountEventType(t))
	}
	return out
}

func webhookEndpointToProto(e *account.WebhookEndpoint) *identityv1.WebhookEndpoint {
	p := &identityv1.WebhookEndpoint{Name: "webhookEndpoints/" + e.ID, Url: e.URL, Enabled: e.Enabled,
		CreateTime: ts(e.CreateTime), UpdateTime: ts(e.UpdateTime), LastFailure: e.LastFailure}
	for _, t := range e.EventTypes {
		p.EventTypes = append(p.EventTypes, string(t))
	}
	if !e.LastFailureTime.IsZero() {
		p.LastFailureTime = ts(e.LastFailureTime)
	}
	return p
}

// CreateWebhookEndpoint implements WebhookServiceServer.
func (e *eventServer) CreateWebhookEndpoint(ctx context.Context, req *identityv1.CreateWebhookEndpointRequest) (*identityv1.CreateWebhookEndpointResponse, error) {
	in := req.GetWebhookEndpoint()
	if in == nil {
		return nil, fault.Invalid("webhook_endpoint", "WEBHOOK_ENDPOINT_REQUIRED", "webhook_endpoint is required")
	}
	ep, secret, err := e.s.accounts.CreateWebhookEndpoint(ctx, tenantFrom(ctx), account.WebhookEndpoint{
		URL: strings.TrimSpace(in.GetUrl()), EventTypes: eventTypes(in.GetEventTypes()), Enabled: in.GetEnabled()}, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.CreateWebhookEndpointResponse{WebhookEndpoint: webhookEndpointToProto(ep), Secret: secret}, nil
}

// ListWebhookEndpoints implements WebhookServiceServer.
func (e *eventServer) ListWebhookEndpoints(ctx context.Context, _ *identityv1.ListWebhookEndpointsRequest) (*identityv1.ListWebhookEndpointsResponse, error) {
	list, err := e.s.accounts.WebhookEndpoints(ctx, tenantFrom(ctx))
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListWebhookEndpointsResponse{}
	for _, ep := range list {
		resp.WebhookEndpoints = append(resp.WebhookEndpoints, webhookEndpointToProto(ep))
	}
	return resp, nil
}

// UpdateWebhookEndpoint implements WebhookServiceServer.
func (e *eventServer) UpdateWebhookEndpoint(ctx context.Context, req *identityv1.UpdateWebhookEndpointRequest) (*identityv1.UpdateWebhookEndpointResponse, error) {
	in := req.GetWebhookEndpoint()
	id, err := webhookEndpointID("webhook_endpoint.name", in.GetName())
	if err != nil {
		return nil, err
	}
	var up account.WebhookEndpointUpdate
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, fault.Invalid("update_mask", "UPDATE_MASK_REQUIRED", "update_mask must name the fields to change: url, event_types, enabled")
	}
	for _, p := range paths {
		switch p {
		case "url":
			u := in.GetUrl()
			up.URL = &u
		case "event_types":
			types := eventTypes(in.GetEventTypes())
			up.EventTypes = &types
		case "enabled":
			en := in.GetEnabled()
			up.Enabled = &en
		default:
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID", "update_mask names %q; only url, event_types and enabled can change", p)
		}
	}
	ep, err := e.s.accounts.UpdateWebhookEndpoint(ctx, tenantFrom(ctx), id, up, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.UpdateWebhookEndpointResponse{WebhookEndpoint: webhookEndpointToProto(ep)}, nil
}

// DeleteWebhookEndpoint implements WebhookServiceServer.
func (e *eventServer) DeleteWebhookEndpoint(ctx context.Context, req *identityv1.DeleteWebhookEndpointRequest) (*identityv1.DeleteWebhookEndpointResponse, error) {
	id, err := webhookEndpointID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := e.s.accounts.DeleteWebhookEndpoint(ctx, tenantFrom(ctx), id, clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.DeleteWebhookEndpointResponse{}, nil
}

// RotateWebhookEndpointSecret implements WebhookServiceServer.
func (e *eventServer) RotateWebhookEndpointSecret(ctx context.Context, req *identityv1.RotateWebhookEndpointSecretRequest) (*identityv1.RotateWebhookEndpointSecretResponse, error) {
	id, err := webhookEndpointID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	secret, err := e.s.accounts.RotateWebhookSecret(ctx, tenantFrom(ctx), id, clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.RotateWebhookEndpointSecretResponse{Secret: secret}, nil
}

// ListWebhookDeliveries implements WebhookServiceServer.
func (e *eventServer) ListWebhookDeliveries(ctx context.Context, req *identityv1.ListWebhookDeliveriesRequest) (*identityv1.ListWebhookDeliveriesResponse, error) {
	id, err := webhookEndpointID("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	limit, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	var before int64
	if tok := req.GetPageToken(); tok != "" {
		if before, err = decodeAfterToken(tok, req.GetParent()); err != nil {
			return nil, err
		}
	}
	t := tenantFrom(ctx)
	list, more, err := e.s.accounts.WebhookDeliveries(ctx, t, id, before, limit)
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListWebhookDeliveriesResponse{}
	for _, d := range list {
		p := &identityv1.WebhookDelivery{Revision: d.Revision, EventType: string(d.EventType), User: "users/" + d.UserID,
			WebhookId: webhookMessageID(t.UID, d.Revision), State: d.State, Attempts: int32(d.Attempts), LastError: d.LastError}
		if d.State == "pending" {
			p.NextAttemptTime = ts(d.NextAttemptTime)
		}
		if !d.DeliveredTime.IsZero() {
			p.DeliveredTime = ts(d.DeliveredTime)
		}
		resp.WebhookDeliveries = append(resp.WebhookDeliveries, p)
	}
	if more {
		resp.NextPageToken = encodeAfterToken(list[len(list)-1].Revision, req.GetParent())
	}
	return resp, nil
}

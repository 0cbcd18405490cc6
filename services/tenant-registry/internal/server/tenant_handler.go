package server

import (
	"context"
	"log/slog"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/fieldmask"
	"tenantry.dev/platform/rpcserver"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/tenant-registry/internal/listquery"
	"tenantry.dev/tenant-registry/internal/move"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// ChangeLog is what WatchTenants needs from the registry's change log.
type ChangeLog interface {
	tenant.Syncer
	// Events calls fn for each event after revision `after` up to `upTo`.
	Events(ctx context.Context, after, upTo int64, fn func(tenant.Event) error) error
}

// TenantServer serves tenantry.registry.v1.TenantService. Handlers validate
// and convert; the rules live in tenant.Manager.
type TenantServer struct {
	registryv1.UnimplementedTenantServiceServer

	m     *tenant.Manager
	log   ChangeLog
	mover *move.Mover // nil: MoveTenant is refused
	// WatchBuffer is how many events a watcher may fall behind before it
	// is disconnected and told to resume.
	WatchBuffer int
}

var _ registryv1.TenantServiceServer = (*TenantServer)(nil)

// NewTenantServer returns the gRPC face of a manager.
func NewTenantServer(m *tenant.Manager, log ChangeLog) *TenantServer {
	return &TenantServer{m: m, log: log, WatchBuffer: 4096}
}

func tagTenant(ctx context.Context, slug string) {
	rpcserver.AddLogAttrs(ctx, slog.String("tenant", slug))
}

// CreateTenant implements TenantServiceServer.
func (s *TenantServer) CreateTenant(ctx context.Context, req *registryv1.CreateTenantRequest) (*registryv1.CreateTenantResponse, error) {
	slug, err := tenantname.ParseSlug("tenant_id", req.GetTenantId())
	if err != nil {
		return nil, err
	}
	tagTenant(ctx, slug)
	in := req.GetTenant()
	if err := tenantname.ValidateDisplayName("tenant.display_name", in.GetDisplayName()); err != nil {
		return nil, err
	}
	if err := validateLabels("tenant.labels", in.GetLabels()); err != nil {
		return nil, err
	}
	if err := validatePlacement("tenant.placement", in.GetPlacement()); err != nil {
		return nil, err
	}
	if err := validateRequestID("request_id", req.GetRequestId()); err != nil {
		return nil, err
	}
	t, err := s.m.Create(ctx, tenant.CreateParams{
		Slug:        slug,
		DisplayName: in.GetDisplayName(),
		Labels:      in.GetLabels(),
		Placement:   in.GetPlacement(),
		RequestID:   req.GetRequestId(),
	})
	if err != nil {
		return nil, err
	}
	return &registryv1.CreateTenantResponse{Tenant: toProto(t)}, nil
}

// GetTenant implements TenantServiceServer.
func (s *TenantServer) GetTenant(ctx context.Context, req *registryv1.GetTenantRequest) (*registryv1.GetTenantResponse, error) {
	slug, err := tenantname.ParseTenantName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	tagTenant(ctx, slug)
	t, err := s.m.Get(ctx, slug)
	if err != nil {
		return nil, err
	}
	return &registryv1.GetTenantResponse{Tenant: toProto(t)}, nil
}

// ListTenants implements TenantServiceServer.
func (s *TenantServer) ListTenants(ctx context.Context, req *registryv1.ListTenantsRequest) (*registryv1.ListTenantsResponse, error) {
	limit, err := listquery.PageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	filter, err := listquery.ParseFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	// The hash covers the filter's canonical form, so a client may spell
	// the same filter differently on the next page.
	hash := listquery.FilterHash(filter.String(), req.GetShowDeleted())
	q := tenant.ListQuery{State: tenant.State(filter.State), Labels: filter.Labels, ShowDeleted: req.GetShowDeleted()}
	if req.GetPageToken() != "" {
		tok, err := listquery.DecodePageToken(req.GetPageToken())
		if err != nil {
			return nil, err
		}
		if err := tok.CheckFilter(hash); err != nil {
			return nil, err
		}
		q.AfterSlug = tok.AfterSlug
	}
	ts, more, err := s.m.List(ctx, q, limit)
	if err != nil {
		return nil, err
	}
	resp := &registryv1.ListTenantsResponse{Tenants: make([]*registryv1.Tenant, len(ts))}
	for i, t := range ts {
		resp.Tenants[i] = toProto(t)
	}
	if more {
		resp.NextPageToken = listquery.EncodePageToken(listquery.PageToken{AfterSlug: ts[len(ts)-1].Slug, FilterHash: hash})
	}
	return resp, nil
}

// UpdateTenant implements TenantServiceServer.
func (s *TenantServer) UpdateTenant(ctx context.Context, req *registryv1.UpdateTenantRequest) (*registryv1.UpdateTenantResponse, error) {
	in := req.GetTenant()
	if in == nil {
		return nil, fault.Invalid("tenant", "TENANT_REQUIRED", "tenant is required, with its name and the fields to change")
	}
	slug, err := tenantname.ParseTenantName("tenant.name", in.GetName())
	if err != nil {
		return nil, err
	}
	tagTenant(ctx, slug)
	if err := validateEtag("tenant.etag", in.GetEtag()); err != nil {
		return nil, err
	}
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
	if len(paths) == 0 {
		// AIP-134: without a mask, every field the caller may change is replaced.
		paths = []string{"display_name", "labels"}
	}
	var p tenant.UpdateParams
	for _, path := range paths {
		switch path {
		case "display_name":
			name := in.GetDisplayName()
			if err := tenantname.ValidateDisplayName("tenant.display_name", name); err != nil {
				return nil, err
			}
			p.DisplayName = &name
		case "labels":
			labels := in.GetLabels()
			if err := validateLabels("tenant.labels", labels); err != nil {
				return nil, err
			}
			p.Labels = &labels
		case "*":
			name, labels := in.GetDisplayName(), in.GetLabels()
			if err := tenantname.ValidateDisplayName("tenant.display_name", name); err != nil {
				return nil, err
			}
			if err := validateLabels("tenant.labels", labels); err != nil {
				return nil, err
			}
			p.DisplayName, p.Labels = &name, &labels
		default:
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID",
				"field %q cannot be updated: update_mask may name display_name and labels", path)
		}
	}
	t, err := s.m.Update(ctx, slug, in.GetEtag(), p)
	if err != nil {
		return nil, err
	}
	return &registryv1.UpdateTenantResponse{Tenant: toProto(t)}, nil
}

// nameAndEtag validates the common arguments of lifecycle methods.
func nameAndEtag(ctx context.Context, name, etag string) (string, error) {
	slug, err := tenantname.ParseTenantName("name", name)
	if err != nil {
		return "", err
	}
	tagTenant(ctx, slug)
	if err := validateEtag("etag", etag); err != nil {
		return "", err
	}
	return slug, nil
}

// DeleteTenant implements TenantServiceServer.
func (s *TenantServer) DeleteTenant(ctx context.Context, req *registryv1.DeleteTenantRequest) (*registryv1.DeleteTenantResponse, error) {
	slug, err := nameAndEtag(ctx, req.GetName(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	t, err := s.m.Delete(ctx, slug, req.GetEtag(), req.GetForce())
	if err != nil {
		return nil, err
	}
	return &registryv1.DeleteTenantResponse{Tenant: toProto(t)}, nil
}

// UndeleteTenant implements TenantServiceServer.
func (s *TenantServer) UndeleteTenant(ctx context.Context, req *registryv1.UndeleteTenantRequest) (*registryv1.UndeleteTenantResponse, error) {
	slug, err := nameAndEtag(ctx, req.GetName(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	t, err := s.m.Undelete(ctx, slug, req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &registryv1.UndeleteTenantResponse{Tenant: toProto(t)}, nil
}

// SuspendTenant implements TenantServiceServer.
func (s *TenantServer) SuspendTenant(ctx context.Context, req *registryv1.SuspendTenantRequest) (*registryv1.SuspendTenantResponse, error) {
	slug, err := nameAndEtag(ctx, req.GetName(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	t, err := s.m.Suspend(ctx, slug, req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &registryv1.SuspendTenantResponse{Tenant: toProto(t)}, nil
}

// ResumeTenant implements TenantServiceServer.
func (s *TenantServer) ResumeTenant(ctx context.Context, req *registryv1.ResumeTenantRequest) (*registryv1.ResumeTenantResponse, error) {
	slug, err := nameAndEtag(ctx, req.GetName(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	t, err := s.m.Resume(ctx, slug, req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &registryv1.ResumeTenantResponse{Tenant: toProto(t)}, nil
}

// AddDomain implements TenantServiceServer.
func (s *TenantServer) AddDomain(ctx context.Context, req *registryv1.AddDomainRequest) (*registryv1.AddDomainResponse, error) {
	slug, err := nameAndEtag(ctx, req.GetName(), "")
	if err != nil {
		return nil, err
	}
	host, err := tenantname.NormalizeHost("host", req.GetHost())
	if err != nil {
		return nil, err
	}
	t, err := s.m.AddDomain(ctx, slug, host, req.GetPrimary())
	if err != nil {
		return nil, err
	}
	return &registryv1.AddDomainResponse{Tenant: toProto(t)}, nil
}

// RemoveDomain implements TenantServiceServer.
func (s *TenantServer) RemoveDomain(ctx context.Context, req *registryv1.RemoveDomainRequest) (*registryv1.RemoveDomainResponse, error) {
	slug, err := nameAndEtag(ctx, req.GetName(), "")
	if err != nil {
		return nil, err
	}
	host, err := tenantname.NormalizeHost("host", req.GetHost())
	if err != nil {
		return nil, err
	}
	t, err := s.m.RemoveDomain(ctx, slug, host)
	if err != nil {
		return nil, err
	}
	return &registryv1.RemoveDomainResponse{Tenant: toProto(t)}, nil
}

// ResolveTenant implements TenantServiceServer.
func (s *TenantServer) ResolveTenant(ctx context.Context, req *registryv1.ResolveTenantRequest) (*registryv1.ResolveTenantResponse, error) {
	var (
		res tenant.Resolution
		err error
	)
	switch key := req.GetKey().(type) {
	case *registryv1.ResolveTenantRequest_Host:
		host, herr := tenantname.NormalizeHost("host", key.Host)
		if herr != nil {
			return nil, herr
		}
		res, err = s.m.ResolveHost(host)
	case *registryv1.ResolveTenantRequest_Slug:
		slug, serr := tenantname.ParseSlug("slug", key.Slug)
		if serr != nil {
			return nil, serr
		}
		res, err = s.m.ResolveSlug(slug)
	case *registryv1.ResolveTenantRequest_Uid:
		uid, uerr := validateUID("uid", key.Uid)
		if uerr != nil {
			return nil, uerr
		}
		res, err = s.m.ResolveUID(uid)
	default:
		return nil, fault.Invalid("key", "RESOLVE_KEY_REQUIRED", "set exactly one of host, slug or uid")
	}
	if err != nil {
		return nil, err
	}
	tagTenant(ctx, res.Tenant.Slug)
	return &registryv1.ResolveTenantResponse{
		Tenant:   toProto(res.Tenant),
		Match:    matchToProto[res.Match],
		Revision: res.Revision,
	}, nil
}

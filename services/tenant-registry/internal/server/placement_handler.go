package server

import (
	"context"
	"strings"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/fieldmask"
	"tenantry.dev/tenant-registry/internal/tenant"
)

// PlacementServer serves tenantry.registry.v1.PlacementService. Handlers
// validate and convert; the rules live in tenant.Manager.
type PlacementServer struct {
	registryv1.UnimplementedPlacementServiceServer

	m *tenant.Manager
}

var _ registryv1.PlacementServiceServer = (*PlacementServer)(nil)

// NewPlacementServer returns the gRPC face of a manager's placements.
func NewPlacementServer(m *tenant.Manager) *PlacementServer {
	return &PlacementServer{m: m}
}

// ListPlacements implements PlacementServiceServer.
func (s *PlacementServer) ListPlacements(ctx context.Context, _ *registryv1.ListPlacementsRequest) (*registryv1.ListPlacementsResponse, error) {
	ps, err := s.m.ListPlacements(ctx)
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListPlacementsResponse{Placements: make([]*registryv1.Placement, len(ps))}
	for i, p := range ps {
		out.Placements[i] = placementToProto(p)
	}
	return out, nil
}

// GetPlacement implements PlacementServiceServer.
func (s *PlacementServer) GetPlacement(ctx context.Context, req *registryv1.GetPlacementRequest) (*registryv1.GetPlacementResponse, error) {
	name, err := placementName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	p, err := s.m.GetPlacement(ctx, name)
	if err != nil {
		return nil, err
	}
	return &registryv1.GetPlacementResponse{Placement: placementToProto(p)}, nil
}

// UpdatePlacement implements PlacementServiceServer.
func (s *PlacementServer) UpdatePlacement(ctx context.Context, req *registryv1.UpdatePlacementRequest) (*registryv1.UpdatePlacementResponse, error) {
	in := req.GetPlacement()
	if in == nil {
		return nil, fault.Invalid("placement", "PLACEMENT_REQUIRED", "placement is required, with its name and the fields to change")
	}
	name, err := placementName("placement.name", in.GetName())
	if err != nil {
		return nil, err
	}
	if err := validateEtag("placement.etag", in.GetEtag()); err != nil {
		return nil, err
	}
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
	if len(paths) == 0 {
		// AIP-134: without a mask, every field the caller may change is replaced.
		paths = []string{"closed", "dedicated"}
	}
	var u tenant.PlacementUpdate
	for _, path := range paths {
		closed, dedicated := in.GetClosed(), in.GetDedicated()
		switch path {
		case "closed":
			u.Closed = &closed
		case "dedicated":
			u.Dedicated = &dedicated
		case "*":
			u.Closed, u.Dedicated = &closed, &dedicated
		case "etag":
			// The gateway derives a PATCH's mask from the body's fields: an
			// etag there is the change's precondition, not a change.
		default:
			return nil, fault.Invalid("update_mask", "UPDATE_MASK_INVALID",
				"field %q cannot be updated: update_mask may name closed and dedicated", path)
		}
	}
	p, err := s.m.UpdatePlacement(ctx, name, in.GetEtag(), u)
	if err != nil {
		return nil, err
	}
	return &registryv1.UpdatePlacementResponse{Placement: placementToProto(p)}, nil
}

// placementName parses "placements/{placement}".
func placementName(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "placements/")
	if !ok || id == "" {
		return "", fault.Invalid(field, "PLACEMENT_NAME_INVALID", "%s must be a placement name like placements/default", field)
	}
	return id, validatePlacement(field, id)
}

func placementToProto(p *tenant.Placement) *registryv1.Placement {
	return &registryv1.Placement{
		Name:             "placements/" + p.Name,
		Closed:           p.Closed,
		Dedicated:        p.Dedicated,
		TenantCount:      int64(p.Tenants),
		DatabaseHost:     p.Host,
		DatabaseName:     p.Database,
		RegistryDatabase: p.RegistryDatabase,
		UpdateTime:       timestamp(p.UpdateTime),
		Etag:             p.Etag(),
	}
}

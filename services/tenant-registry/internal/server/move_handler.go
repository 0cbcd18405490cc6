package server

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/tenant-registry/internal/fleet"
	"tenantry.dev/tenant-registry/internal/move"
)

// MoveTenant implements TenantServiceServer.
func (s *TenantServer) MoveTenant(ctx context.Context, req *registryv1.MoveTenantRequest) (*registryv1.MoveTenantResponse, error) {
	slug, err := tenantname.ParseTenantName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := validatePlacement("placement", req.GetPlacement()); err != nil {
		return nil, err
	}
	if req.GetPlacement() == "" {
		return nil, fault.Invalid("placement", "PLACEMENT_REQUIRED", "placement must name the placement to move the tenant to")
	}
	grace := move.DefaultGrace
	if req.GetGrace() != nil {
		if err := req.GetGrace().CheckValid(); err != nil {
			return nil, fault.Invalid("grace", move.ReasonInvalidGrace, "grace is not a valid duration")
		}
		grace = req.GetGrace().AsDuration()
	}
	if s.mover == nil {
		return nil, fault.New(fault.FailedPrecondition, move.ReasonUnsupported, "this registry does not move tenants")
	}
	op, m, err := s.mover.Start(ctx, slug, req.GetPlacement(), grace)
	if err != nil {
		return nil, err
	}
	return &registryv1.MoveTenantResponse{Operation: moveOperationToProto(op, m)}, nil
}

// moveOperationToProto is operationToProto for a move, with its metadata.
func moveOperationToProto(op *fleet.Operation, m *move.Move) *registryv1.Operation {
	p := &registryv1.Operation{Name: "operations/" + op.ID, Kind: op.Kind, Done: op.Finished()}
	md := &registryv1.MoveMetadata{
		CreateTime:      timestamp(op.CreateTime),
		UpdateTime:      timestamp(op.UpdateTime),
		EndTime:         timestamp(op.EndTime),
		CancelRequested: op.CancelRequested,
	}
	if m != nil {
		md.Tenant = "tenants/" + m.Slug
		md.SourcePlacement = m.Source
		md.TargetPlacement = m.Target
		md.Phase = movePhases[m.Phase]
		md.SourceBytes = m.SourceBytes
		if d := m.FenceDuration(); d > 0 {
			md.FenceDuration = durationpb.New(d)
		}
		md.SwitchTime = timestamp(m.SwitchTime)
		md.DropTime = timestamp(m.DropTime)
		if m.UpdateTime.After(op.UpdateTime) {
			md.UpdateTime = timestamp(m.UpdateTime)
		}
	}
	p.MoveMetadata = md
	if op.Finished() && op.ErrCode != 0 {
		p.Error = &registryv1.OperationError{Code: int32(op.ErrCode), Message: op.ErrMessage, Reason: op.ErrReason}
	}
	return p
}

var movePhases = map[move.Phase]registryv1.MoveMetadata_Phase{
	move.Preparing: registryv1.MoveMetadata_PHASE_PREPARING,
	move.Copying:   registryv1.MoveMetadata_PHASE_COPYING,
	move.Fenced:    registryv1.MoveMetadata_PHASE_FENCED,
	move.Switched:  registryv1.MoveMetadata_PHASE_SWITCHED,
	move.Done:      registryv1.MoveMetadata_PHASE_DONE,
	move.Abandoned: registryv1.MoveMetadata_PHASE_ABANDONED,
}

// reapEvery is how often the leader looks for old copies past their grace.
const reapEvery = 5 * time.Second

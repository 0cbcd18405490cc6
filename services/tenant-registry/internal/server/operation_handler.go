package server

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/tenant-registry/internal/fleet"
	"tenantry.dev/tenant-registry/internal/move"
)

// OperationServer serves tenantry.registry.v1.OperationService, and
// ComponentService.MigrateTenants, which starts operations.
type OperationServer struct {
	registryv1.UnimplementedOperationServiceServer

	r     *fleet.Runner
	moves *move.Mover // nil when moves are not served
}

var _ registryv1.OperationServiceServer = (*OperationServer)(nil)

// NewOperationServer returns the gRPC face of a fleet runner.
func NewOperationServer(r *fleet.Runner, moves *move.Mover) *OperationServer {
	return &OperationServer{r: r, moves: moves}
}

// toProto converts an operation, reading a move's record for its metadata.
func (s *OperationServer) toProto(ctx context.Context, op *fleet.Operation) (*registryv1.Operation, error) {
	if op.Kind != move.Kind {
		return operationToProto(op), nil
	}
	var m *move.Move
	if s.moves != nil {
		var err error
		if m, err = s.moves.Get(ctx, op.ID); err != nil {
			return nil, err
		}
	}
	return moveOperationToProto(op, m), nil
}

func operationID(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "operations/")
	if !ok || id == "" {
		return "", fault.Invalid(field, "OPERATION_NAME_INVALID", "%s must be an operation name like operations/123e4567-e89b-12d3-a456-426614174000", field)
	}
	return id, nil
}

// MigrateTenants starts a fleet migration (ComponentService).
func (s *OperationServer) MigrateTenants(ctx context.Context, req *registryv1.MigrateTenantsRequest) (*registryv1.MigrateTenantsResponse, error) {
	in := fleet.Request{DryRun: req.GetDryRun(), Concurrency: int(req.GetConcurrency())}
	if req.GetLockTimeout() != nil {
		if err := req.GetLockTimeout().CheckValid(); err != nil {
			return nil, fault.Invalid("lock_timeout", fleet.ReasonRequestInvalid, "lock_timeout is not a valid duration")
		}
		in.LockTimeout = req.GetLockTimeout().AsDuration()
	}
	for i, name := range req.GetComponents() {
		id, err := componentID("components["+itoa(int64(i))+"]", name)
		if err != nil {
			return nil, err
		}
		in.Components = append(in.Components, id)
	}
	for i, name := range req.GetTenants() {
		slug, err := tenantname.ParseTenantName("tenants["+itoa(int64(i))+"]", name)
		if err != nil {
			return nil, err
		}
		in.Tenants = append(in.Tenants, slug)
	}
	// A component's credential migrates its own component, and only it
	// (every registered component when none is named is the operator's).
	if p, ok := authn.PrincipalFrom(ctx); ok && p.Role == RoleComponent && !onlyComponent(in.Components, p.Subject) {
		return nil, fault.New(fault.PermissionDenied, ReasonComponentNotYours,
			"this credential is component %q's: it may migrate only components/%s, named alone in components", p.Subject, p.Subject)
	}
	op, err := s.r.Start(ctx, in)
	if err != nil {
		return nil, err
	}
	return &registryv1.MigrateTenantsResponse{Operation: operationToProto(op)}, nil
}

func onlyComponent(ids []string, id string) bool { return len(ids) == 1 && ids[0] == id }

// visible refuses a component's credential an operation that migrates
// anything but its own component, as NOT_FOUND: operations are the
// operator's, and a component learns nothing of the others'.
func visible(ctx context.Context, op *fleet.Operation) error {
	if p, ok := authn.PrincipalFrom(ctx); ok && p.Role == RoleComponent && !onlyComponent(op.Request.Components, p.Subject) {
		return fleet.ErrNotFound(op.ID)
	}
	return nil
}

// GetOperation implements OperationServiceServer.
func (s *OperationServer) GetOperation(ctx context.Context, req *registryv1.GetOperationRequest) (*registryv1.GetOperationResponse, error) {
	id, err := operationID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	op, err := s.r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := visible(ctx, op); err != nil {
		return nil, err
	}
	p, err := s.toProto(ctx, op)
	if err != nil {
		return nil, err
	}
	return &registryv1.GetOperationResponse{Operation: p}, nil
}

// ListOperations implements OperationServiceServer.
func (s *OperationServer) ListOperations(ctx context.Context, req *registryv1.ListOperationsRequest) (*registryv1.ListOperationsResponse, error) {
	limit := int(req.GetPageSize())
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 100 {
		return nil, fault.Invalid("page_size", "PAGE_SIZE_INVALID", "page_size must be from 1 to 100")
	}
	var (
		afterTime time.Time
		afterID   string
	)
	if tok := req.GetPageToken(); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		t, id, ok := strings.Cut(string(raw), "|")
		if err == nil && ok {
			afterTime, err = time.Parse(time.RFC3339Nano, t)
			afterID = id
		}
		if err != nil || !ok {
			return nil, fault.Invalid("page_token", "PAGE_TOKEN_INVALID", "page_token is not one this service returned")
		}
	}
	ops, err := s.r.List(ctx, afterTime, afterID, limit+1)
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListOperationsResponse{}
	if len(ops) > limit {
		ops = ops[:limit]
		last := ops[len(ops)-1]
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(last.CreateTime.Format(time.RFC3339Nano) + "|" + last.ID))
	}
	for _, op := range ops {
		p, err := s.toProto(ctx, op)
		if err != nil {
			return nil, err
		}
		out.Operations = append(out.Operations, p)
	}
	return out, nil
}

// WaitOperation implements OperationServiceServer.
func (s *OperationServer) WaitOperation(ctx context.Context, req *registryv1.WaitOperationRequest) (*registryv1.WaitOperationResponse, error) {
	id, err := operationID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	timeout := 30 * time.Second
	if req.GetTimeout() != nil {
		timeout = min(req.GetTimeout().AsDuration(), time.Minute)
	}
	if p, ok := authn.PrincipalFrom(ctx); ok && p.Role == RoleComponent {
		// Checked before waiting, so that waiting reveals nothing either.
		op, err := s.r.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := visible(ctx, op); err != nil {
			return nil, err
		}
	}
	op, err := s.r.Wait(ctx, id, timeout)
	if err != nil {
		return nil, err
	}
	p, err := s.toProto(ctx, op)
	if err != nil {
		return nil, err
	}
	return &registryv1.WaitOperationResponse{Operation: p}, nil
}

// CancelOperation implements OperationServiceServer.
func (s *OperationServer) CancelOperation(ctx context.Context, req *registryv1.CancelOperationRequest) (*registryv1.CancelOperationResponse, error) {
	id, err := operationID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	op, err := s.r.Cancel(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := s.toProto(ctx, op)
	if err != nil {
		return nil, err
	}
	return &registryv1.CancelOperationResponse{Operation: p}, nil
}

func operationToProto(op *fleet.Operation) *registryv1.Operation {
	md := &registryv1.MigrationMetadata{
		DryRun:          op.Request.DryRun,
		Total:           int32(op.Total),
		Done:            int32(op.Done),
		Failed:          int32(op.Failed),
		CreateTime:      timestamp(op.CreateTime),
		UpdateTime:      timestamp(op.UpdateTime),
		EndTime:         timestamp(op.EndTime),
		CancelRequested: op.CancelRequested,
	}
	for _, c := range op.Request.Components {
		md.Components = append(md.Components, "components/"+c)
	}
	for _, t := range op.Request.Tenants {
		md.Tenants = append(md.Tenants, "tenants/"+t)
	}
	p := &registryv1.Operation{Name: "operations/" + op.ID, Kind: op.Kind, Metadata: md, Done: op.Finished()}
	switch {
	case !op.Finished():
	case op.ErrCode != 0:
		p.Error = &registryv1.OperationError{Code: int32(op.ErrCode), Message: op.ErrMessage, Reason: op.ErrReason}
	default:
		res := &registryv1.MigrationResult{}
		for _, f := range op.Failures {
			res.Failures = append(res.Failures, &registryv1.TenantMigrationFailure{
				Tenant: "tenants/" + f.Tenant, Component: "components/" + f.Component, Version: int32(f.Version), Message: f.Message,
			})
		}
		for _, pl := range op.Planned {
			res.Planned = append(res.Planned, &registryv1.TenantMigrationPlan{
				Tenant: "tenants/" + pl.Tenant, Component: "components/" + pl.Component, FromVersion: int32(pl.From), ToVersion: int32(pl.To),
			})
		}
		p.Result = res
	}
	return p
}

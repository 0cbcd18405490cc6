package server

import (
	"context"
	"strings"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/authn"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
	"tenantry.dev/platform/tenantrole"
	"tenantry.dev/tenant-registry/internal/component"
)

// ComponentServer serves tenantry.registry.v1.ComponentService. Handlers
// validate and convert; the rules live in component.Manager.
type ComponentServer struct {
	registryv1.UnimplementedComponentServiceServer

	m   *component.Manager
	ops *OperationServer
	// key derives component tokens (tenantrole); nil when unset.
	key []byte
}

var _ registryv1.ComponentServiceServer = (*ComponentServer)(nil)

// NewComponentServer returns the gRPC face of a component manager.
// key is TENANTRY_COMPONENT_KEY, nil when unset.
func NewComponentServer(m *component.Manager, ops *OperationServer, key []byte) *ComponentServer {
	return &ComponentServer{m: m, ops: ops, key: key}
}

// Reasons of ComponentService's own faults.
const (
	ReasonComponentKeyUnset = "COMPONENT_KEY_UNSET"
	ReasonComponentNotYours = "COMPONENT_NOT_YOURS"
)

// checkOwn refuses a component's token for another component than its
// own; operators may act on any.
func checkOwn(ctx context.Context, id string) error {
	if p, ok := authn.PrincipalFrom(ctx); ok && p.Role == RoleComponent && p.Subject != id {
		return fault.New(fault.PermissionDenied, ReasonComponentNotYours,
			"this credential is component %q's; it cannot act on component %q", p.Subject, id)
	}
	return nil
}

// GetComponentCredential implements ComponentServiceServer.
func (s *ComponentServer) GetComponentCredential(_ context.Context, req *registryv1.GetComponentCredentialRequest) (*registryv1.GetComponentCredentialResponse, error) {
	id, err := componentID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if len(s.key) == 0 {
		return nil, fault.New(fault.FailedPrecondition, ReasonComponentKeyUnset,
			"the registry has no TENANTRY_COMPONENT_KEY, so components have no credentials; set it (openssl rand -hex 32) and restart the registry")
	}
	return &registryv1.GetComponentCredentialResponse{
		Token:           tenantrole.ComponentToken(s.key, id),
		RoleNamePattern: "t_{tenant uid without dashes}_" + id,
	}, nil
}

// MigrateTenants implements ComponentServiceServer: it starts an operation.
func (s *ComponentServer) MigrateTenants(ctx context.Context, req *registryv1.MigrateTenantsRequest) (*registryv1.MigrateTenantsResponse, error) {
	return s.ops.MigrateTenants(ctx, req)
}

// componentID parses "components/{id}".
func componentID(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "components/")
	if !ok {
		return "", fault.Invalid(field, component.ReasonComponentIDInvalid, "%s must be a component name like components/notes", field)
	}
	return id, component.ValidateID(field, id)
}

// RegisterComponent implements ComponentServiceServer.
func (s *ComponentServer) RegisterComponent(ctx context.Context, req *registryv1.RegisterComponentRequest) (*registryv1.RegisterComponentResponse, error) {
	in := req.GetComponent()
	id, err := componentID("component.name", in.GetName())
	if err != nil {
		return nil, err
	}
	if err := checkOwn(ctx, id); err != nil {
		return nil, err
	}
	c := &component.Component{ID: id, DisplayName: in.GetDisplayName()}
	for _, m := range in.GetMigrations() {
		c.Migrations = append(c.Migrations, component.Migration{Version: int(m.GetVersion()), Name: m.GetName(), SQL: m.GetSql()})
	}
	res, err := s.m.Register(ctx, c)
	if err != nil {
		return nil, err
	}
	out := &registryv1.RegisterComponentResponse{Component: componentToProto(res.Component)}
	for _, v := range res.Added {
		out.AddedVersions = append(out.AddedVersions, int32(v))
	}
	return out, nil
}

// GetComponent implements ComponentServiceServer.
func (s *ComponentServer) GetComponent(ctx context.Context, req *registryv1.GetComponentRequest) (*registryv1.GetComponentResponse, error) {
	id, err := componentID("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := checkOwn(ctx, id); err != nil {
		return nil, err
	}
	c, err := s.m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return &registryv1.GetComponentResponse{Component: componentToProto(c)}, nil
}

// ListComponents implements ComponentServiceServer.
func (s *ComponentServer) ListComponents(ctx context.Context, _ *registryv1.ListComponentsRequest) (*registryv1.ListComponentsResponse, error) {
	comps, err := s.m.List(ctx)
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListComponentsResponse{}
	for _, c := range comps {
		out.Components = append(out.Components, componentToProto(c))
	}
	return out, nil
}

// ListTenantComponents implements ComponentServiceServer.
func (s *ComponentServer) ListTenantComponents(ctx context.Context, req *registryv1.ListTenantComponentsRequest) (*registryv1.ListTenantComponentsResponse, error) {
	slug, err := tenantname.ParseTenantName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	tagTenant(ctx, slug)
	states, err := s.m.TenantComponents(ctx, slug)
	if err != nil {
		return nil, err
	}
	out := &registryv1.ListTenantComponentsResponse{}
	for _, tc := range states {
		p := &registryv1.TenantComponent{
			Name:          "tenants/" + slug + "/components/" + tc.Component,
			Version:       int32(tc.Version),
			LatestVersion: int32(tc.Latest),
		}
		if !tc.ApplyTime.IsZero() {
			p.ApplyTime = timestamp(tc.ApplyTime)
		}
		out.Components = append(out.Components, p)
	}
	return out, nil
}

func componentToProto(c *component.Component) *registryv1.Component {
	p := &registryv1.Component{
		Name:          "components/" + c.ID,
		DisplayName:   c.DisplayName,
		LatestVersion: int32(c.Latest()),
		CreateTime:    timestamp(c.CreateTime),
		UpdateTime:    timestamp(c.UpdateTime),
	}
	for _, m := range c.Migrations {
		p.Migrations = append(p.Migrations, &registryv1.Migration{
			Version: int32(m.Version), Name: m.Name, Sql: m.SQL, Checksum: m.Checksum,
		})
	}
	return p
}

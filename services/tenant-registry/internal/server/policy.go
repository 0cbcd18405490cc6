package server

import (
	"strconv"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/authn"
)

// The registry's roles.
const (
	// RoleOperator may call every method.
	RoleOperator = "operator"
	// RoleService is what other services use: it may only resolve and watch.
	RoleService = "service"
	// RoleComponent is a product service's component token (tenantrole):
	// resolve and watch tenants, register and read its own component.
	RoleComponent = "component"
)

// Policy says which roles may call each method. Methods missing here are
// refused by authn, so a new RPC is closed until someone opens it.
func Policy() authn.Policy {
	svc := "/" + registryv1.TenantService_ServiceDesc.ServiceName + "/"
	p := authn.Policy{}
	for _, m := range registryv1.TenantService_ServiceDesc.Methods {
		p[svc+m.MethodName] = []string{RoleOperator}
	}
	for _, m := range registryv1.TenantService_ServiceDesc.Streams {
		p[svc+m.StreamName] = []string{RoleOperator}
	}
	// Components change every tenant's schema: the operator's alone.
	csvc := "/" + registryv1.ComponentService_ServiceDesc.ServiceName + "/"
	for _, m := range registryv1.ComponentService_ServiceDesc.Methods {
		p[csvc+m.MethodName] = []string{RoleOperator}
	}
	osvc := "/" + registryv1.OperationService_ServiceDesc.ServiceName + "/"
	for _, m := range registryv1.OperationService_ServiceDesc.Methods {
		p[osvc+m.MethodName] = []string{RoleOperator}
	}
	// Placements decide where every tenant's data goes: the operator's alone.
	psvc := "/" + registryv1.PlacementService_ServiceDesc.ServiceName + "/"
	for _, m := range registryv1.PlacementService_ServiceDesc.Methods {
		p[psvc+m.MethodName] = []string{RoleOperator}
	}
	p[registryv1.TenantService_ResolveTenant_FullMethodName] = []string{RoleOperator, RoleService, RoleComponent}
	p[registryv1.TenantService_WatchTenants_FullMethodName] = []string{RoleOperator, RoleService, RoleComponent}
	// A component's service registers its own migrations at start-up (the
	// handlers refuse another component's): they run in each tenant schema
	// with its tenant role's rights only, never the registry's.
	p[registryv1.ComponentService_RegisterComponent_FullMethodName] = []string{RoleOperator, RoleComponent}
	p[registryv1.ComponentService_GetComponent_FullMethodName] = []string{RoleOperator, RoleComponent}
	// ... and migrates the tenants behind on it, following those
	// operations only (the handlers refuse the others).
	p[registryv1.ComponentService_MigrateTenants_FullMethodName] = []string{RoleOperator, RoleComponent}
	p[registryv1.OperationService_GetOperation_FullMethodName] = []string{RoleOperator, RoleComponent}
	p[registryv1.OperationService_WaitOperation_FullMethodName] = []string{RoleOperator, RoleComponent}
	return p
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

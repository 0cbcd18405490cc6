package tenancy

import (
	"errors"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/fault"
)

// Tenant is a service's view of a tenant: what it needs to serve one,
// and nothing of the registry's wire format.
type Tenant struct {
	// UID is the tenant's immutable identifier, never reused.
	UID string
	// Slug is the tenant's short name, a DNS label.
	Slug string
	// DisplayName is the name shown to people.
	DisplayName string
	// Schema is the PostgreSQL schema that holds the tenant's data.
	Schema string
	// Placement names the database that holds Schema.
	Placement string
	// State says whether the tenant may be served; see RequireActive.
	State State
}

// State is the lifecycle state of a tenant. The zero State is no state a
// tenant can be in: it stands for a state this version of the service does not
// know (one added to the registry later), and RequireActive refuses it.
type State int

// The states of a tenant, as the registry reports them.
const (
	// Active tenants are served normally.
	Active State = iota + 1
	// Suspended tenants keep their data but are not served.
	Suspended
	// Deleted tenants are soft-deleted and wait for their schema to be
	// dropped; they may still be undeleted.
	Deleted
	// Provisioning tenants are being created; their schema may not exist yet.
	Provisioning
)

// String returns the state's name, for logs and tests.
func (s State) String() string {
	switch s {
	case Active:
		return "active"
	case Suspended:
		return "suspended"
	case Deleted:
		return "deleted"
	case Provisioning:
		return "provisioning"
	default:
		return "unknown"
	}
}

// Reasons of the faults this package returns. Invalid slugs and hosts are
// refused with tenantname's reasons instead.
const (
	// ReasonTenantNotFound: no tenant answers to the slug or host, or the
	// tenant is deleted.
	ReasonTenantNotFound = "TENANT_NOT_FOUND"
	// ReasonTenantSuspended: the tenant exists but is suspended.
	ReasonTenantSuspended = "TENANT_SUSPENDED"
	// ReasonTenantProvisioning: the tenant is still being created.
	ReasonTenantProvisioning = "TENANT_PROVISIONING"
	// ReasonTenantStateUnknown: the registry reported a state this service does
	// not know.
	ReasonTenantStateUnknown = "TENANT_STATE_UNKNOWN"
	// ReasonRegistryUnavailable: the registry could not be asked and the
	// answer was not cached.
	ReasonRegistryUnavailable = "TENANT_REGISTRY_UNAVAILABLE"
	// ReasonRegistryRejected: the registry refused this service's
	// credential, which is a deployment mistake rather than an outage.
	ReasonRegistryRejected = "TENANT_REGISTRY_REJECTED"
)

// RequireActive returns nil when t may be served, and otherwise the fault to
// answer the request with:
//
//   - Suspended: FailedPrecondition TENANT_SUSPENDED. The tenant exists and
//     its users are told so, so that they contact their administrator
//     rather than conclude they mistyped the address.
//   - Deleted: NotFound TENANT_NOT_FOUND, the same fault as for a tenant
//     that never existed. A deleted tenant is gone for its users; telling
//     the two apart would only tell strangers which names once had a
//     tenant. The fault's cause (for logs) says it is deleted.
//   - Provisioning: FailedPrecondition TENANT_PROVISIONING. The tenant is
//     about to exist, so NotFound would be a lie that clients might cache;
//     its schema may not exist yet, so it cannot be served either.
//   - any other state: FailedPrecondition TENANT_STATE_UNKNOWN, so that a
//     state added to the registry later is refused until the service knows
//     what it means.
func RequireActive(t Tenant) error {
	switch t.State {
	case Active:
		return nil
	case Suspended:
		return fault.New(fault.FailedPrecondition, ReasonTenantSuspended, "tenant %q is suspended", t.Slug)
	case Deleted:
		return fault.New(fault.NotFound, ReasonTenantNotFound, "no tenant %q", t.Slug).
			WithCause(errors.New("the tenant is deleted"))
	case Provisioning:
		return fault.New(fault.FailedPrecondition, ReasonTenantProvisioning,
			"tenant %q is still being set up; try again in a moment", t.Slug)
	default:
		return fault.New(fault.FailedPrecondition, ReasonTenantStateUnknown,
			"tenant %q cannot be served in its current state", t.Slug)
	}
}

// fromProto converts the registry's tenant into the cache's entry:
// the service's view of the tenant, the registry revision of its last change
// (kept to tell newer answers from older ones) and its custom domains.
func fromProto(p *registryv1.Tenant) entry {
	e := entry{
		tenant: Tenant{
			UID:         p.GetUid(),
			Slug:        p.GetSlug(),
			DisplayName: p.GetDisplayName(),
			Schema:      p.GetSchema(),
			Placement:   p.GetPlacement(),
			State:       stateFromProto(p.GetState()),
		},
		revision: p.GetRevision(),
	}
	// Most tenants have no custom domain: they then cost no slice.
	if ds := p.GetDomains(); len(ds) > 0 {
		e.domains = make([]string, 0, len(ds))
		for _, d := range ds {
			e.domains = append(e.domains, d.GetHost())
		}
	}
	return e
}

// stateFromProto maps the registry's states; unknown ones become the zero
// State, which is never served.
func stateFromProto(s registryv1.Tenant_State) State {
	switch s {
	case registryv1.Tenant_STATE_ACTIVE:
		return Active
	case registryv1.Tenant_STATE_SUSPENDED:
		return Suspended
	case registryv1.Tenant_STATE_DELETED:
		return Deleted
	case registryv1.Tenant_STATE_PROVISIONING:
		return Provisioning
	default:
		return 0
	}
}

package tenant

import "tenantry.dev/platform/fault"

// Stable reasons of the registry's faults, sent to clients in ErrorInfo.
const (
	ReasonTenantNotFound    = "TENANT_NOT_FOUND"
	ReasonTenantExists      = "TENANT_ALREADY_EXISTS"
	ReasonEtagMismatch      = "ETAG_MISMATCH"
	ReasonInvalidState      = "TENANT_STATE_INVALID"
	ReasonDomainTaken       = "DOMAIN_TAKEN"
	ReasonDomainNotFound    = "DOMAIN_NOT_FOUND"
	ReasonDomainUnderBase   = "DOMAIN_UNDER_BASE_DOMAIN"
	ReasonPlacementUnknown  = "PLACEMENT_UNKNOWN"
	ReasonRequestIDReused   = "REQUEST_ID_REUSED"
	ReasonHostNotFound      = "HOST_NOT_FOUND"
	ReasonSchemaTaken       = "SCHEMA_TAKEN"
	ReasonTooManyDomains    = "TOO_MANY_DOMAINS"
	ReasonProvisioningStuck = "TENANT_PROVISIONING"
	ReasonPurgeStarted      = "TENANT_PURGE_STARTED"

	// ReasonNoOpenPlacement: a create names no placement and every one is
	// closed or dedicated.
	ReasonNoOpenPlacement = "NO_OPEN_PLACEMENT"
	// ReasonPlacementClosed: the named placement takes no new tenant.
	ReasonPlacementClosed = "PLACEMENT_CLOSED"
	// ReasonPlacementDedicatedTaken: the named placement is dedicated and
	// holds its tenant already.
	ReasonPlacementDedicatedTaken = "PLACEMENT_DEDICATED_TAKEN"
	// ReasonPlacementHoldsTenants: a placement holding several tenants
	// cannot be made dedicated.
	ReasonPlacementHoldsTenants = "PLACEMENT_HOLDS_TENANTS"
	// ReasonPlacementNotFound: no placement of that name is configured.
	ReasonPlacementNotFound = "PLACEMENT_NOT_FOUND"
)

// MaxDomains bounds the custom domains of one tenant.
const MaxDomains = 50

func errNotFound(slug string) error {
	return fault.New(fault.NotFound, ReasonTenantNotFound, "tenant %q does not exist", slug)
}

// ErrNotFound returns the fault for a missing tenant; stores use it so that
// every NotFound about a tenant reads the same.
func ErrNotFound(slug string) error { return errNotFound(slug) }

func errState(t *Tenant, action string, want ...State) error {
	return fault.New(fault.FailedPrecondition, ReasonInvalidState,
		"cannot %s tenant %q: it is %s (must be %s)", action, t.Slug, t.State, stateList(want)).
		WithMetadata("state", string(t.State))
}

func stateList(states []State) string {
	s := ""
	for i, st := range states {
		if i > 0 {
			s += " or "
		}
		s += string(st)
	}
	return s
}

func checkEtag(t *Tenant, etag string) error {
	if etag == "" || etag == t.Etag() {
		return nil
	}
	return fault.New(fault.Aborted, ReasonEtagMismatch,
		"tenant %q changed since etag %s was read (current etag %s): read it again and retry", t.Slug, etag, t.Etag())
}

func errDomainUnderBase(host, base string) error {
	return fault.Invalid("host", ReasonDomainUnderBase,
		"host %q is under the base domain %q, where hosts resolve by slug; add a custom domain instead", host, base)
}

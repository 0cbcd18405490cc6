package tenantname

import (
	"strings"

	"tenantry.dev/platform/fault"
)

// tenantCollection is the collection segment of a tenant's resource name
// (AIP-122), with its separator.
const tenantCollection = "tenants/"

// ParseTenantName returns the slug of a tenant resource name of the form
// "tenants/{slug}". The slug must pass ParseSlug, so a name that could not
// have been created cannot be addressed either. field is the request field
// path reported in the error.
func ParseTenantName(field, name string) (slug string, err error) {
	rest, ok := strings.CutPrefix(name, tenantCollection)
	if !ok || strings.Contains(rest, "/") {
		return "", fault.Invalid(field, ReasonTenantNameInvalid,
			`%s must have the form "tenants/{slug}", for example "tenants/acme"`, field)
	}
	return ParseSlug(field, rest)
}

// TenantName returns the resource name "tenants/{slug}" of a tenant.
func TenantName(slug string) string {
	return tenantCollection + slug
}

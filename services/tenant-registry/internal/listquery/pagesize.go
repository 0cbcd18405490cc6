package listquery

import "tenantry.dev/platform/fault"

// Page sizes of ListTenants.
const (
	// DefaultPageSize is the page size when the request leaves it at 0.
	DefaultPageSize = 50
	// MaxPageSize is the largest page; larger requests get this many, as
	// AIP-158 asks, rather than an error.
	MaxPageSize = 1000
)

// ReasonInvalidPageSize is the reason of the fault for a negative page size.
const ReasonInvalidPageSize = "INVALID_PAGE_SIZE"

// PageSize returns the number of tenants to return for a request's
// page_size: DefaultPageSize for 0, at most MaxPageSize, and an
// INVALID_PAGE_SIZE fault for a negative size.
func PageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, fault.Invalid("page_size", ReasonInvalidPageSize,
			"page_size must not be negative; use 0 for the default of %d, or up to %d", DefaultPageSize, MaxPageSize)
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	default:
		return int(n), nil
	}
}

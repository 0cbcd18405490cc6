package tenantname

// Reasons of the faults returned by this package. They are part of the API:
// clients match on them, so they never change once released.
const (
	// ReasonSlugInvalidLength means a slug is shorter than MinSlugLength or
	// longer than MaxSlugLength.
	ReasonSlugInvalidLength = "SLUG_INVALID_LENGTH"
	// ReasonSlugInvalid means a slug has a character outside a-z, 0-9 and
	// '-', or a '-' where a DNS label cannot have one.
	ReasonSlugInvalid = "SLUG_INVALID"
	// ReasonSlugReserved means a slug is well formed but kept for Tenantry,
	// PostgreSQL or well-known host names.
	ReasonSlugReserved = "SLUG_RESERVED"
	// ReasonTenantNameInvalid means a resource name is not "tenants/{slug}".
	ReasonTenantNameInvalid = "TENANT_NAME_INVALID"

	// ReasonHostEmpty means there is no host name at all.
	ReasonHostEmpty = "HOST_EMPTY"
	// ReasonHostTooLong means a host exceeds what DNS allows.
	ReasonHostTooLong = "HOST_TOO_LONG"
	// ReasonHostInvalidCharacter means a host contains something that is
	// never part of a host name: user information, a path, a space, a
	// control or invisible character, percent-encoding or a wildcard.
	ReasonHostInvalidCharacter = "HOST_INVALID_CHARACTER"
	// ReasonHostInvalidPort means the port after ':' is not 1 to 65535.
	ReasonHostInvalidPort = "HOST_INVALID_PORT"
	// ReasonHostIPLiteral means a host is an IP address, which cannot name a
	// tenant.
	ReasonHostIPLiteral = "HOST_IP_LITERAL"
	// ReasonHostInvalid means a host is not a valid domain name, ASCII or
	// internationalised.
	ReasonHostInvalid = "HOST_INVALID"
)

// Reasons of display name refusals; ValidateDisplayName explains the rules.
const (
	// ReasonDisplayNameInvalid means a display name is not valid UTF-8, has
	// a control character, line break or text direction control, has
	// nothing visible, or starts or ends with a space.
	ReasonDisplayNameInvalid = "DISPLAY_NAME_INVALID"
	// ReasonDisplayNameTooLong means a display name has more than
	// MaxDisplayNameLength characters.
	ReasonDisplayNameTooLong = "DISPLAY_NAME_TOO_LONG"
)

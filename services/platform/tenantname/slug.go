package tenantname

import (
	"fmt"
	"strings"

	"tenantry.dev/platform/fault"
)

// Bounds of a slug's length. The upper bound is both the longest DNS label
// and the longest PostgreSQL identifier (NAMEDATALEN-1): PostgreSQL silently
// truncates longer identifiers, which could make two tenants share a schema.
const (
	// MinSlugLength is the length of the shortest slug, in characters.
	MinSlugLength = 3
	// MaxSlugLength is the length of the longest slug, in characters.
	MaxSlugLength = 63
)

// reservedSlugs are names a tenant may not take, because the name already
// means something as a host label or as a PostgreSQL schema.
var reservedSlugs = map[string]bool{
	// Tenantry's own hosts and vocabulary.
	"www": true, "api": true, "admin": true, "app": true, "auth": true,
	"login": true, "static": true, "assets": true, "tenantry": true,
	"system": true, "root": true, "default": true,
	"status": true, "docs": true, "help": true, "support": true,
	"billing": true, "health": true, "metrics": true,
	// PostgreSQL: "public" is a real schema every database has; the others
	// are databases and schemas whose names people would confuse.
	"public": true, "postgres": true, "template0": true, "template1": true,
	"information-schema": true,
	// Names that clients probe on their own: a tenant holding one of them
	// would receive mail settings, proxy configuration or credentials that
	// were never meant for it.
	"mail": true, "smtp": true, "imap": true, "pop": true, "pop3": true,
	"webmail": true, "mx": true, "autoconfig": true, "autodiscover": true,
	"mta-sts": true, "wpad": true, "isatap": true, "ns1": true, "ns2": true,
	"ftp": true,
	// Special-use DNS names (RFC 2606, RFC 6761).
	"localhost": true, "local": true, "example": true, "invalid": true,
	"test": true,
}

// reservedSlugPrefixes keep namespaces free for PostgreSQL and for Tenantry's
// own future hosts and schemas.
var reservedSlugPrefixes = []string{"pg-", "tenantry-"}

// ParseSlug checks that s is a tenant slug and returns it. A slug is a DNS
// label of 3 to 63 characters of a-z, 0-9 and '-' that neither starts nor ends
// with '-', does not have "--" at positions 3 and 4 (the "xn--" form of
// internationalised labels), and is not reserved. Input is never repaired:
// upper case is refused rather than folded, because a slug is an identifier
// and "Acme" and "acme" must not silently become the same tenant. field is
// the request field path reported in the error.
func ParseSlug(field, s string) (string, error) {
	if err := checkSlugSyntax(field, s); err != nil {
		return "", err
	}
	if reservedSlugs[s] {
		return "", fault.Invalid(field, ReasonSlugReserved,
			"%s %q is reserved; choose another name", field, s)
	}
	for _, prefix := range reservedSlugPrefixes {
		if strings.HasPrefix(s, prefix) {
			return "", fault.Invalid(field, ReasonSlugReserved,
				"%s must not start with %q, which is reserved; choose another name", field, prefix)
		}
	}
	return s, nil
}

// checkSlugSyntax applies the grammar of a slug, without the reserved names.
func checkSlugSyntax(field, s string) error {
	if len(s) < MinSlugLength || len(s) > MaxSlugLength {
		return fault.Invalid(field, ReasonSlugInvalidLength,
			"%s must be %d to %d characters long (a-z, 0-9 and '-'), not %d",
			field, MinSlugLength, MaxSlugLength, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
			continue
		case 'A' <= c && c <= 'Z':
			return fault.Invalid(field, ReasonSlugInvalid,
				"%s has the upper-case letter %q at position %d; use lower case (a-z, 0-9 and '-')",
				field, c, i+1)
		case c >= 0x80:
			// The character itself is not echoed: it may be a look-alike
			// letter or a direction override meant to mislead a reader.
			return fault.Invalid(field, ReasonSlugInvalid,
				"%s has a non-ASCII character at position %d; only a-z, 0-9 and '-' are allowed",
				field, i+1)
		default:
			return fault.Invalid(field, ReasonSlugInvalid,
				"%s has %q at position %d; only a-z, 0-9 and '-' are allowed", field, c, i+1)
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return fault.Invalid(field, ReasonSlugInvalid,
			"%s must start and end with a letter or digit, not '-'", field)
	}
	if len(s) >= 4 && s[2] == '-' && s[3] == '-' {
		return fault.Invalid(field, ReasonSlugInvalid,
			`%s must not have "--" at positions 3 and 4, which DNS reserves for internationalised names ("xn--")`,
			field)
	}
	return nil
}

// SchemaName returns the PostgreSQL schema that holds a tenant's data: the
// slug itself. It cannot collide with Tenantry's own schemas (tenantry_meta,
// tenantry_registry, ...) or PostgreSQL's (pg_catalog, pg_toast,
// information_schema, ...) because a slug never contains '_', and "public" is
// reserved. It fits PostgreSQL's 63-byte identifier limit, so it is never
// truncated into another tenant's schema.
//
// The name is an identifier, not SQL: it is ALWAYS used quoted, through
// pgx.Identifier{name}.Sanitize(), never spliced into a statement.
//
// SchemaName panics when slug is not one that ParseSlug accepts, because a
// schema named after unchecked input is a bug in the caller, not bad input.
func SchemaName(slug string) string {
	if _, err := ParseSlug("slug", slug); err != nil {
		panic(fmt.Sprintf("tenantname.SchemaName: slug was not checked with ParseSlug: %v", err))
	}
	return slug
}

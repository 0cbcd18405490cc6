// Package tenantname parses the names by which a tenant is addressed: its
// slug (the tenant's identifier, a DNS label), the host a request was sent
// to, and its resource name "tenants/{slug}"; and it checks display names,
// the names people read.
//
// Everything here reads hostile input. The parsers refuse rather than
// repair: a slug is never case-folded or trimmed, because two spellings that
// quietly become one identifier are how one tenant ends up addressing
// another. Hosts are the exception, because browsers and proxies legitimately
// vary their spelling (case, port, trailing dot, Unicode); NormalizeHost maps
// every accepted spelling to the single canonical ASCII form that tenants are
// resolved by.
//
// ValidateDisplayName is the one rule for the names people read, of tenants
// (in the registry) and of users (in identity): one line of visible text,
// without the direction controls that make a name read as something else in
// a mail subject. SanitizeDisplayText makes text that never passed that rule
// safe to put into a header.
//
// Nothing in this package builds SQL. SchemaName only says which schema a
// tenant lives in; the store quotes it as an identifier.
//
// Refusals are fault.Invalid errors for the field path the caller passes,
// with one of the Reason constants and a message that says what is allowed.
// Messages never repeat non-ASCII input, so that look-alike letters, direction
// overrides and control characters cannot travel into logs or user interfaces
// through an error.
package tenantname

// Package listquery parses the paging and filtering parameters of
// ListTenants: the filter expression (a subset of AIP-160), page tokens
// (AIP-158) and page sizes.
//
// The filter grammar is deliberately small:
//
//	filter    = [ condition { "AND" condition } ]
//	condition = "state" "=" STATE | "labels." KEY "=" STRING
//
// where AND is case-insensitive, STATE is PROVISIONING, ACTIVE, SUSPENDED or
// DELETED (case-insensitive, with or without the "STATE_" prefix of the
// proto enum), KEY is a label key and STRING is a double-quoted string with
// \" and \\ as its only escapes. Anything else is refused with a message that
// says where and what was expected, rather than guessed at: a filter that
// silently matched more than its author meant would be worse than an error.
//
// The parsed Filter is data, not SQL. The store turns it into bound query
// parameters.
package listquery

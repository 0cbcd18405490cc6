// Package identity is the root of Tenantry's identity service: accounts,
// sessions and tokens inside each tenant. The binary is cmd/identity; the
// packages under internal/ hold its parts.
package identity

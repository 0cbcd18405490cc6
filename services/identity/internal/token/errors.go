package token

import (
	"errors"

	"tenantry.dev/platform/fault"
)

// Stable reasons of the faults Verify and VerifyForTenant return, sent to
// clients in ErrorInfo.
const (
	// ReasonInvalid: the token is not one of ours, was altered, or is
	// malformed. The client must log in again.
	ReasonInvalid = "ACCESS_TOKEN_INVALID"
	// ReasonExpired: the token is genuine but too old. The client should
	// refresh its session for a new one.
	ReasonExpired = "ACCESS_TOKEN_EXPIRED"
	// ReasonWrongTenant: the token is genuine but was issued in another
	// tenant.
	ReasonWrongTenant = "ACCESS_TOKEN_WRONG_TENANT"
)

// ErrKeysUndecryptable means the configured key-encryption key cannot open
// the stored signing keys: it differs from the one they were sealed with.
// NewIssuer fails with it rather than generate new keys, which would
// invalidate every token and lock out the replicas configured correctly.
var ErrKeysUndecryptable = errors.New("signing keys cannot be decrypted: check TENANTRY_KEY_ENCRYPTION_KEY")

// invalid returns the fault for a token that is not acceptable. The cause
// says what exactly was wrong, for logs only: telling a forger which check
// failed would help them.
func invalid(cause error) error {
	return fault.New(fault.Unauthenticated, ReasonInvalid, "the access token is invalid; log in again").WithCause(cause)
}

// expired returns the fault for a genuine token past its expiry.
func expired(cause error) error {
	return fault.New(fault.Unauthenticated, ReasonExpired, "the access token has expired; refresh the session").WithCause(cause)
}

// wrongTenant returns the fault for a genuine token of another tenant.
func wrongTenant() error {
	return fault.New(fault.Unauthenticated, ReasonWrongTenant,
		"the access token was not issued for this tenant; log in to this tenant")
}

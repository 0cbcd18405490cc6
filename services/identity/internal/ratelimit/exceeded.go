package ratelimit

import (
	"time"

	"tenantry.dev/platform/fault"
)

// ReasonRateLimited is the stable reason of the fault Exceeded returns.
const ReasonRateLimited = "RATE_LIMITED"

// MetadataRetryAfter is the fault metadata key holding the wait, as
// time.Duration.String formats it; the gRPC layer turns it into a
// google.rpc.RetryInfo.
const MetadataRetryAfter = "retry_after"

// Exceeded returns the ResourceExhausted fault for a refused decision, such
// as "too many login attempts; retry in 12 seconds" for what = "login
// attempts", with the exact wait in its retry_after metadata. It returns nil
// when d allowed the request, so callers can write
//
//	if err := ratelimit.Exceeded(d, "login attempts"); err != nil {
//		return err
//	}
func Exceeded(d Decision, what string) error {
	if d.Allowed {
		return nil
	}
	// Whole seconds, rounded up, at least one: people read this message,
	// and a retry a moment too early would be refused again.
	seconds := int64((d.RetryAfter + time.Second - 1) / time.Second)
	unit := "seconds"
	switch {
	case seconds < 1:
		seconds, unit = 1, "second"
	case seconds == 1:
		unit = "second"
	}
	return fault.New(fault.ResourceExhausted, ReasonRateLimited, "too many %s; retry in %d %s", what, seconds, unit).
		WithMetadata(MetadataRetryAfter, d.RetryAfter.String())
}

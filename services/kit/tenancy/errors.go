package tenancy

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
)

// outcome is what a failed ResolveTenant call means for the lookup.
type outcome int

const (
	// unavailable: the registry could not answer (down, overloaded, slow,
	// or failing). A cached answer, even a stale one, is served instead.
	unavailable outcome = iota
	// notFound: the registry says no tenant answers to the key.
	notFound
	// invalid: the registry refused the key itself.
	invalid
	// rejected: the registry refused this service's credential. The
	// cache still serves what it has, but this needs an operator.
	rejected
	// canceled: the caller gave up; nobody waits for an answer.
	canceled
)

// retryAfter is the hint given to clients when the registry is unavailable:
// long enough for a restarted registry to be back, short enough that users
// do not notice.
const retryAfter = "1s"

// classify says what err, returned by a ResolveTenant call made with ctx,
// means.
func classify(ctx context.Context, err error) outcome {
	if errors.Is(ctx.Err(), context.Canceled) {
		return canceled
	}
	switch status.Code(err) {
	case codes.NotFound:
		return notFound
	case codes.InvalidArgument:
		return invalid
	case codes.Unauthenticated, codes.PermissionDenied:
		return rejected
	default:
		// Unavailable and DeadlineExceeded above all, but also Internal,
		// Unknown and the rest: whatever went wrong, it is the registry's
		// problem, not the request's.
		return unavailable
	}
}

// callError returns the error a lookup of k fails with after a ResolveTenant
// call failed with err.
func callError(o outcome, k key, err error) error {
	switch o {
	case notFound:
		return errNotFound(k)
	case invalid:
		reason := "TENANT_KEY_INVALID"
		if r := errorReason(err); r != "" {
			reason = r
		}
		return fault.New(fault.InvalidArgument, reason, "%s", status.Convert(err).Message()).WithCause(err)
	case rejected:
		return fault.New(fault.Internal, ReasonRegistryRejected, "cannot resolve tenants at the moment").WithCause(err)
	case canceled:
		return fmt.Errorf("resolve tenant for %s: %w", describe(k), err)
	default:
		return fault.New(fault.Unavailable, ReasonRegistryUnavailable,
			"cannot reach the tenant registry to resolve %s; try again shortly", describe(k)).
			WithCause(err).
			WithMetadata(grpcerr.MetadataRetryAfter, retryAfter)
	}
}

// errNotFound is the fault for a key no tenant answers to.
func errNotFound(k key) error {
	return fault.New(fault.NotFound, ReasonTenantNotFound, "no tenant for %s", describe(k))
}

// describe names a key for messages. Keys are validated ASCII by then, so
// they are safe to repeat.
func describe(k key) string {
	if k.kind == byHost {
		return fmt.Sprintf("host %q", k.value)
	}
	return fmt.Sprintf("slug %q", k.value)
}

// errorReason returns the google.rpc.ErrorInfo reason of a gRPC error, if
// it has one.
func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// Package grpcerr is the one place where errors become gRPC statuses.
//
// Handlers and interceptors return whatever error they have; grpcerr turns
// a *fault.Error into a status with a code a client can act on and the
// standard google.rpc details (ErrorInfo always, BadRequest for field
// violations, RetryInfo when the fault says when to retry). An error caused
// by a database outage becomes Unavailable, so that clients retry. Anything
// else it does not recognise becomes Internal with a fixed message, so that
// SQL text, file paths and other internals never reach a client: those
// belong in logs.
//
// grpcerr imports pgoutage, and not the other way round or through a
// classifier handed in by each service: the question "is this cause a
// database outage" has one answer for every service, a hook set at start-up
// could be forgotten (and a forgotten one silently brings back INTERNAL for
// outages), and pgoutage is a leaf that depends on pgx only, which both
// services link anyway.
package grpcerr

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/pgoutage"
	"tenantry.dev/platform/tenantdb"
)

// Domain is the ErrorInfo domain of every error Tenantry produces, so that
// clients can tell our reasons from those of proxies and libraries.
const Domain = "tenantry.dev"

// MetadataRetryAfter is the fault metadata key that, holding a Go duration
// string such as "30s", adds a google.rpc.RetryInfo detail to the status.
const MetadataRetryAfter = "retry_after"

// internalMessage is all a client learns about an error we did not expect.
const internalMessage = "internal error"

// ReasonDatabaseUnavailable is the ErrorInfo reason of the Unavailable
// status that an error caused by a database outage becomes.
const ReasonDatabaseUnavailable = "DATABASE_UNAVAILABLE"

// databaseRetryAfter is the RetryInfo delay suggested during a database
// outage: a restart or failover takes seconds, and clients back off from
// there.
const databaseRetryAfter = "1s"

// databaseUnavailable is what a client learns of a database outage.
var databaseUnavailable = fault.New(fault.Unavailable, ReasonDatabaseUnavailable,
	"the database is unavailable; retry shortly").WithMetadata(MetadataRetryAfter, databaseRetryAfter)

// tenantMoving is what a client learns of a write that stayed fenced by a
// tenant move longer than services wait for it (tenantdb.RetryMoving).
var tenantMoving = fault.New(fault.Unavailable, ReasonTenantMoving,
	"the tenant is moving to another database; retry shortly").WithMetadata(MetadataRetryAfter, databaseRetryAfter)

// ReasonTenantMoving is the reason of a write refused by a tenant move's
// fence (SQLSTATE TNMOV) that the service could not follow.
const ReasonTenantMoving = "TENANT_MOVING"

// Error returns err as a gRPC status error, as described for Status. It
// returns nil for a nil err so that handlers can end with
// `return resp, grpcerr.Error(err)`.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return Status(err).Err()
}

// Status converts err into the gRPC status sent to the client:
//
//   - a *fault.Error anywhere in err's chain becomes the code of its kind,
//     its message, and its details;
//   - a gRPC status error (for instance from a downstream call) passes
//     through unchanged;
//   - an internal fault or an unknown error whose chain holds a
//     serialization failure or a deadlock becomes Aborted (retry);
//   - an internal fault or an unknown error whose chain pgoutage.Is calls a
//     database outage becomes Unavailable, reason DATABASE_UNAVAILABLE, with
//     a RetryInfo: the same request will likely succeed shortly;
//   - context.Canceled and context.DeadlineExceeded become Canceled and
//     DeadlineExceeded;
//   - anything else becomes Internal with the message "internal error".
//
// A nil err gives an OK status.
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	f, isFault := fault.As(err)
	// A fault of a specific kind is the domain's own verdict; it wins over
	// whatever it wraps.
	if isFault && f.Kind != fault.Internal {
		return fromFault(f)
	}
	if !isFault {
		var se interface{ GRPCStatus() *status.Status }
		if errors.As(err, &se) {
			if st := se.GRPCStatus(); st != nil {
				return st
			}
		}
	}
	// Domain code wraps store errors it cannot name as internal faults, so
	// the outage is looked for in the cause chain here, once for every
	// service, rather than at each call site. It comes before the context
	// checks because a connect timeout is a deadline inside a connect error;
	// pgoutage leaves the caller's own cancellation and deadlines alone.
	if pgoutage.Is(err) {
		return fromFault(databaseUnavailable)
	}
	if tenantdb.IsMoving(err) {
		return fromFault(tenantMoving)
	}
	if pgoutage.IsConflict(err) {
		return withInfo(codes.Aborted, "the operation collided with a concurrent one; retry it", "CONCURRENT_CONFLICT", nil)
	}
	// An internal fault caused by the caller going away is better reported
	// as what it really is, so that callers do not retry a cancellation.
	switch {
	case errors.Is(err, context.Canceled):
		return withInfo(codes.Canceled, "request canceled", "CANCELED", nil)
	case errors.Is(err, context.DeadlineExceeded):
		return withInfo(codes.DeadlineExceeded, "deadline exceeded", "DEADLINE_EXCEEDED", nil)
	}
	if isFault {
		return fromFault(f)
	}
	return withInfo(codes.Internal, internalMessage, "INTERNAL", nil)
}

// Code returns the gRPC code for a fault kind.
func Code(kind fault.Kind) codes.Code {
	switch kind {
	case fault.InvalidArgument:
		return codes.InvalidArgument
	case fault.NotFound:
		return codes.NotFound
	case fault.AlreadyExists:
		return codes.AlreadyExists
	case fault.FailedPrecondition:
		return codes.FailedPrecondition
	case fault.Aborted:
		return codes.Aborted
	case fault.Unauthenticated:
		return codes.Unauthenticated
	case fault.PermissionDenied:
		return codes.PermissionDenied
	case fault.ResourceExhausted:
		return codes.ResourceExhausted
	case fault.Unavailable:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

// fromFault builds the status for a fault, with its details.
func fromFault(f *fault.Error) *status.Status {
	code := Code(f.Kind)
	reason := f.Reason
	if reason == "" {
		reason = defaultReason(code)
	}
	msg := f.Message
	if msg == "" {
		msg = defaultMessage(code)
	}

	var details []protoadapt.MessageV1
	if len(f.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range f.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       v.Field,
				Description: v.Description,
			})
		}
		details = append(details, br)
	}
	if raw, ok := f.Metadata[MetadataRetryAfter]; ok {
		// A malformed hint is dropped rather than failing the whole error:
		// the ErrorInfo metadata still carries the raw value.
		if d, err := time.ParseDuration(raw); err == nil && d >= 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		}
	}
	return withInfo(code, msg, reason, f.Metadata, details...)
}

// withInfo returns a status carrying an ErrorInfo and any further details.
func withInfo(code codes.Code, msg, reason string, metadata map[string]string, more ...protoadapt.MessageV1) *status.Status {
	st := status.New(code, msg)
	info := &errdetails.ErrorInfo{Reason: reason, Domain: Domain}
	if len(metadata) > 0 {
		info.Metadata = make(map[string]string, len(metadata))
		for k, v := range metadata {
			info.Metadata[k] = v
		}
	}
	withDetails, err := st.WithDetails(append([]protoadapt.MessageV1{info}, more...)...)
	if err != nil {
		// Only a marshalling failure gets here; the code and message are
		// still right, so send them without details.
		return st
	}
	return withDetails
}

// defaultReason is the reason used for a fault that did not name one.
func defaultReason(code codes.Code) string {
	switch code {
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.Aborted:
		return "ABORTED"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.Unavailable:
		return "UNAVAILABLE"
	default:
		return "INTERNAL"
	}
}

// defaultMessage is the message used for a fault that did not give one.
func defaultMessage(code codes.Code) string {
	switch code {
	case codes.InvalidArgument:
		return "invalid argument"
	case codes.NotFound:
		return "not found"
	case codes.AlreadyExists:
		return "already exists"
	case codes.FailedPrecondition:
		return "failed precondition"
	case codes.Aborted:
		return "aborted; retry the whole operation"
	case codes.Unauthenticated:
		return "unauthenticated"
	case codes.PermissionDenied:
		return "permission denied"
	case codes.ResourceExhausted:
		return "resource exhausted"
	case codes.Unavailable:
		return "unavailable; retry later"
	default:
		return internalMessage
	}
}

// Reason returns the reason of the google.rpc.ErrorInfo a status carries,
// or "" when it has none: what a client (or a test) branches on, rather
// than the message.
func Reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// RetryDelay returns the delay of the google.rpc.RetryInfo a status
// carries, and whether it has one.
func RetryDelay(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok {
			return info.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

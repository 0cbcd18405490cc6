// Package fault defines the typed errors that domain code returns. A fault
// carries a kind (what went wrong, in terms a client can act on), a stable
// UPPER_SNAKE reason, a message for people and, for bad input, the offending
// fields. Transport layers translate faults into their own status codes in
// one place; domain code never imports gRPC.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies a fault. The kinds mirror the gRPC codes a client can act
// on, without depending on gRPC.
type Kind int

// The kinds of fault. Internal is the zero value so that a forgotten kind
// never leaks as something more specific.
const (
	Internal Kind = iota
	InvalidArgument
	NotFound
	AlreadyExists
	FailedPrecondition
	Aborted
	Unauthenticated
	PermissionDenied
	ResourceExhausted
	Unavailable
)

// String returns the kind's name, for logs and tests.
func (k Kind) String() string {
	switch k {
	case InvalidArgument:
		return "InvalidArgument"
	case NotFound:
		return "NotFound"
	case AlreadyExists:
		return "AlreadyExists"
	case FailedPrecondition:
		return "FailedPrecondition"
	case Aborted:
		return "Aborted"
	case Unauthenticated:
		return "Unauthenticated"
	case PermissionDenied:
		return "PermissionDenied"
	case ResourceExhausted:
		return "ResourceExhausted"
	case Unavailable:
		return "Unavailable"
	default:
		return "Internal"
	}
}

// FieldViolation names one invalid field of a request and says why.
type FieldViolation struct {
	// Field is the path of the field in the request, e.g. "tenant.display_name".
	Field string
	// Description tells a person what to change.
	Description string
}

// Error is a fault. Its Message is safe to show to clients; Cause is for
// logs only and is never sent over the wire.
type Error struct {
	Kind       Kind
	Reason     string
	Message    string
	Violations []FieldViolation
	// Metadata is extra machine-readable context (e.g. "retry_after").
	Metadata map[string]string
	// Cause is the underlying error, kept for logs and errors.Is.
	Cause error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Reason, e.Message, e.Cause)
	}
	return e.Reason + ": " + e.Message
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Cause }

// New returns a fault of the given kind and reason with a formatted message.
func New(kind Kind, reason, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an InvalidArgument fault for one field.
func Invalid(field, reason, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{
		Kind:       InvalidArgument,
		Reason:     reason,
		Message:    msg,
		Violations: []FieldViolation{{Field: field, Description: msg}},
	}
}

// WithCause returns a copy of e that records cause for logs.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// WithMetadata returns a copy of e with one more metadata entry.
func (e *Error) WithMetadata(key, value string) *Error {
	c := *e
	c.Metadata = make(map[string]string, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		c.Metadata[k] = v
	}
	c.Metadata[key] = value
	return &c
}

// As returns the fault in err's chain, if any.
func As(err error) (*Error, bool) {
	var f *Error
	if errors.As(err, &f) {
		return f, true
	}
	return nil, false
}

// KindOf returns the kind of the fault in err's chain, or Internal when err
// is not a fault.
func KindOf(err error) Kind {
	if f, ok := As(err); ok {
		return f.Kind
	}
	return Internal
}

// ReasonOf returns the reason of the fault in err's chain, or "" when err is
// not a fault.
func ReasonOf(err error) string {
	if f, ok := As(err); ok {
		return f.Reason
	}
	return ""
}

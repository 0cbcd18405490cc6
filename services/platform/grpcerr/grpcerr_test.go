package grpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
)

// roundTrip sends err's status through its wire form, as a client would
// receive it, so the tests see only what really crosses the network.
func roundTrip(t *testing.T, err error) *status.Status {
	t.Helper()
	wire, merr := proto.Marshal(status.Convert(grpcerr.Error(err)).Proto())
	require.NoError(t, merr)
	var pb spb.Status
	require.NoError(t, proto.Unmarshal(wire, &pb))
	return status.FromProto(&pb)
}

// details sorts a status's details by type.
type details struct {
	info  *errdetails.ErrorInfo
	bad   *errdetails.BadRequest
	retry *errdetails.RetryInfo
}

func detailsOf(t *testing.T, st *status.Status) details {
	t.Helper()
	var d details
	for _, detail := range st.Details() {
		switch v := detail.(type) {
		case *errdetails.ErrorInfo:
			require.Nil(t, d.info, "more than one ErrorInfo")
			d.info = v
		case *errdetails.BadRequest:
			d.bad = v
		case *errdetails.RetryInfo:
			d.retry = v
		case error:
			require.NoError(t, v, "undecodable detail")
		default:
			t.Fatalf("unexpected detail %T", v)
		}
	}
	return d
}

func TestStatusMapsFaultKindsToCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind fault.Kind
		code codes.Code
	}{
		{fault.InvalidArgument, codes.InvalidArgument},
		{fault.NotFound, codes.NotFound},
		{fault.AlreadyExists, codes.AlreadyExists},
		{fault.FailedPrecondition, codes.FailedPrecondition},
		{fault.Aborted, codes.Aborted},
		{fault.Unauthenticated, codes.Unauthenticated},
		{fault.PermissionDenied, codes.PermissionDenied},
		{fault.ResourceExhausted, codes.ResourceExhausted},
		{fault.Unavailable, codes.Unavailable},
		{fault.Internal, codes.Internal},
	}
	for _, tc := range cases {
		t.Run(tc.kind.String()+" becomes "+tc.code.String(), func(t *testing.T) {
			t.Parallel()
			st := roundTrip(t, fault.New(tc.kind, "SOME_REASON", "the %s message", "client"))
			require.Equal(t, tc.code, st.Code())
			require.Equal(t, "the client message", st.Message())
			d := detailsOf(t, st)
			require.NotNil(t, d.info, "ErrorInfo is always attached")
			require.Equal(t, "SOME_REASON", d.info.GetReason())
			require.Equal(t, grpcerr.Domain, d.info.GetDomain())
			require.Nil(t, d.bad)
			require.Nil(t, d.retry)
		})
	}
}

func TestStatusDetails(t *testing.T) {
	t.Parallel()

	t.Run("field violations become a BadRequest", func(t *testing.T) {
		t.Parallel()
		f := fault.Invalid("tenant.slug", "INVALID_SLUG", "slug must be lowercase")
		f.Violations = append(f.Violations, fault.FieldViolation{Field: "tenant.display_name", Description: "required"})
		d := detailsOf(t, roundTrip(t, f))
		require.Equal(t, "INVALID_SLUG", d.info.GetReason())
		require.NotNil(t, d.bad)
		require.Len(t, d.bad.GetFieldViolations(), 2)
		require.Equal(t, "tenant.slug", d.bad.GetFieldViolations()[0].GetField())
		require.Equal(t, "slug must be lowercase", d.bad.GetFieldViolations()[0].GetDescription())
		require.Equal(t, "tenant.display_name", d.bad.GetFieldViolations()[1].GetField())
	})

	t.Run("metadata goes into ErrorInfo", func(t *testing.T) {
		t.Parallel()
		f := fault.New(fault.NotFound, "TENANT_NOT_FOUND", "no such tenant").WithMetadata("tenant", "acme")
		d := detailsOf(t, roundTrip(t, f))
		require.Equal(t, map[string]string{"tenant": "acme"}, d.info.GetMetadata())
	})

	t.Run("retry_after adds a RetryInfo", func(t *testing.T) {
		t.Parallel()
		f := fault.New(fault.Unavailable, "DATABASE_UNAVAILABLE", "try again").WithMetadata(grpcerr.MetadataRetryAfter, "1m30s")
		d := detailsOf(t, roundTrip(t, f))
		require.NotNil(t, d.retry)
		require.Equal(t, 90*time.Second, d.retry.GetRetryDelay().AsDuration())
		require.Equal(t, "1m30s", d.info.GetMetadata()[grpcerr.MetadataRetryAfter])
	})

	t.Run("a malformed retry_after is left out of RetryInfo", func(t *testing.T) {
		t.Parallel()
		f := fault.New(fault.Unavailable, "DATABASE_UNAVAILABLE", "try again").WithMetadata(grpcerr.MetadataRetryAfter, "soon")
		st := roundTrip(t, f)
		require.Equal(t, codes.Unavailable, st.Code())
		d := detailsOf(t, st)
		require.Nil(t, d.retry)
		require.Equal(t, "soon", d.info.GetMetadata()[grpcerr.MetadataRetryAfter])
	})

	t.Run("a fault without reason or message gets defaults", func(t *testing.T) {
		t.Parallel()
		st := roundTrip(t, &fault.Error{Kind: fault.NotFound})
		require.Equal(t, codes.NotFound, st.Code())
		require.Equal(t, "not found", st.Message())
		require.Equal(t, "NOT_FOUND", detailsOf(t, st).info.GetReason())
	})
}

func TestStatusNeverLeaksInternals(t *testing.T) {
	t.Parallel()
	secret := `pq: relation "tenant_acme.users" does not exist`
	cases := []struct {
		name string
		err  error
	}{
		{"a plain error", errors.New(secret)},
		{"a wrapped plain error", fmt.Errorf("create tenant: %w", errors.New(secret))},
		{"the cause of an internal fault", fault.New(fault.Internal, "STORE_FAILED", "could not save").WithCause(errors.New(secret))},
		{"the cause of a specific fault", fault.New(fault.NotFound, "TENANT_NOT_FOUND", "no such tenant").WithCause(errors.New(secret))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := roundTrip(t, tc.err)
			require.NotContains(t, st.Message(), "pq:")
			for _, d := range st.Details() {
				require.NotContains(t, fmt.Sprint(d), "pq:")
			}
		})
	}

	t.Run("an unknown error is Internal with a fixed message", func(t *testing.T) {
		t.Parallel()
		st := roundTrip(t, errors.New(secret))
		require.Equal(t, codes.Internal, st.Code())
		require.Equal(t, "internal error", st.Message())
		d := detailsOf(t, st)
		require.Equal(t, "INTERNAL", d.info.GetReason())
		require.Equal(t, grpcerr.Domain, d.info.GetDomain())
	})
}

func TestStatusPassesThroughAndContext(t *testing.T) {
	t.Parallel()

	t.Run("an existing status error passes through unchanged", func(t *testing.T) {
		t.Parallel()
		orig, err := status.New(codes.OutOfRange, "page token expired").
			WithDetails(&errdetails.ErrorInfo{Reason: "PAGE_TOKEN_EXPIRED", Domain: "elsewhere.dev"})
		require.NoError(t, err)
		got := grpcerr.Status(orig.Err())
		require.True(t, proto.Equal(orig.Proto(), got.Proto()))
	})

	t.Run("a wrapped status error passes through without the wrapping text", func(t *testing.T) {
		t.Parallel()
		orig := status.New(codes.Unavailable, "identity is down")
		got := grpcerr.Status(fmt.Errorf("calling identity: %w", orig.Err()))
		require.True(t, proto.Equal(orig.Proto(), got.Proto()))
	})

	t.Run("a fault wrapping a status error wins", func(t *testing.T) {
		t.Parallel()
		err := fault.New(fault.Unavailable, "IDENTITY_UNAVAILABLE", "identity is unavailable").
			WithCause(status.Error(codes.Internal, "boom"))
		st := roundTrip(t, err)
		require.Equal(t, codes.Unavailable, st.Code())
		require.Equal(t, "IDENTITY_UNAVAILABLE", detailsOf(t, st).info.GetReason())
	})

	cases := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"context.Canceled becomes Canceled", context.Canceled, codes.Canceled},
		{"a wrapped context.Canceled becomes Canceled", fmt.Errorf("query: %w", context.Canceled), codes.Canceled},
		{"context.DeadlineExceeded becomes DeadlineExceeded", context.DeadlineExceeded, codes.DeadlineExceeded},
		{"an internal fault caused by a deadline becomes DeadlineExceeded",
			fault.New(fault.Internal, "STORE_FAILED", "could not save").WithCause(context.DeadlineExceeded), codes.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.code, roundTrip(t, tc.err).Code())
		})
	}

	t.Run("nil is OK", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, grpcerr.Error(nil))
		require.Equal(t, codes.OK, grpcerr.Status(nil).Code())
	})
}

package grpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/tenantdb"
)

// internalFault wraps err as identity's domain wraps a store error it
// cannot name.
func internalFault(err error) error {
	return fault.New(fault.Internal, "INTERNAL", "internal error").WithCause(fmt.Errorf("sign up: %w", err))
}

// refusedConnect returns pgx's error for connecting to a port nobody
// listens on, as while PostgreSQL is stopped.
func refusedConnect(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pgconn.Connect(ctx, "postgres://postgres@"+addr+"/postgres?sslmode=disable")
	var connectErr *pgconn.ConnectError
	require.ErrorAs(t, err, &connectErr)
	return err
}

// closedPool returns pgxpool's error for a query on a closed pool, as
// while a service shuts down.
func closedPool(t *testing.T) error {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable")
	require.NoError(t, err)
	pool.Close()
	_, err = pool.Exec(context.Background(), "SELECT 1")
	require.Error(t, err)
	return err
}

func TestStatusReportsADatabaseOutageAsUnavailable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  func(t *testing.T) error
	}{
		{"an internal fault caused by a refused connection", func(t *testing.T) error { return internalFault(refusedConnect(t)) }},
		{"a bare refused connection", refusedConnect},
		{"an internal fault caused by a closed pool", func(t *testing.T) error { return internalFault(closedPool(t)) }},
		{"a wrapped closed pool", func(t *testing.T) error { return fmt.Errorf("ratelimit: check login: %w", closedPool(t)) }},
		{"an internal fault caused by admin_shutdown", func(t *testing.T) error {
			return internalFault(&pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name+" becomes Unavailable with DATABASE_UNAVAILABLE and a RetryInfo", func(t *testing.T) {
			t.Parallel()
			st := roundTrip(t, tc.err(t))
			require.Equal(t, codes.Unavailable, st.Code())
			require.Equal(t, "the database is unavailable; retry shortly", st.Message())
			d := detailsOf(t, st)
			require.Equal(t, grpcerr.ReasonDatabaseUnavailable, d.info.GetReason())
			require.Equal(t, grpcerr.Domain, d.info.GetDomain())
			require.NotNil(t, d.retry)
			require.Equal(t, time.Second, d.retry.GetRetryDelay().AsDuration())
			for _, detail := range st.Details() {
				require.NotContains(t, fmt.Sprint(detail), "127.0.0.1", "the database's address leaked")
			}
		})
	}
}

func TestStatusKeepsOtherDatabaseErrorsAsTheyWere(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  func(t *testing.T) error
		code codes.Code
	}{
		{"a syntax error stays Internal", func(t *testing.T) error {
			return internalFault(&pgconn.PgError{Severity: "ERROR", Code: "42601", Message: `syntax error at or near "SELEC"`})
		}, codes.Internal},
		{"a unique violation the domain did not name stays Internal", func(t *testing.T) error {
			return internalFault(&pgconn.PgError{Severity: "ERROR", Code: "23505", Message: "duplicate key value"})
		}, codes.Internal},
		{"a wrong database password stays Internal", func(t *testing.T) error {
			return internalFault(&pgconn.PgError{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"})
		}, codes.Internal},
		{"a specific fault wrapping an outage keeps its own kind", func(t *testing.T) error {
			return fault.New(fault.NotFound, "TENANT_NOT_FOUND", "no such tenant").WithCause(refusedConnect(t))
		}, codes.NotFound},
		{"a canceled caller during an outage is Canceled", func(t *testing.T) error {
			return internalFault(errors.Join(context.Canceled, closedPool(t)))
		}, codes.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.code, roundTrip(t, tc.err(t)).Code())
		})
	}
}

func TestConflictsAreAborted(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"40001", "40P01"} {
		st := grpcerr.Status(internalFault(&pgconn.PgError{Code: code, Message: "could not serialize access"}))
		require.Equal(t, codes.Aborted, st.Code(), code)
		require.Equal(t, "CONCURRENT_CONFLICT", grpcerr.Reason(st))
		require.NotContains(t, st.Message(), "serialize", "PostgreSQL's text reached the client")
	}
	require.Equal(t, codes.Internal, grpcerr.Status(internalFault(&pgconn.PgError{Code: "23505"})).Code(), "a unique violation is no conflict to retry")
}

// A write a tenant move's fence refused, which the service could not
// follow to the new placement, is a retryable UNAVAILABLE, not INTERNAL.
func TestAFencedWriteIsUnavailable(t *testing.T) {
	t.Parallel()
	st := grpcerr.Status(internalFault(&pgconn.PgError{Code: tenantdb.MovingSQLState, Message: "tenant schema acme is moving"}))
	require.Equal(t, codes.Unavailable, st.Code())
	require.Equal(t, grpcerr.ReasonTenantMoving, grpcerr.Reason(st))
	require.NotContains(t, st.Message(), "acme", "PostgreSQL's text reached the client")
}

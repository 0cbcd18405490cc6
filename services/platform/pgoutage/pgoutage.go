// Package pgoutage tells a PostgreSQL outage from every other database
// error.
//
// An outage is the database being unreachable or going away under us: the
// server restarting, failing over, refusing connections while it starts or
// shuts down, or out of connection slots; a connection dying mid-query; the
// pool closed because the service itself is shutting down. None of these is
// the caller's fault nor ours, and the same request is likely to succeed
// moments later, so clients should be told to retry (gRPC UNAVAILABLE)
// rather than be told we failed (INTERNAL).
//
// Everything else the database says — syntax errors, constraint violations,
// a bad password or a missing database in our own configuration — is a bug
// or a misconfiguration that retrying will not cure, and [Is] reports it as
// no outage, so that it stays INTERNAL and is logged as an error.
//
// pgx returns a connection dying mid-query as the bare network error
// (io.ErrUnexpectedEOF, *net.OpError), so [Is] recognises network errors by
// type, not by origin. Code that talks to another backend over the network
// in a request must therefore report that backend's failures as a fault of
// a specific kind (as identity does for the registry, with Unavailable and
// a reason of its own), or they read as a database outage.
//
// The package knows pgx's error types and nothing of gRPC or of either
// service, so that grpcerr (the one place errors become statuses) can ask it
// about any cause chain and every store gets the same answer.
package pgoutage

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Is reports whether err, anywhere in its chain, means that PostgreSQL could
// not be reached or went away, as opposed to rejecting what we sent. A nil
// err is no outage, nor is one caused by the caller's context being
// canceled, or running out of time other than while connecting: the caller
// went away, not the database.
func Is(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	// When the server answered, its SQLSTATE is the verdict, even inside a
	// connect error: "the database system is starting up" is an outage, a
	// wrong password or an unknown database is our configuration.
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return outageSQLState(pgErr.Code)
	}
	// Failing to connect is an outage whatever the cause: refused, reset,
	// DNS, TLS handshake, or connect_timeout, which pgconn reports as a
	// timeout (pgconn.Timeout) on a deadline of its own inside the connect
	// error, and which must not be mistaken for the caller's deadline below.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	// Otherwise a deadline is the caller's: grpcerr reports it as such.
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// The pool is closed: the service is shutting down.
	if errors.Is(err, puddle.ErrClosedPool) {
		return true
	}
	// The connection died: the server closed it (EOF mid-message), the
	// socket was closed, or pgconn had already marked it closed.
	if errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// Any other network error: reset, broken pipe, unreachable host, or a
	// socket timeout (pgconn.Timeout without a context), the server having
	// stopped answering.
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// pgconn marks errors that happened before anything reached the server
	// as safe to retry; apart from misuse of a connection, which is a bug,
	// that means the connection was unusable.
	return pgconn.SafeToRetry(err) && !connMisused(err)
}

// outageSQLState reports whether a SQLSTATE says the server cannot serve us
// right now, rather than that our statement or configuration is wrong.
func outageSQLState(code string) bool {
	switch code {
	case "57P01", // admin_shutdown: fast or smart shutdown, pg_terminate_backend
		"57P02", // crash_shutdown: another backend crashed, the server restarts
		"57P03", // cannot_connect_now: starting up, shutting down, in recovery
		"57P05", // idle_session_timeout: the server closed an idle pooled connection
		"53300", // too_many_connections: no connection slot free right now
		// read_only_sql_transaction: a write reached a standby, as during
		// a failover while a pooler or DNS still names the demoted primary.
		"25006":
		return true
	case "08P01":
		// protocol_violation: what we sent was wrong (a bug of ours or of
		// a library); retrying would send it again.
		return false
	}
	// Class 08, connection exception: the connection failed or was lost.
	return strings.HasPrefix(code, "08")
}

// connMisused reports pgconn's lock errors for a connection that was busy
// or never initialised. pgconn marks them safe to retry because nothing was
// sent, but they come from using one connection concurrently, a bug; it
// exports no sentinel for them, so their fixed text is all there is to go
// on. A closed connection, the other lock error, unwraps to ErrConnClosed
// and never gets here.
func connMisused(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e.Error() {
		case "conn busy", "conn uninitialized":
			return true
		}
	}
	return false
}

// IsConflict reports whether err's chain holds PostgreSQL's verdict that a
// transaction lost to a concurrent one: a serialization failure (40001) or
// a deadlock (40P01). It is no outage, but the remedy is the same kind:
// retry the whole operation, which gRPC calls ABORTED.
func IsConflict(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "40001" || pgErr.Code == "40P01"
}

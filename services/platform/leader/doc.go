// Package leader elects, among the replicas of a service that share a
// PostgreSQL database, the one that runs the service's singleton background
// work, with a session-level advisory lock as the lease.
//
// Each replica runs an [Elector] with the same name. The elector keeps one
// connection of its own, outside any pool (a session lock belongs to its
// connection, and a pool would hand the connection to other work or close
// it), and tries pg_try_advisory_lock every check interval. The replica
// that gets the lock leads: after a takeover delay it runs the work function
// with a context of its own, the term's, and checks every interval that its
// connection is alive and still holds the lock.
//
// Guarantees:
//   - at most one replica holds the lock: PostgreSQL grants a session lock to
//     one session at a time, whatever the replicas believe;
//   - a leader whose check fails (the connection died, was terminated, or
//     did not answer within one interval) stops leading at once: the term's
//     context is cancelled and [Elector.Leading] turns false before anything
//     else, so work stops within about two intervals of the connection's
//     death;
//   - a new leader starts its work only a takeover delay (two and a half
//     intervals) after it got the lock, which is longer than an old leader
//     takes to notice that the session holding the lock has ended: when
//     the lock was released because the old leader's session died
//     (pg_terminate_backend, a crash of the backend), the old term's
//     context is cancelled before the new term's work starts;
//   - a leader cut off from the database (a network partition) cannot keep
//     the lock for ever: its session is started with idle_session_timeout at
//     four intervals, so PostgreSQL ends it, releasing the lock, four
//     intervals after the last check it received, which is after the
//     partitioned leader's own check has failed and cancelled its work;
//   - a leader that stops (its Run context ends) cancels its work, waits for
//     it to return, and only then unlocks, so the next leader never starts
//     while the old one's work is still running.
//
// The window, stated honestly: cancelling a context does not stop work that
// ignores it, nor a statement already running on another connection (pgx
// cancels those on the server, which takes a round trip). A leader whose
// process is frozen (stopped, swapped out) for longer than the takeover
// delay and whose session was terminated meanwhile can run for a moment
// after the next leader started, until its first check after it wakes. So
// the lease avoids duplicate work; it does not by itself make duplicate work
// safe. Work run under it must stay idempotent or be guarded on its own (a
// lease row, a transaction-scoped lock), as it would be without a leader.
//
// The leader's connection must reach PostgreSQL directly, or through a
// pooler in session mode: a transaction-mode pooler would hand the session
// holding the lock to other clients.
package leader

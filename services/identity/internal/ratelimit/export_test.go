package ratelimit

import "time"

// SetClock makes l decide at the times now returns instead of by the
// database clock, so tests can step time without sleeping.
func SetClock(l *Limiter, now func() time.Time) { l.now = now }

// Key returns the storage key of a limit's scope.
func Key(name string, parts ...string) string { return key(name, parts) }

// DecideSQL is the statement that decides and charges.
const DecideSQL = decideSQL

package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"
)

// Limit is a rate limit: on average Rate events Per duration, with up to
// Burst events at once after a quiet period. For example, 5 per minute with
// a burst of 10 allows 10 attempts in a row, then one every 12 seconds.
type Limit struct {
	// Name identifies the limit and namespaces its keys, such as
	// "login.account". Lower-case letters, digits, '.', '_' and '-'. Two
	// limits with the same name share their state, so names must be unique.
	Name string
	// Rate is the number of events allowed per Per, on average.
	Rate int
	// Per is the period Rate is counted over.
	Per time.Duration
	// Burst is the number of events allowed at once, at least 1.
	Burst int
}

// Decision is the outcome of a rate-limit check.
type Decision struct {
	// Allowed reports whether the request may go ahead. When it is true the
	// request has been counted against every limit checked.
	Allowed bool
	// RetryAfter is how long a refused request should wait before trying
	// again, rounded up to the millisecond; zero when Allowed.
	RetryAfter time.Duration
	// Remaining is how many more requests the most restrictive limit allows
	// right now; zero when refused.
	Remaining int
	// Limit names the limit that decided: the one that refused with the
	// longest wait, or, when allowed, the one with the fewest remaining.
	// It is for logs and metrics; a tenant-wide limit refusing deserves an
	// alert, an account-wide one does not.
	Limit string
}

// Check is one limit applied to one scope, for [Limiter.AllowAll]. Parts
// name the scope as for [Limiter.Allow]: the tenant first, then the scope
// values such as an account identifier or a client address.
type Check struct {
	// Limit is the limit to apply.
	Limit Limit
	// Parts identify the scope; see [Limiter.Allow].
	Parts []string
}

// maxHorizon bounds Burst·T, the furthest a TAT can run ahead of now, so the
// arithmetic stays far from time.Duration's 292-year range.
const maxHorizon = 10 * 365 * 24 * time.Hour

// limitName is what a Limit.Name may contain. ':' is excluded because it
// separates the parts of a key.
var limitName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// interval returns the limit's emission interval T = Per/Rate, rounded to
// the microsecond because that is PostgreSQL's timestamp resolution: the
// database and Go then do exactly the same arithmetic. It rejects limits
// that make no sense, which are programming or configuration errors.
func (l Limit) interval() (time.Duration, error) {
	switch {
	case !limitName.MatchString(l.Name):
		return 0, fmt.Errorf("limit name %q: want 1 to 63 of a-z, 0-9, '.', '_', '-'", l.Name)
	case l.Rate < 1:
		return 0, fmt.Errorf("limit %s: rate %d: want at least 1", l.Name, l.Rate)
	case l.Per <= 0:
		return 0, fmt.Errorf("limit %s: period %v: want a positive duration", l.Name, l.Per)
	case l.Burst < 1 || l.Burst > math.MaxInt32:
		return 0, fmt.Errorf("limit %s: burst %d: want 1 to %d", l.Name, l.Burst, math.MaxInt32)
	}
	t := (l.Per / time.Duration(l.Rate)).Round(time.Microsecond)
	if t <= 0 {
		return 0, fmt.Errorf("limit %s: %d per %v is more than one event per microsecond", l.Name, l.Rate, l.Per)
	}
	if t > maxHorizon/time.Duration(l.Burst) {
		return 0, fmt.Errorf("limit %s: burst %d of one event per %v spans more than %v", l.Name, l.Burst, t, maxHorizon)
	}
	return t, nil
}

// errNoChecks is returned by AllowAll without checks: allowing would hide a
// caller that forgot its limits, refusing would be a mystery.
var errNoChecks = errors.New("no checks given")

// Package accesslog decides which access-log records Tenantry's servers
// write: one per gRPC call (rpcserver) and one per HTTP request
// (restgateway).
//
// Every record costs CPU and log volume (one benchmark run of identity
// wrote 166 MB of them), and metrics and traces already see every call.
// So the records of routine calls (successes and callers' mistakes) are
// written at a configurable level and sampled, 1 in SampleEvery, while
// warnings and errors (the calls an operator must look at) are always
// written at their own level. The default, fit for production, writes
// routine records at info, 1 in 10; TENANTRY_ACCESS_LOG_SAMPLE=1 writes
// every one (development, debugging), a level of debug hides them unless
// the service logs at debug.
package accesslog

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"tenantry.dev/platform/flagenv"
)

// DefaultSampleEvery is how many routine calls share one record by
// default.
const DefaultSampleEvery = 10

// Policy says how routine records are written. The zero Policy writes every
// record at info. It is safe for concurrent use once built.
type Policy struct {
	// Level is the level of routine records.
	Level slog.Level
	// SampleEvery writes one routine record in SampleEvery; 0 and 1 write
	// all.
	SampleEvery uint64

	seen atomic.Uint64
}

// Routine decides on the record of a routine call: the level to write it
// at, and whether to write it at all. The sample is taken by counting, not
// at random, so that exactly one record in SampleEvery is written.
func (p *Policy) Routine() (slog.Level, bool) {
	if p == nil {
		return slog.LevelInfo, true
	}
	if p.SampleEvery <= 1 {
		return p.Level, true
	}
	return p.Level, (p.seen.Add(1)-1)%p.SampleEvery == 0
}

// Flags registers the policy's settings on fs:
// --access-log-level (TENANTRY_ACCESS_LOG_LEVEL, default info) and
// --access-log-sample (TENANTRY_ACCESS_LOG_SAMPLE, default 10).
func Flags(fs *flagenv.Set, p *Policy) {
	p.Level, p.SampleEvery = slog.LevelInfo, DefaultSampleEvery
	fs.Func("access-log-level", "TENANTRY_ACCESS_LOG_LEVEL",
		"level of the access log's records of routine calls (successes, callers' mistakes): debug, info, warn; "+
			"warnings and errors are always written at their own level (default info)",
		func(s string) error {
			var l slog.Level
			if err := l.UnmarshalText([]byte(s)); err != nil {
				return fmt.Errorf("%q is not a level: use debug, info or warn", s)
			}
			p.Level = l
			return nil
		})
	fs.Func("access-log-sample", "TENANTRY_ACCESS_LOG_SAMPLE",
		fmt.Sprintf("write one access-log record in N of routine calls; 1 writes every one (default %d)", DefaultSampleEvery),
		func(s string) error {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil || n == 0 {
				return fmt.Errorf("%q is not a whole number of 1 or more", s)
			}
			p.SampleEvery = n
			return nil
		})
}

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tenantry.dev/platform/benchkit"
)

// comparedRows are the rows a comparison of a call with a baseline fills
// in; an empty key is a row the comparison does not have.
type comparedRows struct {
	baseTPS, baseCPU          string
	tps, p50, p99, cpu, pgCPU string
	ratio                     string
	target                    float64 // 0: no target, the ratio is information
}

// compare runs base and call on identity interleaved, -clients callers
// each, rounds of round, identity's and PostgreSQL's CPU read around every
// slice, and fills in rows: throughputs, the call's latencies and CPU, and
// the ratio (met when at least rows.target and no call failed).
func (b *bench) compare(ctx context.Context, what string, round time.Duration, base, call benchkit.CallFunc, rows comparedRows) (benchkit.Comparison, error) {
	meters := []benchkit.CPUMeter{b.identityCPU, b.pgCPU}
	return b.compareSides(ctx, what, round, benchkit.Side{Call: base, CPU: meters}, benchkit.Side{Call: call, CPU: meters}, rows)
}

// compareSides is compare with each side's own CPU meters: the first is
// the identity serving it (its CPU rows), the second PostgreSQL.
func (b *bench) compareSides(ctx context.Context, what string, round time.Duration, base, call benchkit.Side, rows comparedRows) (benchkit.Comparison, error) {
	b.log.Info("measuring "+what+", interleaved", "clients", b.cfg.clients, "rounds", b.cfg.rounds, "round", round)
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: b.cfg.clients, Duration: round, Warmup: b.warmup()},
		base, call)
	if err != nil {
		return c, fmt.Errorf("%s: %w", what, err)
	}
	for _, s := range []struct {
		series benchkit.Series
		what   string
	}{{c.Base, what + ": the baseline"}, {c.Subject, what}} {
		total := s.series.Total()
		if total.Calls == 0 {
			return c, fmt.Errorf("no call of %s succeeded: %w", s.what, total.Err())
		}
		if err := total.Err(); err != nil {
			if rows.ratio != "" {
				b.unclean[rows.ratio] = true
			}
			b.tbl.Note("%s: %v", s.what, err)
		}
	}
	subject := c.Subject.Total()
	b.tbl.Info(rows.baseTPS, benchkit.FormatFloat(c.Base.MedianThroughput()))
	b.tbl.Info(rows.tps, benchkit.FormatFloat(c.Subject.MedianThroughput()))
	if rows.p50 != "" {
		b.tbl.Info(rows.p50, benchkit.FormatMillis(subject.Latency.Percentile(0.50)))
		b.tbl.Info(rows.p99, benchkit.FormatMillis(subject.Latency.Percentile(0.99)))
	}
	if rows.baseCPU != "" {
		b.cpuRow(rows.baseCPU, c.Base, 0, time.Microsecond)
	}
	if rows.cpu != "" {
		b.cpuRow(rows.cpu, c.Subject, 0, time.Microsecond)
	}
	if rows.pgCPU != "" {
		b.cpuRow(rows.pgCPU, c.Subject, 1, time.Microsecond)
	}
	switch {
	case rows.ratio == "":
	case rows.target == 0:
		b.tbl.Info(rows.ratio, benchkit.FormatFloat(c.Ratio))
	default:
		b.tbl.Set(rows.ratio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= rows.target && b.clean(rows.ratio)))
	}
	return c, nil
}

// healthLoad is grpc.health.v1 Check on identity over the shared
// connections, each call with the metadata md gives worker w: the same
// metadata as the calls it is compared with, so both send alike (identity
// does no work for it on health).
func (b *bench) healthLoad(md func(ctx context.Context, w int) context.Context) benchkit.CallFunc {
	return healthLoadOn(func() identityConns { return b.shared }, md)
}

// healthLoadOn is healthLoad over the connections conns returns.
func healthLoadOn(conns func() identityConns, md func(ctx context.Context, w int) context.Context) benchkit.CallFunc {
	return func(ctx context.Context, w int, _ *rand.Rand) error {
		resp, err := conns().pick(w).health.Check(md(ctx, w), &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health is %v", resp.GetStatus())
		}
		return nil
	}
}

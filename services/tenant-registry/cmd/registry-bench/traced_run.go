package main

import (
	"context"
	"fmt"

	"tenantry.dev/platform/benchkit"
)

// tracedRun measures health and ResolveTenant again, interleaved as for
// the first rows, on a second registry on the same database with traces
// on, exported over OTLP/HTTP to a sink in this program, which only counts
// what it gets: first with the services' default sampling (one new trace
// in ten, tracing.DefaultSampleRatio; the target row), then with every
// call sampled (OTEL_TRACES_SAMPLER=always_on; for information). The
// health checks make no spans (the registry leaves probes out), so the
// ratio's change is what tracing costs a ResolveTenant. off is the same
// comparison with traces off; every registry serves /metrics.
func (b *bench) tracedRun(ctx context.Context, url string, targets []target, off benchkit.Comparison) error {
	for _, run := range []struct {
		sampler string // "" for the default
		keys    compareKeys
		change  string
		target  bool
	}{
		{"", compareKeys{healthTPS: kTracedHealthTPS, healthCPU: kTracedHealthCPU, resolveTPS: kTracedResolveTPS,
			resolveCPU: kTracedResolveCPU, ratio: kTracedRatio}, kTracingChange, true},
		{"always_on", compareKeys{healthTPS: kTracedAllHealthTPS, healthCPU: kTracedAllHealthCPU, resolveTPS: kTracedAllResolveTPS,
			resolveCPU: kTracedAllResolveCPU, ratio: kTracedAllRatio}, kTracingAllChange, false},
	} {
		if err := b.tracedOnce(ctx, url, targets, off, run.sampler, run.keys, run.change, run.target); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) tracedOnce(ctx context.Context, url string, targets []target, off benchkit.Comparison,
	sampler string, keys compareKeys, changeKey string, target bool) error {
	sink, err := benchkit.StartOTLPSink()
	if err != nil {
		return err
	}
	defer sink.Close()
	env := append(sink.Env(), "OTEL_SERVICE_NAME=tenant-registry-bench")
	name := "default sampling"
	if sampler != "" {
		env = append(env, "OTEL_TRACES_SAMPLER="+sampler)
		name = sampler
	}
	reg, err := startRegistry(ctx, b.cfg.registryBin, url, b.tok, "registry-traced", b.stderr, env...)
	if err != nil {
		return err
	}
	defer b.stopRegistry(reg)
	cl, err := dial(reg.Addr(), b.cfg.conns, b.tok)
	if err != nil {
		return err
	}
	defer cl.close()

	b.log.Info("measuring health and ResolveTenant with traces on, interleaved", "sampling", name, "tenants", len(targets),
		"rounds", b.cfg.rounds, "round", b.cfg.duration)
	on, err := b.compare(ctx, reg, cl, targets, keys)
	if err != nil {
		return err
	}
	// The batcher exports every 5 s (OTEL_BSP_SCHEDULE_DELAY): wait for
	// the spans of the last slices before reading what arrived.
	b.stopRegistry(reg)
	requests, bytes := sink.Received()
	if requests == 0 {
		b.unclean[keys.ratio] = true
		b.tbl.Note("traces on (%s): the OTLP sink received nothing, so the spans were not exported", name)
	} else {
		b.tbl.Note("traces on (%s): the OTLP sink received %d export requests, %.1f MiB of spans", name, requests, float64(bytes)/(1<<20))
	}
	b.tbl.Info(keys.ratio, benchkit.FormatFloat(on.Ratio))
	change := on.Ratio/off.Ratio - 1
	if !target {
		b.tbl.Info(changeKey, fmt.Sprintf("%+.1f", change*100))
		return nil
	}
	b.tbl.Set(changeKey, fmt.Sprintf("%+.1f", change*100),
		benchkit.Verdict(change > -maxTracingCost && b.clean(keys.ratio) && b.clean(kResolveFewRatio)))
	return nil
}

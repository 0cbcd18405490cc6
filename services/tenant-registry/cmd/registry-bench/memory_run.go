package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"tenantry.dev/platform/benchkit"
)

const databaseMemory = "registry_memory"

// memoryRun measures the registry's resident memory with a handful of
// tenants and with cfg.records tenant records, on a database of its own.
func (b *bench) memoryRun(ctx context.Context) error {
	url, err := b.database(ctx, databaseMemory)
	if err != nil {
		return err
	}

	// The baseline: a registry holding a few tenants made through its API,
	// which also creates the registry's tables for the bulk insert.
	reg, err := startRegistry(ctx, b.cfg.registryBin, url, b.tok, "registry-memory", b.stderr)
	if err != nil {
		return err
	}
	var targets []target
	err = func() error {
		defer b.stopRegistry(reg)
		cl, err := dial(reg.Addr(), b.cfg.conns, b.tok)
		if err != nil {
			return err
		}
		defer cl.close()
		for i := range fewTenants {
			t, err := cl.createTenant(ctx, 0, recordSlug(i))
			if err != nil {
				return err
			}
			targets = append(targets, subdomainTarget(t.GetSlug()))
		}
		mem, err := b.resolveThenMeasure(ctx, reg, cl, targets)
		if err != nil {
			return err
		}
		b.tbl.Info(kRSSFew, benchkit.FormatMiB(mem.RSS))
		return nil
	}()
	if err != nil {
		return fmt.Errorf("baseline with %d tenants: %w", fewTenants, err)
	}

	b.log.Info("inserting tenant records", "records", b.cfg.records-fewTenants)
	if err := insertRecords(ctx, url, fewTenants, b.cfg.records-fewTenants); err != nil {
		return err
	}
	for i := fewTenants; i < b.cfg.records; i++ {
		slug := recordSlug(i)
		targets = append(targets, subdomainTarget(slug))
		for _, host := range recordDomains(slug) {
			targets = append(targets, target{host: host, slug: slug})
		}
	}

	b.log.Info("starting a registry on the tenant records", "records", b.cfg.records)
	start := time.Now()
	reg, err = startRegistry(ctx, b.cfg.registryBin, url, b.tok, "registry-memory", b.stderr)
	if err != nil {
		return err
	}
	defer b.stopRegistry(reg)
	b.tbl.Info(kStartupRecords, benchkit.FormatSeconds(time.Since(start)))
	mem, err := reg.Memory()
	if err != nil {
		return err
	}
	b.tbl.Info(kRSSRecordsStart, benchkit.FormatMiB(mem.RSS))
	cl, err := dial(reg.Addr(), b.cfg.conns, b.tok)
	if err != nil {
		return err
	}
	defer cl.close()
	mem, err = b.resolveThenMeasure(ctx, reg, cl, targets)
	if err != nil {
		return err
	}
	b.tbl.Set(kRSSRecords, benchkit.FormatMiB(mem.RSS), benchkit.Verdict(mem.RSS < maxRecordsRSSMiB*mebibyte))
	b.tbl.Info(kPeakRecords, benchkit.FormatMiB(mem.Peak))
	return nil
}

// resolveThenMeasure resolves cfg.memResolves random targets from all
// clients, so that the registry's serving paths have allocated what they
// use, and then reads its memory.
func (b *bench) resolveThenMeasure(ctx context.Context, reg *registryProcess, cl *clients, targets []target) (benchkit.Memory, error) {
	call := cl.resolveLoad(targets)
	r := benchkit.RunCount(ctx, b.cfg.clients, b.cfg.memResolves, func(ctx context.Context, i int) error {
		return call(ctx, i, rand.New(rand.NewPCG(uint64(i), 0)))
	}, nil)
	if err := r.Err(); err != nil {
		return benchkit.Memory{}, fmt.Errorf("ResolveTenant: %w", err)
	}
	return reg.Memory()
}

// stopRegistry stops a registry, logging rather than returning a failure to
// stop: the measures are taken by then.
func (b *bench) stopRegistry(reg *registryProcess) {
	if err := reg.Stop(); err != nil {
		b.log.Warn("stopping the registry", "err", err)
	}
}

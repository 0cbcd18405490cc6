package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
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
		cl, err := dial(reg.addr, b.cfg.conns, b.tok)
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
		b.tbl.info(kRSSFew, formatMiB(mem.rss))
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
	b.tbl.info(kStartupRecords, formatSeconds(time.Since(start)))
	mem, err := reg.memory()
	if err != nil {
		return err
	}
	b.tbl.info(kRSSRecordsStart, formatMiB(mem.rss))
	cl, err := dial(reg.addr, b.cfg.conns, b.tok)
	if err != nil {
		return err
	}
	defer cl.close()
	mem, err = b.resolveThenMeasure(ctx, reg, cl, targets)
	if err != nil {
		return err
	}
	b.tbl.set(kRSSRecords, formatMiB(mem.rss), verdict(mem.rss < maxRecordsRSSMiB*mebibyte))
	b.tbl.info(kPeakRecords, formatMiB(mem.peak))
	return nil
}

// resolveThenMeasure resolves cfg.memResolves random targets from all
// clients, so that the registry's serving paths have allocated what they
// use, and then reads its memory.
func (b *bench) resolveThenMeasure(ctx context.Context, reg *registryProcess, cl *clients, targets []target) (memory, error) {
	call := cl.resolveLoad(targets)
	r := runCount(ctx, b.cfg.clients, b.cfg.memResolves, func(ctx context.Context, i int) error {
		return call(ctx, i, rand.New(rand.NewPCG(uint64(i), 0)))
	}, nil)
	if err := r.err(); err != nil {
		return memory{}, fmt.Errorf("ResolveTenant: %w", err)
	}
	return reg.memory()
}

// stopRegistry stops a registry, logging rather than returning a failure to
// stop: the measures are taken by then.
func (b *bench) stopRegistry(reg *registryProcess) {
	if err := reg.stop(); err != nil {
		b.log.Warn("stopping the registry", "err", err)
	}
}

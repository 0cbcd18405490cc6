package main

import (
	"fmt"
	"runtime"
	"time"

	"tenantry.dev/platform/benchkit"
	"tenantry.dev/platform/tenantdb"
)

// header describes the machine and the run above the table.
func (b *bench) header() benchkit.Header {
	c := b.cfg
	return benchkit.Header{
		Title: "Tenantry registry benchmark",
		Lines: []string{
			benchkit.DateLine(b.start, b.ended),
			benchkit.MachineLine(b.loadAvg),
			fmt.Sprintf("Software: %s; bench built with %s; registry %s", b.cluster.Description(), runtime.Version(), c.registryBin),
			fmt.Sprintf("Sizes: %s tenants through the API, %s timed creates, %s records for memory; %d rounds of %s of each load, %d clients over %d gRPC connections",
				benchkit.FormatCount(c.tenants), benchkit.FormatCount(c.creates), benchkit.FormatCount(c.records), c.rounds, c.duration, c.clients, c.conns),
		},
	}
}

// methodNotes say how the measures were taken, under the table.
func (b *bench) methodNotes() {
	c := b.cfg
	slice := min(c.duration, benchkit.MaxSlice)
	b.tbl.Note("Load: %d callers over %d gRPC connections (plaintext, loopback TCP), calling back to back. Health and ResolveTenant "+
		"each run %s in all (-rounds × -duration), in alternating slices of %s (order H R R H H R…) after a warm-up. Throughput is "+
		"the median slice; a ratio is the median over adjacent health/resolve pairs of slices, which share one moment of the "+
		"machine's load; p50/p99 cover every call (histogram, < 1%% error). The callers share the %d cores with the registry and "+
		"PostgreSQL, so throughput includes the client's own cost; registry CPU per call (utime+stime from /proc, over the same "+
		"slices) does not, and is the steadier figure on a busy machine.",
		c.clients, c.conns, time.Duration(c.rounds)*c.duration, slice, runtime.NumCPU())
	b.tbl.Note("Health checks carry the same authorization header as resolves but are public, so the registry does no auth work for " +
		"them: the baseline is the cheapest call it serves. ResolveTenant uses the service credential, hosts {slug}.localhost.")
	b.tbl.Note("Scaling ratio: (resolve ÷ health with %s tenants) ÷ (resolve ÷ health with %d tenants), which cancels load drift "+
		"between two measures minutes apart; the raw ratio of the two resolve throughputs is printed too.", benchkit.FormatCount(c.tenants), fewTenants)
	b.tbl.Note("REST vs gRPC: GetTenant of random tenants among all %s with the operator credential, %d callers either way: over "+
		"gRPC on the %d connections above, over REST with GET /v1/tenants/{slug} (bearer header, JSON answer decoded and checked) "+
		"through an http.Client keeping up to %d idle keep-alive connections to the gateway on loopback, i.e. one per caller. The "+
		"gateway runs in the registry and calls its gRPC server in process, so both go through the same interceptors; slices "+
		"alternate as above (order G R R G…).", benchkit.FormatCount(c.tenants), c.clients, c.conns, c.clients)
	b.tbl.Note("CreateTenant: operator credential, a request_id, a display name and 2 labels; the schema is created in the registry's " +
		"own database (default placement) in the create's transaction, with fsync and synchronous_commit on.")
	b.tbl.Note("Migrate all: schemas listed with ListTenants; component %q with one migration (CREATE TABLE), MigrateAll with its "+
		"default concurrency of %d. Each no-op run uses a new Migrator (as a deploy's new process would) on an already connected pool; "+
		"listing is timed separately.", migrationComponent, tenantdb.DefaultConcurrency)
	b.tbl.Note("Memory: a second database; the registry first runs on it with %d tenants made through the API (baseline), is stopped, "+
		"then %s more tenant rows are inserted with COPY (ACTIVE, 2 custom domains and 3 labels each, revision advanced to match) and "+
		"a new registry is started on it. Those rows have no tenant schemas and no change-log events: the registry builds its index "+
		"from the tenants and domains tables alone. Resolves then hit random tenants by subdomain and by custom domain. RSS is "+
		"VmRSS from /proc/<pid>/status, in MiB (the 200 target is taken as MiB, slightly stricter than MB); no GC can be forced "+
		"from outside, so it includes garbage not yet collected.", fewTenants, benchkit.FormatCount(c.records-fewTenants))
	b.tbl.Note("Total run time covers this program from start to the table, not `make build` or `go run` compiling it.")
}

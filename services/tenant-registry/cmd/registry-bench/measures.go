package main

import (
	"fmt"
	"time"

	"tenantry.dev/platform/benchkit"
	"tenantry.dev/platform/tracing"
)

// Targets. The table prints them from these values, and the checks use the
// same values.
const (
	minResolveVsHealth = 0.80
	minResolveScaling  = 0.90
	minRESTVsGRPC      = 0.50
	// maxTracingCost bounds how much ResolveTenant ÷ health may drop
	// with traces on (issue 13: less than 5%).
	maxTracingCost   = 0.05
	maxCreateP50     = 50 * time.Millisecond
	noopMigrateGoal  = time.Second
	maxNoopMigrate   = 1500 * time.Millisecond
	maxRecordsRSSMiB = 200
	maxTotalRunTime  = 10 * time.Minute
)

// fewTenants is how many tenants the first resolve measure and the memory
// baseline run with.
const fewTenants = 10

const mebibyte = 1 << 20

// resolveByHost starts the names of the resolve rows.
const resolveByHost = "ResolveTenant by host"

// Keys of the measures, in the order they are printed.
const (
	kHealthFewTPS        = "health-few-tps"
	kHealthFewP50        = "health-few-p50"
	kHealthFewP99        = "health-few-p99"
	kResolveFewTPS       = "resolve-few-tps"
	kResolveFewP50       = "resolve-few-p50"
	kResolveFewP99       = "resolve-few-p99"
	kHealthFewCPU        = "health-few-cpu"
	kResolveFewCPU       = "resolve-few-cpu"
	kResolveFewRatio     = "resolve-few-ratio"
	kTracedHealthTPS     = "health-traced-tps"
	kTracedResolveTPS    = "resolve-traced-tps"
	kTracedHealthCPU     = "health-traced-cpu"
	kTracedResolveCPU    = "resolve-traced-cpu"
	kTracedRatio         = "resolve-traced-ratio"
	kTracingChange       = "resolve-traced-change"
	kTracedAllHealthTPS  = "health-traced-all-tps"
	kTracedAllResolveTPS = "resolve-traced-all-tps"
	kTracedAllHealthCPU  = "health-traced-all-cpu"
	kTracedAllResolveCPU = "resolve-traced-all-cpu"
	kTracedAllRatio      = "resolve-traced-all-ratio"
	kTracingAllChange    = "resolve-traced-all-change"
	kCreateTPS           = "create-tps"
	kCreateP50           = "create-p50"
	kCreateP99           = "create-p99"
	kFillTPS             = "fill-tps"
	kHealthManyTPS       = "health-many-tps"
	kResolveManyTPS      = "resolve-many-tps"
	kResolveManyP50      = "resolve-many-p50"
	kResolveManyP99      = "resolve-many-p99"
	kHealthManyCPU       = "health-many-cpu"
	kResolveManyCPU      = "resolve-many-cpu"
	kResolveManyRatio    = "resolve-many-ratio"
	kScalingRaw          = "scaling-raw"
	kScaling             = "scaling"
	kRSSMany             = "rss-many"
	kGetGRPCTPS          = "get-grpc-tps"
	kGetGRPCP50          = "get-grpc-p50"
	kGetGRPCP99          = "get-grpc-p99"
	kGetRESTTPS          = "get-rest-tps"
	kGetRESTP50          = "get-rest-p50"
	kGetRESTP99          = "get-rest-p99"
	kGetGRPCCPU          = "get-grpc-cpu"
	kGetRESTCPU          = "get-rest-cpu"
	kGetGRPCClientCPU    = "get-grpc-client-cpu"
	kGetRESTClientCPU    = "get-rest-client-cpu"
	kGetRESTRatio        = "get-rest-ratio"
	kListSchemas         = "list-schemas"
	kMigrateFirst        = "migrate-first"
	kMigrateNoop         = "migrate-noop"
	kFleetFirst          = "fleet-first"
	kFleetTPS            = "fleet-tps"
	kFleetNoop           = "fleet-noop"
	kCreateCompTPS       = "create-comp-tps"
	kCreateCompP50       = "create-comp-p50"
	kCreateCompP99       = "create-comp-p99"
	kCreatePacedP50      = "create-paced-p50"
	kCreatePacedP99      = "create-paced-p99"
	kRSSFew              = "rss-few"
	kStartupRecords      = "startup-records"
	kRSSRecordsStart     = "rss-records-start"
	kRSSRecords          = "rss-records"
	kPeakRecords         = "peak-records"
	kTotal               = "total"
)

// apiKeys are the measures of the run against the registry fed through its
// API; memoryKeys those of the bulk-loaded registry.
var (
	apiKeys = []string{
		kHealthFewTPS, kHealthFewP50, kHealthFewP99, kResolveFewTPS, kResolveFewP50, kResolveFewP99,
		kHealthFewCPU, kResolveFewCPU, kResolveFewRatio,
		kTracedHealthTPS, kTracedResolveTPS, kTracedHealthCPU, kTracedResolveCPU, kTracedRatio, kTracingChange,
		kTracedAllHealthTPS, kTracedAllResolveTPS, kTracedAllHealthCPU, kTracedAllResolveCPU, kTracedAllRatio, kTracingAllChange,
		kCreateTPS, kCreateP50, kCreateP99, kFillTPS,
		kHealthManyTPS, kResolveManyTPS, kResolveManyP50, kResolveManyP99,
		kHealthManyCPU, kResolveManyCPU, kResolveManyRatio, kScalingRaw, kScaling,
		kRSSMany,
		kGetGRPCTPS, kGetGRPCP50, kGetGRPCP99, kGetRESTTPS, kGetRESTP50, kGetRESTP99,
		kGetGRPCCPU, kGetRESTCPU, kGetGRPCClientCPU, kGetRESTClientCPU, kGetRESTRatio,
		kListSchemas, kMigrateFirst, kMigrateNoop, kFleetFirst, kFleetTPS, kFleetNoop,
		kCreatePacedP50, kCreatePacedP99, kCreateCompTPS, kCreateCompP50, kCreateCompP99,
	}
	memoryKeys = []string{kRSSFew, kStartupRecords, kRSSRecordsStart, kRSSRecords, kPeakRecords}
)

// declareMeasures lays out the table for the sizes in cfg.
func declareMeasures(t *benchkit.Table, cfg config) {
	few, many, recs := benchkit.FormatCount(fewTenants), benchkit.FormatCount(cfg.tenants), benchkit.FormatCount(cfg.records)
	load := fmt.Sprintf("%d clients", cfg.clients)
	t.Declare(kHealthFewTPS, fmt.Sprintf("grpc.health.v1 Check (baseline), %s tenants, %s: throughput", few, load), "calls/s", "baseline")
	t.Declare(kHealthFewP50, "grpc.health.v1 Check, "+few+" tenants: p50", "ms", "")
	t.Declare(kHealthFewP99, "grpc.health.v1 Check, "+few+" tenants: p99", "ms", "")
	t.Declare(kResolveFewTPS, fmt.Sprintf("%s, %s tenants, %s: throughput", resolveByHost, few, load), "calls/s", "")
	t.Declare(kResolveFewP50, resolveByHost+", "+few+" tenants: p50", "ms", "")
	t.Declare(kResolveFewP99, resolveByHost+", "+few+" tenants: p99", "ms", "")
	t.Declare(kHealthFewCPU, "registry CPU per health Check, "+few+" tenants", "µs", "")
	t.Declare(kResolveFewCPU, "registry CPU per ResolveTenant, "+few+" tenants", "µs", "")
	t.Declare(kResolveFewRatio, "ResolveTenant ÷ health throughput, "+few+" tenants", "ratio", fmt.Sprintf("≥ %.2f", minResolveVsHealth))
	t.Declare(kTracedHealthTPS, fmt.Sprintf("grpc.health.v1 Check (baseline), %s tenants, %s, traces on (default sampling): throughput", few, load), "calls/s", "baseline")
	t.Declare(kTracedResolveTPS, fmt.Sprintf("%s, %s tenants, %s, traces on (default sampling): throughput", resolveByHost, few, load), "calls/s", "")
	t.Declare(kTracedHealthCPU, "registry CPU per health Check, traces on (default sampling)", "µs", "")
	t.Declare(kTracedResolveCPU, "registry CPU per ResolveTenant, traces on (default sampling)", "µs", "")
	t.Declare(kTracedRatio, fmt.Sprintf("ResolveTenant ÷ health throughput, %s tenants, traces on (the default: parent-based, %g of new traces sampled, exported over OTLP/HTTP to a sink in this program)", few, tracing.DefaultSampleRatio), "ratio", "")
	t.Declare(kTracingChange, "change of ResolveTenant ÷ health with traces on at the default sampling (both runs with /metrics on)", "%", fmt.Sprintf("> -%.0f", maxTracingCost*100))
	t.Declare(kTracedAllHealthTPS, fmt.Sprintf("grpc.health.v1 Check (baseline), %s tenants, %s, every call traced: throughput", few, load), "calls/s", "baseline")
	t.Declare(kTracedAllResolveTPS, fmt.Sprintf("%s, %s tenants, %s, every call traced: throughput", resolveByHost, few, load), "calls/s", "")
	t.Declare(kTracedAllHealthCPU, "registry CPU per health Check, every call traced", "µs", "")
	t.Declare(kTracedAllResolveCPU, "registry CPU per ResolveTenant, every call traced (span and its export)", "µs", "")
	t.Declare(kTracedAllRatio, "ResolveTenant ÷ health throughput, "+few+" tenants, every call traced (OTEL_TRACES_SAMPLER=always_on)", "ratio", "")
	t.Declare(kTracingAllChange, "change of ResolveTenant ÷ health with every call traced", "%", "")
	t.Declare(kCreateTPS, fmt.Sprintf("CreateTenant, %s creates, %d clients: throughput", benchkit.FormatCount(cfg.creates), cfg.createClients), "tenants/s", "")
	t.Declare(kCreateP50, "CreateTenant latency p50", "ms", fmt.Sprintf("< %d", maxCreateP50.Milliseconds()))
	t.Declare(kCreateP99, "CreateTenant latency p99", "ms", "")
	t.Declare(kFillTPS, fmt.Sprintf("CreateTenant up to %s tenants, %d clients: throughput", many, cfg.fillClients), "tenants/s", "")
	t.Declare(kHealthManyTPS, fmt.Sprintf("grpc.health.v1 Check (baseline), %s tenants, %s: throughput", many, load), "calls/s", "baseline")
	t.Declare(kResolveManyTPS, fmt.Sprintf("%s (random tenants), %s tenants, %s: throughput", resolveByHost, many, load), "calls/s", "")
	t.Declare(kResolveManyP50, resolveByHost+", "+many+" tenants: p50", "ms", "")
	t.Declare(kResolveManyP99, resolveByHost+", "+many+" tenants: p99", "ms", "")
	t.Declare(kHealthManyCPU, "registry CPU per health Check, "+many+" tenants", "µs", "")
	t.Declare(kResolveManyCPU, "registry CPU per ResolveTenant, "+many+" tenants", "µs", "")
	t.Declare(kResolveManyRatio, "ResolveTenant ÷ health throughput, "+many+" tenants", "ratio", "")
	t.Declare(kScalingRaw, "ResolveTenant throughput "+many+" ÷ "+few+" tenants, raw", "ratio", "")
	t.Declare(kScaling, "ResolveTenant throughput "+many+" ÷ "+few+" tenants, each ÷ its health baseline", "ratio", fmt.Sprintf("≥ %.2f", minResolveScaling))
	t.Declare(kRSSMany, "registry RSS after creating "+many+" tenants and the load above", "MiB", "")
	t.Declare(kGetGRPCTPS, fmt.Sprintf("GetTenant over gRPC (baseline), random tenants of %s, %s: throughput", many, load), "calls/s", "baseline")
	t.Declare(kGetGRPCP50, "GetTenant over gRPC: p50", "ms", "")
	t.Declare(kGetGRPCP99, "GetTenant over gRPC: p99", "ms", "")
	t.Declare(kGetRESTTPS, fmt.Sprintf("REST GET /v1/tenants/{slug} (grpc-gateway, keep-alive HTTP/1.1), same tenants, %s: throughput", load), "calls/s", "")
	t.Declare(kGetRESTP50, "REST GET /v1/tenants/{slug}: p50", "ms", "")
	t.Declare(kGetRESTP99, "REST GET /v1/tenants/{slug}: p99", "ms", "")
	t.Declare(kGetGRPCCPU, "registry CPU per GetTenant over gRPC", "µs", "")
	t.Declare(kGetRESTCPU, "registry CPU per REST GET /v1/tenants/{slug} (gateway and gRPC call)", "µs", "")
	t.Declare(kGetGRPCClientCPU, "this program's CPU per GetTenant over gRPC (the client)", "µs", "")
	t.Declare(kGetRESTClientCPU, "this program's CPU per REST GET (the client)", "µs", "")
	t.Declare(kGetRESTRatio, "REST GET ÷ gRPC GetTenant throughput, interleaved", "ratio", fmt.Sprintf("≥ %.2f", minRESTVsGRPC))
	t.Declare(kListSchemas, fmt.Sprintf("ListTenants: all %s schemas, pages of %s", many, benchkit.FormatCount(listPageSize)), "s", "")
	t.Declare(kMigrateFirst, "migrate all, first run ("+many+" schemas, 1 migration each)", "s", "")
	t.Declare(kMigrateNoop, fmt.Sprintf("migrate all, no-op (%s schemas, median of %d)", many, noopMigrateRuns), "s",
		fmt.Sprintf("≈ %g (met if ≤ %g)", noopMigrateGoal.Seconds(), maxNoopMigrate.Seconds()))
	t.Declare(kFleetFirst, "fleet migration through the API (MigrateTenants → operation done): a component's table with a defaulted column, to all "+many+" schemas", "s", "")
	t.Declare(kFleetTPS, "fleet migration, first run: throughput", "tenants/s", "")
	t.Declare(kCreatePacedP50, fmt.Sprintf("CreateTenant with identity + two components at a sign-up pace (%d creates, one every %s; spare schemas ready): p50", pacedCreates, pacedEvery), "ms", fmt.Sprintf("< %d", maxCreateP50.Milliseconds()))
	t.Declare(kCreatePacedP99, "CreateTenant with identity + two components at a sign-up pace: p99", "ms", "")
	t.Declare(kCreateCompTPS, fmt.Sprintf("CreateTenant with identity's tables and two more components (notes, and the fleet rows' one), %d creates, %d clients: throughput", componentCreates, cfg.createClients), "tenants/s", "")
	t.Declare(kCreateCompP50, "CreateTenant with identity + two components in a burst (spares drained): p50", "ms", "")
	t.Declare(kCreateCompP99, "CreateTenant with identity + two components: p99", "ms", "")
	t.Declare(kFleetNoop, fmt.Sprintf("fleet migration through the API, no-op (%s schemas current, median of %d)", many, noopMigrateRuns), "s",
		fmt.Sprintf("≈ %g (met if ≤ %g)", noopMigrateGoal.Seconds(), maxNoopMigrate.Seconds()))
	t.Declare(kRSSFew, fmt.Sprintf("registry RSS, %s tenants, after %s resolves (baseline)", few, benchkit.FormatCount(cfg.memResolves)), "MiB", "baseline")
	t.Declare(kStartupRecords, "registry start-up to SERVING, "+recs+" tenant records", "s", "")
	t.Declare(kRSSRecordsStart, "registry RSS, "+recs+" tenant records, once serving", "MiB", "")
	t.Declare(kRSSRecords, fmt.Sprintf("registry RSS, %s tenant records, after %s resolves", recs, benchkit.FormatCount(cfg.memResolves)), "MiB", fmt.Sprintf("< %d", maxRecordsRSSMiB))
	t.Declare(kPeakRecords, "registry peak RSS (VmHWM), "+recs+" tenant records", "MiB", "")
	t.Declare(kTotal, "total run time", "s", fmt.Sprintf("< %g", maxTotalRunTime.Seconds()))
}

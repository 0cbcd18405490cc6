// Command registry-bench starts the real Tenantry registry and measures it:
//
//	registry-bench -registry-bin bin/tenant-registry [-tenants 10000] [-creates 1000] [-records 100000] [-duration 5s]
//
// It starts a throwaway PostgreSQL cluster with durable settings (package
// pgcluster, stopped with this process however it ends), runs the
// tenant-registry binary as a child process on it, talks to it over gRPC on
// loopback TCP as other services do, and prints on stdout a Markdown table
// with the columns measure, value, unit, target and met. Progress and the
// registry's own warnings go to stderr. `make bench` runs it after `make
// build`; `-tenants 200 -creates 50 -records 2000 -duration 1s` is a quick
// smoke run.
//
// The machine is shared and noisy, so throughput is only ever judged as a
// ratio against a baseline measured in the same run: grpc.health.v1 Check
// (the cheapest call the server has) runs in slices of at most a second
// alternating with ResolveTenant, and the ratio is the median over adjacent
// pairs of slices. The registry's CPU time per call, read from /proc around
// the same slices, is reported beside it as the steadier figure.
//
// The measures, in order:
//   - health and ResolveTenant by host with 10 tenants;
//   - CreateTenant latency over -creates creates, 4 clients;
//   - creating tenants through the API up to -tenants, 8 clients;
//   - health and ResolveTenant with -tenants tenants, and how resolve
//     throughput scales from 10 tenants;
//   - GetTenant over gRPC against GET /v1/tenants/{slug} through the
//     registry's REST gateway (started on a free loopback port), same
//     callers, interleaved, and the ratio REST ÷ gRPC;
//   - migrating every tenant schema with tenantdb.Migrator, once for real
//     and then as the no-op every deploy runs;
//   - the registry's resident memory with 10 tenants and with -records
//     tenant records bulk-loaded into a second database.
//
// A measure that cannot be taken is printed as n/a with the reason below
// the table; nothing is estimated. The exit status is 0 when every measure
// was taken (met or not), 1 when some could not be, 2 for bad flags and 130
// when interrupted. The run stops after -budget (9 minutes) and reports what
// it has.
package main

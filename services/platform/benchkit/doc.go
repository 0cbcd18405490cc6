// Package benchkit is what Tenantry's benchmark programs (`make bench`)
// share: starting the system under test, loading it, and reporting what was
// measured. It knows gRPC health, PostgreSQL clusters, processes and /proc,
// and nothing about any service; each program keeps its own measures.
//
// The machine a bench runs on is shared and noisy, so throughput is judged
// only as a ratio against a baseline measured in the same run:
// [Interleave] runs a baseline and a subject load in alternating slices of
// at most a second and takes the median ratio over adjacent pairs, with
// the CPU time of whoever does the work ([Process.CPUTime], [PostgresCPU],
// [SelfCPUTime]) read around the same slices as the steadier figure.
// [RunCount] drives set-up steps (creates, sign-ups) with [Progress] on
// stderr. Latencies go into a [Histogram] of bounded relative error.
//
// A run fills a [Table] whose rows (measure, value, unit, target, met) are
// declared up front, so that the printed Markdown has the same rows
// whatever happens: a measure that could not be taken is n/a, with its
// reason in the notes. [RunContext], [Reason] and the Exit constants give
// every program the same handling of Ctrl-C and of its time budget, and
// the same exit statuses. [Cluster] is the throwaway PostgreSQL, and
// [StartProcess] runs a service binary as a child until it serves.
package benchkit

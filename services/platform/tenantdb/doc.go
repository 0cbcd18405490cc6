// Package tenantdb lets services work inside a tenant's PostgreSQL schema
// safely: pools sized for many schemas, transactions scoped to one tenant's
// schema, and per-schema migrations with central bookkeeping.
//
// Every tenant has its own schema holding the same tables. A service reaches
// a tenant's tables through [InTenant], which runs a transaction whose
// search_path is that schema, so store code writes plain `SELECT ... FROM
// users` and cannot reach another tenant by forgetting a qualifier.
// [QualifiedName] is there for the rare statement that must name a schema
// explicitly. A [Migrator] brings schemas to a component's latest version,
// either lazily on a tenant's first use ([Migrator.EnsureMigrated]) or in
// bulk at start-up or deploy time ([Migrator.MigrateAll]).
//
// # Connection pools and catalog memory
//
// Each PostgreSQL backend (one per connection) caches the catalog entries of
// every table, index, type and function it touches: the relation cache
// (relcache), the system catalog cache (catcache) and saved query plans.
// With a schema per tenant, every tenant has its own copy of every table and
// index, so a backend that has served 1,000 tenants holds 1,000 times the
// entries of one that served a single schema. PostgreSQL never evicts these
// entries while the backend lives; it drops them only when they are
// invalidated, as by DDL. A
// long-lived pooled connection therefore only grows, and the growth is
// multiplied by the number of connections. Measured here
// (BenchmarkCatalogCacheGrowth, PostgreSQL 15): reading one row through a
// join in each of 500 tenants with three tables (six relations) each grew a
// fresh backend's CacheMemoryContext by about 19 KB per tenant. A real
// service with 30 tables per tenant and 10,000 tenants would reach gigabytes
// per backend.
//
// [NewPool] bounds that memory by recycling connections:
//
//   - MaxConnLifetime (default 30 minutes) closes a connection once it is that
//     old, releasing everything its backend cached. A random extra of up to a
//     tenth of the lifetime (MaxConnLifetimeJitter) keeps connections opened
//     together from being replaced together.
//   - MaxConnIdleTime (default 5 minutes) closes connections left over from a
//     burst, so their caches do not linger.
//   - MaxConns caps the number of backends, and so the multiplier.
//
// A new connection costs a few milliseconds plus re-reading the catalog
// entries it needs, which over a 30-minute lifetime is negligible. Behind
// PgBouncer the server connections are PgBouncer's: set its server_lifetime
// and server_idle_timeout to the same effect.
//
// # Search path or qualified names
//
// [InTenant] sets the search path with `SELECT set_config('search_path', $1,
// true)`: the schema name is a bind parameter (quoted with
// pgx.Identifier.Sanitize, never spliced into SQL), and the setting is local
// to the transaction, so it never leaks to the next user of a pooled
// connection and works behind PgBouncer in transaction mode. The path is the
// tenant's schema then pg_temp: listing pg_temp last stops a temporary table
// from shadowing a tenant table, and public is deliberately absent, so
// shared tables and extension functions installed there must be qualified.
//
// The alternative is to qualify every table with [QualifiedName] and leave
// search_path alone, saving a round trip per transaction. Measured with
// BenchmarkInTenantSetLocal and BenchmarkSchemaQualified (one primary-key
// SELECT in a transaction over loopback, PostgreSQL 15, 2 CPUs). The machine
// was shared and busy (load average about 7), which inflates every round
// trip, so these are medians of 24 runs with the fastest run in brackets;
// read the differences more than the digits:
//
//	time per transaction   set_config (InTenant)   schema-qualified
//	one tenant             239 µs (139)            215 µs (115)
//	1,000 tenants          340 µs (237)            440 µs (252)
//
//	statements per tx      4: BEGIN, set_config,   3: BEGIN, SELECT,
//	                       SELECT, COMMIT          COMMIT
//	prepares per tx,       0: one SQL text for     1.0: one SQL text per
//	1,000 tenants          every tenant            tenant overflows pgx's
//	                                               512-entry statement cache
//
// With one hot tenant the qualified form wins by the one round trip InTenant
// adds (about 24 µs here, 10%). With many tenants it loses: every tenant multiplies the distinct
// statements, which overflow pgx's per-connection statement cache (a
// prepare round trip per query) and multiply the prepared statements each
// backend keeps, adding to the catalog memory above. InTenant keeps one
// prepared statement per query, which PostgreSQL re-plans when the search
// path differs from its last use. We therefore use InTenant everywhere and
// keep QualifiedName for statements that must span schemas.
//
// Two consequences of sharing prepared statements across tenants: select
// explicit columns rather than *, since a statement whose result shape
// differs between two tenants' schemas fails once with "cached plan must not
// change result type" (pgx then drops it); and create temporary tables ON
// COMMIT DROP, since they belong to the connection, not the tenant.
//
// # Migrations
//
// A component (such as "identity") ships numbered SQL files, 0001_name.sql
// onwards, embedded and read with [LoadMigrations]. Several components may
// keep tables in the same tenant schema; each has its own version, recorded
// centrally in tenantry_meta.schema_versions (schema_name, component,
// version, applied_at), which [Migrator.Setup] creates. Keeping the
// bookkeeping outside tenant schemas lets one query read the versions of
// every tenant, so a [Migrator.MigrateAll] that finds 10,000 tenants current
// costs one statement (BenchmarkMigrateAllUpToDate: about 30 ms per
// run on this machine, mostly sending the names and decoding the rows).
//
// [Migrator.Migrate] migrates one schema in one transaction under an
// advisory lock on (component, schema), re-reading the version under the
// lock: concurrent runs from any number of processes apply each migration
// once, and a failing migration leaves the schema exactly at its old version.
// A schema recorded at a version newer than the binary knows, as during a
// rolling deploy, is left alone. [Migrator.EnsureMigrated] remembers schemas
// known to be current, so after the first use it costs a map lookup
// (BenchmarkEnsureMigratedCached: tens of nanoseconds, no allocation).
//
// When a tenant is purged, call [DeleteSchemaVersions] in the transaction
// that drops its schema and [Migrator.Forget] afterwards, so a tenant created
// later under the same name is migrated from scratch.
package tenantdb

// Connections to tenants' databases, each as the tenant's own role for
// this component (see tenantrole.js): one small pg.Pool per (placement,
// tenant), opened on first use and kept in a bounded least-recently-used
// set, so that a service serving thousands of tenants holds connections
// for the busy ones only. An evicted pool is ended: connections in use
// finish their query first.
//
// A role can only reach its tenant's schema, whatever SQL runs on its
// connections: a bug (or an injection) in one tenant's request cannot read
// another tenant's rows, nor the tables of other components (identity's
// users) in the same schema.

import pg from 'pg';

import { DEFAULT_PLACEMENT } from './config.js';
import { ApiError, internal, unavailable } from './errors.js';
import { roleName, rolePassword } from './tenantrole.js';

/**
 * @typedef {{pool: import('pg').Pool, ready: Promise<void>, ended: boolean, key: string}} Entry
 */

export class TenantPools {
  /**
   * @param {{
   *   placements: Map<string, {host: string, port: number, database: string, ssl: unknown}>,
   *   component: string,
   *   componentToken: string,
   *   maxPools: number,
   *   maxConnsPerPool: number,
   *   idleTimeoutMillis: number,
   *   log: import('./log.js').Logger,
   *   createPool?: (config: object) => import('pg').Pool,
   * }} options
   */
  constructor(options) {
    this.placements = options.placements;
    this.component = options.component;
    this.componentToken = options.componentToken;
    this.maxPools = options.maxPools;
    this.maxConnsPerPool = options.maxConnsPerPool;
    this.idleTimeoutMillis = options.idleTimeoutMillis;
    this.log = options.log;
    this.createPool = options.createPool ?? ((config) => new pg.Pool(config));
    /** @type {Map<string, Entry>} in use order: the first is the least recently used */
    this.entries = new Map();
  }

  /** How many pools are open. */
  get size() {
    return this.entries.size;
  }

  /**
   * Runs fn with a connection to tenant's database, as the tenant's role,
   * and releases it after.
   * @template T
   * @param {{uid: string, slug: string, schema: string, placement: string}} tenant
   * @param {(client: import('pg').PoolClient) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async withClient(tenant, fn) {
    for (let attempt = 1; ; attempt++) {
      const entry = this.entryFor(tenant);
      try {
        await entry.ready;
      } catch (err) {
        this.drop(entry);
        throw err;
      }
      if (entry.ended && attempt < 3) {
        continue; // evicted while checking: open it again
      }
      let client;
      try {
        client = await entry.pool.connect();
      } catch (err) {
        throw databaseError(err);
      }
      let failure;
      try {
        return await fn(client);
      } catch (err) {
        failure = err;
        throw databaseError(err);
      } finally {
        // A connection that broke is not given back to the pool.
        client.release(failure !== undefined && isConnectionError(failure) ? failure : undefined);
      }
    }
  }

  /** The pool of tenant, opened if needed, now the most recently used. */
  entryFor(tenant) {
    // An empty placement is the default one (registry.proto).
    const placement = tenant.placement === '' ? DEFAULT_PLACEMENT : tenant.placement;
    const key = `${placement}\u0000${tenant.uid}`;
    let entry = this.entries.get(key);
    if (entry !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry;
    }
    const where = this.placements.get(placement);
    if (where === undefined) {
      throw internal('PLACEMENT_UNKNOWN', `tenant "${tenant.slug}" lives in a database this service is not configured for`, {
        cause: new Error(`placement "${placement}" is not in TENANTRY_PLACEMENTS`),
      });
    }
    const pool = this.createPool({
      host: where.host,
      port: where.port,
      database: where.database,
      ssl: where.ssl,
      user: roleName(tenant.uid, this.component),
      password: rolePassword(this.componentToken, tenant.uid),
      max: this.maxConnsPerPool,
      idleTimeoutMillis: this.idleTimeoutMillis,
      connectionTimeoutMillis: 5000,
      application_name: this.component,
    });
    // An idle connection that breaks (a database restart) must not crash
    // the process; the pool replaces it on next use.
    pool.on('error', (err) => this.log.warn('idle database connection failed', { tenant: tenant.slug, err }));
    entry = { pool, ended: false, key, ready: Promise.resolve() };
    entry.ready = this.checkSchema(pool, tenant);
    // Nobody may be waiting on it yet; the caller awaits it next.
    entry.ready.catch(() => {});
    this.entries.set(key, entry);
    while (this.entries.size > this.maxPools) {
      const oldest = this.entries.values().next().value;
      this.drop(oldest);
    }
    return entry;
  }

  /**
   * Checks once per pool that the role's search path leads to the
   * tenant's schema: unqualified names (node_notes) must be this tenant's
   * tables, and a role set up otherwise must fail loudly, not quietly use
   * another schema.
   */
  async checkSchema(pool, tenant) {
    let schema;
    try {
      const { rows } = await pool.query('SELECT current_schema() AS schema');
      schema = rows[0]?.schema ?? null;
    } catch (err) {
      throw databaseError(err);
    }
    if (schema !== tenant.schema) {
      throw internal('TENANT_SCHEMA_MISMATCH', `tenant "${tenant.slug}" cannot be served at the moment`, {
        cause: new Error(`the role's current schema is ${JSON.stringify(schema)}, the tenant's is ${JSON.stringify(tenant.schema)}`),
      });
    }
  }

  /** Forgets a pool and ends it. */
  drop(entry) {
    if (this.entries.get(entry.key) === entry) {
      this.entries.delete(entry.key);
    }
    if (!entry.ended) {
      entry.ended = true;
      entry.pool.end().catch((err) => this.log.warn('closing a tenant pool failed', { err }));
    }
  }

  /** Ends every pool: at shutdown. */
  async closeAll() {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(
      entries.map((e) => {
        e.ended = true;
        return e.pool.end();
      }),
    );
  }
}

// SQLSTATE classes and codes that mean the database cannot be used right
// now, rather than that the request or the code is wrong (the Go services'
// platform/pgoutage).
const OUTAGE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400', '58030']);
const NODE_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);

/** Whether err means the connection is gone or could not be made. */
export function isConnectionError(err) {
  if (err === null || typeof err !== 'object') {
    return false;
  }
  const code = typeof err.code === 'string' ? err.code : '';
  if (code.startsWith('08') || OUTAGE_SQLSTATES.has(code) || NODE_NETWORK_CODES.has(code)) {
    return true;
  }
  const msg = String(err.message ?? '');
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(msg);
}

/**
 * Turns a database error into what the client gets: an outage is 503
 * DATABASE_UNAVAILABLE (retry), a role the database refuses or a table not
 * there yet 503 with its own reason, anything else 500. The SQL error
 * itself stays in the log.
 */
export function databaseError(err) {
  if (err instanceof ApiError) {
    return err;
  }
  if (isConnectionError(err)) {
    return unavailable('DATABASE_UNAVAILABLE', 'the database is unavailable; retry shortly', { cause: err });
  }
  switch (err?.code) {
    case '28P01': // invalid_password
    case '28000': // invalid_authorization_specification: no such role
      return unavailable('TENANT_ROLE_UNAVAILABLE', "this tenant's database role cannot log in at the moment; retry shortly", { cause: err });
    case '42P01': // undefined_table: the component is not migrated in this schema
      return unavailable('TENANT_SCHEMA_NOT_READY', "this tenant's tables are not ready; retry shortly", { cause: err });
    case '40001':
    case '40P01':
      return new ApiError(409, 'ABORTED', 'CONCURRENT_CONFLICT', 'the request conflicted with another; retry', { cause: err });
    default:
      return internal('INTERNAL', 'something went wrong on our side', { cause: err });
  }
}

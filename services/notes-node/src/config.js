// Configuration: flags with TENANTRY_* environment fallbacks (the flag
// wins), validated at start-up with one clear message per problem, and
// defaults that work next to `make run`.

import { parseArgs } from 'node:util';

import { parseComponentToken } from './tenantrole.js';

/** The component this service is: its tables, its database roles. */
export const COMPONENT_ID = 'notes-node';

/** The registry's name for the placement of DATABASE_URL. */
export const DEFAULT_PLACEMENT = 'default';

// Each setting: flag name, environment variable, default, description.
const SETTINGS = [
  ['http-addr', 'TENANTRY_NOTES_NODE_HTTP_ADDR', 'localhost:8090', 'HTTP listen address (host:port)'],
  ['registry-url', 'TENANTRY_REGISTRY_URL', 'http://localhost:8081', "base URL of the tenant registry's REST API"],
  ['identity-url', 'TENANTRY_IDENTITY_URL', 'http://localhost:8080', "base URL of identity's REST API (its JWKS is under it)"],
  ['component-token', 'TENANTRY_COMPONENT_TOKEN', '', "this component's credential, tnc_notes-node_... (the registry's GetComponentCredential)"],
  ['issuer', 'TENANTRY_ISSUER', 'tenantry-identity', "iss of identity's access tokens"],
  ['base-domains', 'TENANTRY_BASE_DOMAINS', 'localhost', 'comma-separated base domains, as configured on the registry: {slug}.{base} is a tenant host'],
  ['database-url', 'DATABASE_URL', '', 'PostgreSQL URL of the default placement (its user and password are ignored)'],
  ['placements', 'TENANTRY_PLACEMENTS', '', 'extra placements: name=postgres-url,... (as configured on the registry)'],
  ['tenant-cache-ttl', 'TENANTRY_TENANT_CACHE_TTL', '5s', 'how long a tenant looked up in the registry is reused (also for unknown tenants)'],
  ['db-pools', 'TENANTRY_DB_POOLS', '64', 'tenant connection pools kept open at most (least recently used ones are closed)'],
  ['db-max-conns', 'TENANTRY_DB_MAX_CONNS', '3', 'connections per tenant pool'],
  ['db-idle-timeout', 'TENANTRY_DB_IDLE_TIMEOUT', '30s', 'close a pooled connection idle this long'],
  ['shutdown-timeout', 'TENANTRY_SHUTDOWN_TIMEOUT', '10s', 'how long requests in flight may take on shutdown'],
  ['log-level', 'TENANTRY_LOG_LEVEL', 'info', 'log level: debug, info, warn, error'],
];

/** The usage text, for --help. */
export function usage() {
  const lines = ['usage: node src/server.js [flags]', '', 'Every flag falls back to its environment variable.', ''];
  for (const [flag, env, def, what] of SETTINGS) {
    lines.push(`  --${flag} (${env}, default ${def === '' ? 'unset' : JSON.stringify(def)})`, `      ${what}`);
  }
  return lines.join('\n');
}

/** A configuration that does not hold together: every problem, one a line. */
export class ConfigError extends Error {
  constructor(problems) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads the configuration from command-line arguments and the environment.
 * @param {string[]} args
 * @param {Record<string, string | undefined>} env
 */
export function loadConfig(args, env) {
  const options = { help: { type: 'boolean' } };
  for (const [flag] of SETTINGS) {
    options[flag] = { type: 'string' };
  }
  const problems = [];
  let values = {};
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError([err.message]);
  }
  if (values.help) {
    return { help: true };
  }
  const raw = {};
  for (const [flag, envName, def] of SETTINGS) {
    raw[flag] = values[flag] ?? env[envName] ?? def;
  }
  const where = (flag) => {
    const setting = SETTINGS.find(([f]) => f === flag);
    return `--${flag} (${setting[1]})`;
  };

  const cfg = {
    component: COMPONENT_ID,
    issuer: raw.issuer,
    logLevel: raw['log-level'],
  };

  try {
    cfg.listen = parseListenAddr(raw['http-addr']);
  } catch (err) {
    problems.push(`${where('http-addr')}: ${err.message}`);
  }
  for (const flag of ['registry-url', 'identity-url']) {
    try {
      const key = flag === 'registry-url' ? 'registryURL' : 'identityURL';
      cfg[key] = parseHTTPURL(raw[flag]);
    } catch (err) {
      problems.push(`${where(flag)}: ${err.message}`);
    }
  }

  cfg.componentToken = raw['component-token'];
  if (cfg.componentToken === '') {
    problems.push(`${where('component-token')} is required: ask the registry's operator for this component's credential (GetComponentCredential)`);
  } else {
    const parsed = parseComponentToken(cfg.componentToken);
    if (parsed === null) {
      problems.push(`${where('component-token')} is not a component credential (tnc_<component>_<secret>)`);
    } else if (parsed.component !== COMPONENT_ID) {
      problems.push(`${where('component-token')} is the credential of component "${parsed.component}", not of "${COMPONENT_ID}"`);
    }
  }

  if (cfg.issuer === '') {
    problems.push(`${where('issuer')} must not be empty`);
  }
  cfg.baseDomains = splitList(raw['base-domains']).map((d) => d.toLowerCase().replace(/\.$/, ''));
  if (cfg.baseDomains.length === 0 || cfg.baseDomains.some((d) => !/^[a-z0-9.-]+$/.test(d))) {
    problems.push(`${where('base-domains')}: give one or more host names, comma-separated`);
  }

  cfg.placements = new Map();
  if (raw['database-url'] === '') {
    problems.push(`${where('database-url')} is required: the default placement's database`);
  } else {
    try {
      cfg.placements.set(DEFAULT_PLACEMENT, parseDatabaseURL(raw['database-url']));
    } catch (err) {
      problems.push(`${where('database-url')}: ${err.message}`);
    }
  }
  for (const item of splitList(raw.placements)) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? '' : item.slice(0, eq).trim();
    if (name === '' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) {
      problems.push(`${where('placements')}: "${eq < 0 ? item : name}" is not name=postgres-url`);
      continue;
    }
    if (cfg.placements.has(name)) {
      problems.push(
        name === DEFAULT_PLACEMENT
          ? `${where('placements')}: "${DEFAULT_PLACEMENT}" is the placement of ${where('database-url')}`
          : `${where('placements')}: placement "${name}" is given twice`,
      );
      continue;
    }
    try {
      cfg.placements.set(name, parseDatabaseURL(item.slice(eq + 1).trim()));
    } catch (err) {
      problems.push(`${where('placements')}: placement "${name}": ${err.message}`);
    }
  }

  const durations = [
    ['tenant-cache-ttl', 'tenantCacheTTLMillis'],
    ['db-idle-timeout', 'dbIdleTimeoutMillis'],
    ['shutdown-timeout', 'shutdownTimeoutMillis'],
  ];
  for (const [flag, key] of durations) {
    try {
      cfg[key] = parseDuration(raw[flag]);
    } catch (err) {
      problems.push(`${where(flag)}: ${err.message}`);
    }
  }
  const integers = [
    ['db-pools', 'maxPools', 1, 10000],
    ['db-max-conns', 'maxConnsPerPool', 1, 100],
  ];
  for (const [flag, key, min, max] of integers) {
    const n = Number(raw[flag]);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${where(flag)}: "${raw[flag]}" is not a whole number from ${min} to ${max}`);
    }
    cfg[key] = n;
  }
  if (!['debug', 'info', 'warn', 'error'].includes(cfg.logLevel)) {
    problems.push(`${where('log-level')}: "${cfg.logLevel}" is not debug, info, warn or error`);
  }

  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return cfg;
}

/** Splits a comma-separated list, dropping empty items. */
function splitList(value) {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Parses host:port (":8090" listens on every interface). */
export function parseListenAddr(addr) {
  const colon = addr.lastIndexOf(':');
  if (colon < 0) {
    throw new Error(`"${addr}" is not host:port`);
  }
  const host = addr.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`"${addr}" has no valid port`);
  }
  return { host: host === '' ? undefined : host, port };
}

/** Parses an http(s) base URL, returned without a trailing slash. */
export function parseHTTPURL(value) {
  let u;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`"${value}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(`"${value}" is not an http or https URL`);
  }
  if (u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
    throw new Error(`"${value}" must be a plain base URL (no query, fragment or credentials)`);
  }
  return u.href.replace(/\/+$/, '');
}

/**
 * Parses a postgres:// URL into where to connect: host, port, database and
 * TLS. Its user and password are ignored, since every tenant is reached as
 * its own role.
 */
export function parseDatabaseURL(value) {
  let u;
  try {
    u = new URL(value);
  } catch {
    throw new Error('not a postgres:// URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new Error('not a postgres:// URL');
  }
  const params = u.searchParams;
  const host = params.get('host') ?? decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1');
  const port = u.port === '' ? Number(params.get('port') ?? 5432) : Number(u.port);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (host === '' || database === '' || !Number.isInteger(port)) {
    throw new Error('the URL must name a host and a database');
  }
  const sslmode = params.get('sslmode') ?? 'prefer';
  let ssl;
  switch (sslmode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      // node-postgres cannot fall back from TLS to plaintext: like libpq's
      // defaults on a local server, it connects in plaintext.
      ssl = false;
      break;
    case 'require':
    case 'verify-ca':
      ssl = { rejectUnauthorized: false };
      break;
    case 'verify-full':
      ssl = { rejectUnauthorized: true };
      break;
    default:
      throw new Error(`sslmode "${sslmode}" is not one of disable, allow, prefer, require, verify-ca, verify-full`);
  }
  return { host, port, database, ssl };
}

/** Parses a duration such as 500ms, 5s, 2m or 1h into milliseconds. */
export function parseDuration(value) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  if (m === null) {
    throw new Error(`"${value}" is not a duration (e.g. 500ms, 5s, 2m)`);
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]];
  return Math.round(Number(m[1]) * unit);
}

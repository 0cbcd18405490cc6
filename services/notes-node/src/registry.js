// The tenant registry, over its REST API (grpc-gateway: lower-camel-case
// JSON, errors as google.rpc.Status with an ErrorInfo reason), called with
// this component's credential.

import { failedPrecondition, internal, invalidArgument, notFound, unavailable } from './errors.js';

/** How long one registry call may take. */
const CALL_TIMEOUT_MILLIS = 3000;

/** Why a registry call failed, as far as a caller needs to know. */
export class RegistryError extends Error {
  /**
   * @param {'unavailable'|'notFound'|'invalid'|'rejected'|'failed'} kind
   * @param {string} message
   * @param {{status?: number, reason?: string, cause?: unknown}} [details]
   */
  constructor(kind, message, details = {}) {
    super(message, { cause: details.cause });
    this.name = 'RegistryError';
    this.kind = kind;
    this.status = details.status;
    this.reason = details.reason ?? '';
  }
}

/** A client of the registry's REST API. */
export class RegistryClient {
  /**
   * @param {{baseURL: string, token: string, fetch?: typeof fetch, timeoutMillis?: number}} options
   */
  constructor({ baseURL, token, fetch: fetchImpl = fetch, timeoutMillis = CALL_TIMEOUT_MILLIS }) {
    this.baseURL = baseURL;
    this.token = token;
    this.fetch = fetchImpl;
    this.timeoutMillis = timeoutMillis;
  }

  /**
   * Registers the component with its migrations (RegisterComponent): the
   * same list again changes nothing.
   * @param {{id: string, displayName: string, migrations: {version: number, name: string, sql: string}[]}} component
   * @returns {Promise<{addedVersions: number[], latestVersion: number}>}
   */
  async registerComponent(component) {
    const body = {
      component: {
        name: `components/${component.id}`,
        displayName: component.displayName,
        migrations: component.migrations.map(({ version, name, sql }) => ({ version, name, sql })),
      },
    };
    const resp = await this.call('POST', '/v1/components:register', body);
    return {
      addedVersions: resp.addedVersions ?? [],
      latestVersion: resp.component?.latestVersion ?? 0,
    };
  }

  /**
   * Resolves a tenant by host or slug (ResolveTenant). The tenant comes
   * back in any state.
   * @param {{host: string} | {slug: string}} key
   * @returns {Promise<Tenant>}
   */
  async resolveTenant(key) {
    const query = new URLSearchParams(key).toString();
    const resp = await this.call('GET', `/v1/tenants:resolve?${query}`);
    return toTenant(resp.tenant ?? {});
  }

  /** One call: JSON in, JSON out, every failure a RegistryError. */
  async call(method, path, body) {
    let resp;
    try {
      resp = await this.fetch(this.baseURL + path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMillis),
        redirect: 'error',
      });
    } catch (err) {
      throw new RegistryError('unavailable', `${method} ${path}: the registry did not answer`, { cause: err });
    }
    let json;
    try {
      json = await resp.json();
    } catch (err) {
      throw new RegistryError('unavailable', `${method} ${path}: HTTP ${resp.status} without a JSON body`, {
        status: resp.status,
        cause: err,
      });
    }
    if (resp.ok) {
      return json;
    }
    const reason = errorInfoReason(json);
    const message = `${method} ${path}: HTTP ${resp.status} ${reason}: ${json?.message ?? ''}`;
    switch (resp.status) {
      case 404:
        throw new RegistryError('notFound', message, { status: resp.status, reason });
      case 400:
        throw new RegistryError('invalid', message, { status: resp.status, reason });
      case 401:
      case 403:
        throw new RegistryError('rejected', message, { status: resp.status, reason });
      case 409:
      case 412:
        throw new RegistryError('failed', message, { status: resp.status, reason });
      default:
        // 503 above all, but a 500 or a gateway's 502 too: the registry's
        // problem, not the request's.
        throw new RegistryError('unavailable', message, { status: resp.status, reason });
    }
  }
}

/** The reason of the google.rpc.ErrorInfo in a google.rpc.Status body. */
function errorInfoReason(status) {
  for (const d of status?.details ?? []) {
    if (typeof d?.['@type'] === 'string' && d['@type'].endsWith('google.rpc.ErrorInfo')) {
      return d.reason ?? '';
    }
  }
  return '';
}

/**
 * @typedef {{uid: string, slug: string, state: string, schema: string, placement: string, domains: {host: string, primary: boolean}[]}} Tenant
 */

/** The fields of a registry Tenant this service uses. */
function toTenant(t) {
  return {
    uid: t.uid ?? '',
    slug: t.slug ?? '',
    state: t.state ?? 'STATE_UNSPECIFIED',
    schema: t.schema ?? '',
    placement: t.placement ?? '',
    domains: (t.domains ?? []).map((d) => ({ host: d.host ?? '', primary: d.primary === true })),
  };
}

/**
 * Returns nothing when tenant may be served, and otherwise throws what the
 * client gets; the Go kit's tenancy.RequireActive, with its reasons.
 * @param {Tenant} tenant
 */
export function requireActive(tenant) {
  switch (tenant.state) {
    case 'STATE_ACTIVE':
      return;
    case 'STATE_SUSPENDED':
      throw failedPrecondition('TENANT_SUSPENDED', `tenant "${tenant.slug}" is suspended`);
    case 'STATE_DELETED':
      throw notFound('TENANT_NOT_FOUND', `no tenant "${tenant.slug}"`);
    case 'STATE_PROVISIONING':
      throw failedPrecondition('TENANT_PROVISIONING', `tenant "${tenant.slug}" is still being set up; try again in a moment`);
    default:
      throw failedPrecondition('TENANT_STATE_UNKNOWN', `tenant "${tenant.slug}" cannot be served in its current state`);
  }
}

/**
 * TenantDirectory finds the tenant of a request by host or slug, asking the
 * registry and remembering its answers for a few seconds, unknown tenants
 * included (so a flood of requests for a host that names no tenant is not
 * a flood of registry calls).
 *
 * This is the simple way, for a small example in any language: a change to
 * a tenant (suspended, a domain removed) reaches this service within the
 * TTL. The Go kit (services/kit/tenancy) keeps every tenant in memory and
 * coherent within milliseconds through the registry's WatchTenants stream
 * (REST: GET /v1/tenants:watch, newline-delimited JSON); a production
 * service in another language should do the same.
 */
export class TenantDirectory {
  /**
   * @param {{registry: RegistryClient, ttlMillis: number, staleMillis?: number, maxEntries?: number, now?: () => number, log?: import('./log.js').Logger}} options
   */
  constructor({ registry, ttlMillis, staleMillis = 60_000, maxEntries = 10_000, now = Date.now, log }) {
    this.registry = registry;
    this.ttlMillis = ttlMillis;
    // While the registry is down, a tenant it answered for a moment ago is
    // still served for this long: a short outage goes unnoticed.
    this.staleMillis = staleMillis;
    this.maxEntries = maxEntries;
    this.now = now;
    this.log = log;
    /** @type {Map<string, {expires: number, tenant?: Tenant, error?: import('./errors.js').ApiError}>} */
    this.entries = new Map();
    /** @type {Map<string, Promise<Tenant>>} lookups in flight, shared by concurrent requests */
    this.inflight = new Map();
  }

  /** The tenant whose host (a request's Host header) this is. */
  async byHost(rawHost) {
    const host = normalizeHost(rawHost);
    return this.lookup(`host:${host}`, { host });
  }

  /** The tenant with this slug (the x-tenant header). */
  async bySlug(slug) {
    if (!/^[a-z0-9-]{1,63}$/.test(slug)) {
      throw invalidArgument('SLUG_INVALID', 'x-tenant is not a tenant slug (a-z, 0-9, -)');
    }
    return this.lookup(`slug:${slug}`, { slug });
  }

  async lookup(cacheKey, query) {
    const now = this.now();
    const entry = this.entries.get(cacheKey);
    if (entry !== undefined && now < entry.expires) {
      if (entry.error !== undefined) {
        throw entry.error;
      }
      return entry.tenant;
    }
    let pending = this.inflight.get(cacheKey);
    if (pending === undefined) {
      pending = this.ask(cacheKey, query, entry).finally(() => this.inflight.delete(cacheKey));
      this.inflight.set(cacheKey, pending);
    }
    return pending;
  }

  async ask(cacheKey, query, previous) {
    const describe = 'host' in query ? `host "${query.host}"` : `slug "${query.slug}"`;
    try {
      const tenant = await this.registry.resolveTenant(query);
      this.remember(cacheKey, { tenant });
      return tenant;
    } catch (err) {
      if (!(err instanceof RegistryError)) {
        throw err;
      }
      switch (err.kind) {
        case 'notFound': {
          const apiErr = notFound('TENANT_NOT_FOUND', `no tenant for ${describe}`);
          this.remember(cacheKey, { error: apiErr });
          throw apiErr;
        }
        case 'invalid': {
          const apiErr = invalidArgument(err.reason || 'TENANT_KEY_INVALID', `${describe} cannot name a tenant`);
          this.remember(cacheKey, { error: apiErr });
          throw apiErr;
        }
        case 'rejected':
          // A deployment mistake (a wrong or revoked credential), not the
          // client's: it needs an operator.
          this.log?.error('the registry refused this component credential', { err });
          throw internal('TENANT_REGISTRY_REJECTED', 'cannot resolve tenants at the moment', { cause: err });
        default: {
          const stale = previous?.tenant;
          if (stale !== undefined && this.now() < previous.expires - this.ttlMillis + this.staleMillis) {
            this.log?.warn('registry unavailable: serving a tenant looked up earlier', { tenant: stale.slug, err });
            return stale;
          }
          throw unavailable('TENANT_REGISTRY_UNAVAILABLE', `cannot reach the tenant registry to resolve ${describe}; try again shortly`, {
            cause: err,
          });
        }
      }
    }
  }

  remember(cacheKey, value) {
    this.entries.delete(cacheKey);
    this.entries.set(cacheKey, { expires: this.now() + this.ttlMillis, ...value });
    // A Map iterates in insertion order: the first key is the oldest.
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value);
    }
  }
}

/**
 * A request's Host header as a cache key: lower case, without the port and
 * trailing dot. The registry normalises it again and refuses what is not a
 * host name.
 */
export function normalizeHost(raw) {
  let host = String(raw ?? '').trim().toLowerCase();
  if (!host.startsWith('[')) {
    host = host.replace(/:\d*$/, '');
  }
  host = host.replace(/\.$/, '');
  if (host === '') {
    throw invalidArgument('HOST_EMPTY', 'the request has no Host header to find the tenant by (or send x-tenant: <slug>)');
  }
  if (host.length > 253) {
    throw invalidArgument('HOST_TOO_LONG', 'the Host header is too long to name a tenant');
  }
  return host;
}

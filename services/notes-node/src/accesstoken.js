// identity's access tokens, checked here with identity's published keys
// (its JWKS), without a call to identity per request. The same checks as
// the Go kit's services/kit/accesstoken, with jose doing the signature:
//
//   - a JWT signed with EdDSA (nothing else: "none" and HS256 forgeries
//     fail before any key is looked up), header typ exactly "at+jwt", and a
//     kid naming a key identity publishes now for the request's tenant; an
//     unknown kid fetches that tenant's keys again, at most once a second
//     (anyone can make up a kid);
//   - iss is identity's issuer; exp present and not past, iat not in the
//     future, both with 30 s of leeway for clock skew;
//   - sub, tuid and sid present;
//   - tuid is the uid of the tenant the request is for: a token of another
//     tenant, or of a purged tenant whose slug was taken again, is refused
//     with ACCESS_TOKEN_WRONG_TENANT.
//
// What it cannot know: that the session was logged out or the user
// disabled since the token was signed (within its 15 minutes). A call that
// must know asks identity (IntrospectToken).
//
// Each tenant signs with keys of its own, and identity serves a tenant's
// JWKS on that tenant's hosts only (its REST gateway admits a request only
// for a host that names a tenant). So the verifier keeps one key set per
// tenant (by uid; at most MAX_TENANTS of them, the oldest let go first),
// each fetched with a Host of its tenant, and a token is checked with the
// keys of the request's tenant only: a token whose tuid names another
// tenant is refused before any key is fetched.

import http from 'node:http';
import https from 'node:https';

import { createRemoteJWKSet, customFetch, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';

import { unauthenticated, unavailable } from './errors.js';

/** Clock skew tolerated between identity and this service, in seconds. */
export const LEEWAY_SECONDS = 30;

/** Reasons of the refusals; identity and the Go kit use the same ones. */
export const REASON_INVALID = 'ACCESS_TOKEN_INVALID';
export const REASON_EXPIRED = 'ACCESS_TOKEN_EXPIRED';
export const REASON_WRONG_TENANT = 'ACCESS_TOKEN_WRONG_TENANT';
export const REASON_MISSING = 'MISSING_BEARER_TOKEN';

/** The most a JWKS response may hold. */
const MAX_JWKS_BYTES = 1 << 20;

/** The most tenants whose keys a verifier holds. */
export const MAX_TENANTS = 1000;

/** A token of another tenant than the request's. */
class OtherTenantError extends Error {
  constructor() {
    super("the token names another tenant than the request's");
    this.name = 'OtherTenantError';
  }
}

/** A failure to fetch identity's keys: an outage, not a bad token. */
class KeyFetchError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'KeyFetchError';
  }
}

/**
 * @typedef {{subject: string, tenant: string, tenantUID: string, session: string, roles: string[], expiresAt: Date}} Claims
 */

/** Verifier checks access tokens. */
export class AccessTokenVerifier {
  /**
   * @param {{identityURL: string, issuer: string, timeoutMillis?: number, maxTenants?: number}} options
   */
  constructor({ identityURL, issuer, timeoutMillis = 3000, maxTenants = MAX_TENANTS }) {
    this.issuer = issuer;
    this.jwksURL = new URL(`${identityURL}/.well-known/jwks.json`);
    this.timeoutMillis = timeoutMillis;
    this.maxTenants = maxTenants;
    /**
     * Each tenant's key set, by uid, oldest first.
     * @type {Map<string, {host: string, keySet: ReturnType<typeof createRemoteJWKSet>}>}
     */
    this.tenants = new Map();
  }

  /**
   * Checks token for tenant and returns its claims; every refusal is a 401
   * ApiError, a failure to fetch the keys a 503.
   * @param {string} token
   * @param {{uid: string}} tenant
   * @param {string} host a host identity knows the tenant by
   * @returns {Promise<Claims>}
   */
  async verify(token, tenant, host) {
    if (!nonEmpty(tenant.uid)) {
      throw wrongTenant();
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, (header) => this.keyFor(header, token, tenant, host), {
        algorithms: ['EdDSA'],
        issuer: this.issuer,
        typ: 'at+jwt',
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof OtherTenantError) {
        throw wrongTenant();
      }
      if (err instanceof KeyFetchError || err instanceof joseErrors.JWKSTimeout) {
        throw unavailable('IDENTITY_UNAVAILABLE', "cannot fetch identity's keys to check the access token; retry", { cause: err });
      }
      if (err instanceof joseErrors.JWTExpired) {
        throw unauthenticated(REASON_EXPIRED, 'the access token has expired; refresh it', { cause: err });
      }
      throw invalid(err);
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.iat === 'number' && payload.iat > now + LEEWAY_SECONDS) {
      throw invalid(new Error('iat is in the future'));
    }
    if (!nonEmpty(payload.sub) || !nonEmpty(payload.tuid) || !nonEmpty(payload.sid)) {
      throw invalid(new Error('sub, tuid or sid is missing'));
    }
    if (payload.tuid !== tenant.uid) {
      throw wrongTenant();
    }
    return {
      subject: payload.sub,
      tenant: typeof payload.tid === 'string' ? payload.tid : '',
      tenantUID: payload.tuid,
      session: payload.sid,
      roles: Array.isArray(payload.roles) ? payload.roles.filter((r) => typeof r === 'string') : [],
      expiresAt: new Date(payload.exp * 1000),
    };
  }

  /**
   * The key a token's header names among the request's tenant's keys: typ,
   * kid and the token's tenant checked first.
   */
  keyFor(header, token, tenant, host) {
    if (header.typ !== 'at+jwt') {
      throw new Error(`typ ${JSON.stringify(header.typ)} is not at+jwt`);
    }
    if (!nonEmpty(header.kid)) {
      throw new Error('the token names no key (kid)');
    }
    // Read before the signature is checked, only to refuse a token of
    // another tenant without fetching anything: its signature could not be
    // checked with this tenant's keys anyway.
    const { tuid } = decodeJwt(token);
    if (nonEmpty(tuid) && tuid !== tenant.uid) {
      throw new OtherTenantError();
    }
    return this.keySetOf(tenant, host)(header);
  }

  /** The tenant's key set, made at its first token. */
  keySetOf(tenant, host) {
    let entry = this.tenants.get(tenant.uid);
    if (entry === undefined) {
      if (this.tenants.size >= this.maxTenants) {
        this.tenants.delete(this.tenants.keys().next().value);
      }
      const made = { host };
      made.keySet = createRemoteJWKSet(this.jwksURL, {
        timeoutDuration: this.timeoutMillis,
        // An unknown kid fetches again at most once a second, as the Go kit.
        cooldownDuration: 1000,
        [customFetch]: (url, options) => this.fetchKeys(url, options, made.host),
      });
      this.tenants.set(tenant.uid, made);
      entry = made;
    }
    // The host the tenant was last reached by: one identity knows it by now.
    entry.host = host;
    return entry.keySet;
  }

  /**
   * jose's fetch of a tenant's JWKS, through node:http so that the request
   * can carry a tenant's Host (fetch does not let a caller set it).
   * @param {string} url
   * @param {{headers: Headers, signal: AbortSignal}} options
   * @param {string} host
   * @returns {Promise<Response>}
   */
  fetchKeys(url, options, host) {
    const headers = Object.fromEntries(options.headers.entries());
    if (host) {
      headers.host = host;
    }
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        target,
        // With https, the certificate is checked against the tenant host
        // identity is addressed as.
        { method: 'GET', headers, signal: options.signal, ...(host && target.protocol === 'https:' ? { servername: host.replace(/:\d+$/, '') } : {}) },
        (res) => {
          const chunks = [];
          let size = 0;
          res.on('data', (chunk) => {
            size += chunk.length;
            if (size > MAX_JWKS_BYTES) {
              req.destroy(new Error('the JWKS response is too large'));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            if (res.statusCode !== 200) {
              reject(new KeyFetchError(`GET ${url} (Host ${host}): HTTP ${res.statusCode}`));
              return;
            }
            resolve(new Response(Buffer.concat(chunks), { status: 200, headers: { 'content-type': 'application/json' } }));
          });
          res.on('error', (err) => reject(new KeyFetchError(`GET ${url}: ${err.message}`, { cause: err })));
        },
      );
      req.on('error', (err) => reject(new KeyFetchError(`GET ${url}: ${err.message}`, { cause: err })));
      req.end();
    });
  }
}

/**
 * The bearer token of an Authorization header value, or a 401 when there
 * is none.
 * @param {string | undefined} authorization
 */
export function bearerToken(authorization) {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  if (m === null) {
    throw unauthenticated(REASON_MISSING, 'send the access token as "Authorization: Bearer <token>"');
  }
  return m[1];
}

function wrongTenant() {
  return unauthenticated(REASON_WRONG_TENANT, 'this access token belongs to another tenant; log in to this one');
}

function invalid(cause) {
  return unauthenticated(REASON_INVALID, 'the access token is not valid', { cause });
}

function nonEmpty(v) {
  return typeof v === 'string' && v !== '';
}

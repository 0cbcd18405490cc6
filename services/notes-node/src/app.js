// The HTTP API: routes, and what every request goes through (request id,
// tenant, access token, JSON errors, one log record).
//
//   GET  /healthz    200 {"status":"SERVING"}; 503 NOT_SERVING while stopping
//   GET  /v1/notes   the caller's notes, newest first (?pageSize=&pageToken=)
//   POST /v1/notes   {"body": "..."} → 201 with the note
//
// The tenant is the request's Host (as identity's REST API takes it), or the
// slug in an x-tenant header (as identity's gRPC API takes it); the caller
// is the access token's subject, in that tenant only.

import { randomUUID } from 'node:crypto';

import { bearerToken } from './accesstoken.js';
import { ApiError, invalidArgument, notFound, toApiError } from './errors.js';
import { createNote, listNotes, parseListQuery, validateNewNote } from './notes.js';
import { requireActive } from './registry.js';

/** The largest request body read, in bytes. */
const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * @param {{
 *   tenants: import('./registry.js').TenantDirectory,
 *   verifier: import('./accesstoken.js').AccessTokenVerifier,
 *   pools: import('./pools.js').TenantPools,
 *   baseDomains: string[],
 *   log: import('./log.js').Logger,
 *   serving: () => boolean,
 * }} deps
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void}
 */
export function createApp(deps) {
  const { log } = deps;
  return (req, res) => {
    const started = process.hrtime.bigint();
    const requestId = validRequestId(req.headers['x-request-id']) ?? randomUUID();
    const ctx = { requestId, tenant: '' };
    res.setHeader('x-request-id', requestId);
    handle(deps, req, res, ctx)
      .catch((err) => {
        const apiErr = toApiError(err);
        if (apiErr.status >= 500) {
          log.error('request failed', { requestId, tenant: ctx.tenant, reason: apiErr.reason, err: err.cause ?? err });
        }
        if (!req.complete) {
          // A body not read (a refused request) is not waited for.
          res.setHeader('connection', 'close');
        }
        sendError(res, apiErr);
      })
      .finally(() => {
        const millis = Number(process.hrtime.bigint() - started) / 1e6;
        log.info('request', {
          requestId,
          method: req.method,
          path: req.url?.split('?')[0],
          status: res.statusCode,
          tenant: ctx.tenant,
          durationMs: Math.round(millis * 10) / 10,
        });
      });
  };
}

async function handle(deps, req, res, ctx) {
  const url = new URL(req.url ?? '/', 'http://request.invalid');
  if (url.pathname === '/healthz') {
    allowMethods(req, ['GET', 'HEAD']);
    const serving = deps.serving();
    sendJSON(res, serving ? 200 : 503, { status: serving ? 'SERVING' : 'NOT_SERVING' });
    return;
  }
  if (url.pathname !== '/v1/notes') {
    throw notFound('ROUTE_NOT_FOUND', `no route ${url.pathname}`);
  }
  allowMethods(req, ['GET', 'POST']);

  const { tenant, jwksHost } = await findTenant(deps, req);
  ctx.tenant = tenant.slug;
  requireActive(tenant);
  const claims = await deps.verifier.verify(bearerToken(req.headers.authorization), tenant, jwksHost);

  if (req.method === 'GET') {
    const page = parseListQuery(url.searchParams);
    const result = await deps.pools.withClient(tenant, (db) => listNotes(db, claims.subject, page));
    sendJSON(res, 200, result);
    return;
  }
  const note = validateNewNote(await readJSON(req));
  const created = await deps.pools.withClient(tenant, (db) => createNote(db, claims.subject, note));
  sendJSON(res, 201, created);
}

/**
 * The tenant of a request, and a host identity knows it by (for fetching
 * identity's keys). x-tenant (a slug) wins over the Host header.
 */
async function findTenant(deps, req) {
  const slugs = req.headersDistinct['x-tenant'];
  if (slugs !== undefined) {
    if (slugs.length !== 1) {
      throw invalidArgument('METADATA_REPEATED', 'x-tenant is given more than once; name one tenant');
    }
    const tenant = await deps.tenants.bySlug(slugs[0].trim());
    const primary = tenant.domains.find((d) => d.primary)?.host;
    return { tenant, jwksHost: primary ?? `${tenant.slug}.${deps.baseDomains[0]}` };
  }
  const host = req.headers.host ?? '';
  const tenant = await deps.tenants.byHost(host);
  return { tenant, jwksHost: host };
}

function allowMethods(req, methods) {
  if (!methods.includes(req.method ?? '')) {
    const err = new ApiError(405, 'UNIMPLEMENTED', 'METHOD_NOT_ALLOWED', `use ${methods.join(' or ')}`);
    err.allow = methods.join(', ');
    throw err;
  }
}

/** Reads a JSON request body of at most MAX_REQUEST_BYTES. */
async function readJSON(req) {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_REQUEST_BYTES) {
    throw tooLarge();
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) {
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
  } catch {
    throw invalidArgument('REQUEST_MALFORMED', 'the request body is not JSON (UTF-8)');
  }
}

function tooLarge() {
  return new ApiError(413, 'RESOURCE_EXHAUSTED', 'REQUEST_TOO_LARGE', `the request body is over ${MAX_REQUEST_BYTES} bytes`);
}

function sendJSON(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

function sendError(res, err) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err.status === 401) {
    res.setHeader('www-authenticate', 'Bearer');
  }
  if (err.retryAfterSeconds !== undefined) {
    res.setHeader('retry-after', String(err.retryAfterSeconds));
  }
  if (err.allow !== undefined) {
    res.setHeader('allow', err.allow);
  }
  sendJSON(res, err.status, err.toJSON());
}

/** A caller's request id, if it is a sane one to log and echo. */
function validRequestId(value) {
  return typeof value === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : undefined;
}

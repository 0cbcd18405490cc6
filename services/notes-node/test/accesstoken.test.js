import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';

import { AccessTokenVerifier, bearerToken } from '../src/accesstoken.js';

const ISSUER = 'tenantry-identity';
const TENANT = { uid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' };
const OTHER = { uid: '11111111-2222-4333-8444-555555555555' };

// identity's JWKS, served on a local port; each fetch records its Host.
// A host in jwksByHost is another tenant's, with keys of its own.
const jwks = { keys: [] };
const jwksByHost = new Map();
const hosts = [];
let status = 200;
let server;
let identityURL;
let key1;
let key2;

async function newKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } };
}

before(async () => {
  key1 = await newKey('key-1');
  key2 = await newKey('key-2');
  jwks.keys.push(key1.jwk);
  server = http.createServer((req, res) => {
    hosts.push(req.headers.host);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status === 200 ? (jwksByHost.get(req.headers.host) ?? jwks) : { code: 5, message: 'no tenant' }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  identityURL = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

/** A token as identity signs it, with overrides. */
function sign(key, { header = {}, claims = {}, omit = [] } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: ISSUER, sub: 'user-1', tid: 'acme', tuid: TENANT.uid, sid: 'session-1', roles: ['member'], iat: now, nbf: now, exp: now + 900, jti: 'j', ...claims };
  for (const name of omit) {
    delete payload[name];
  }
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid, ...header }).sign(key.privateKey);
}

async function refusal(verifier, token, tenant = TENANT) {
  return refusalAt(verifier, token, tenant, 'acme.localhost');
}

async function refusalAt(verifier, token, tenant, host) {
  try {
    await verifier.verify(token, tenant, host);
  } catch (err) {
    return `${err.status} ${err.reason}`;
  }
  return 'accepted';
}

test('a token of identity for this tenant is accepted; the keys are fetched with the tenant host', async () => {
  const v = new AccessTokenVerifier({ identityURL, issuer: ISSUER });
  const claims = await v.verify(await sign(key1), TENANT, 'acme.localhost:8090');
  assert.equal(claims.subject, 'user-1');
  assert.equal(claims.tenantUID, TENANT.uid);
  assert.equal(claims.session, 'session-1');
  assert.deepEqual(claims.roles, ['member']);
  assert.equal(hosts.at(-1), 'acme.localhost:8090');
});

test('every kind of bad token is refused with its reason', async () => {
  const v = new AccessTokenVerifier({ identityURL, issuer: ISSUER });
  const now = Math.floor(Date.now() / 1000);
  const { privateKey: stranger } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const hs256 = await new SignJWT({ iss: ISSUER, sub: 'u', tuid: TENANT.uid, sid: 's', exp: now + 60 })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'key-1' })
    .sign(new TextEncoder().encode('the public key as an HMAC secret'));
  const valid = await sign(key1);
  const [h, p, s] = valid.split('.');
  const cases = {
    'another tenant': [valid, '401 ACCESS_TOKEN_WRONG_TENANT', OTHER],
    expired: [await sign(key1, { claims: { exp: now - 120, iat: now - 1000 } }), '401 ACCESS_TOKEN_EXPIRED'],
    'expired within the leeway': [await sign(key1, { claims: { exp: now - 10 } }), 'accepted'],
    'another issuer': [await sign(key1, { claims: { iss: 'someone-else' } }), '401 ACCESS_TOKEN_INVALID'],
    'typ JWT': [await sign(key1, { header: { typ: 'JWT' } }), '401 ACCESS_TOKEN_INVALID'],
    'typ application/at+jwt': [await sign(key1, { header: { typ: 'application/at+jwt' } }), '401 ACCESS_TOKEN_INVALID'],
    'no kid': [await sign(key1, { header: { kid: undefined } }), '401 ACCESS_TOKEN_INVALID'],
    'no exp': [await sign(key1, { omit: ['exp'] }), '401 ACCESS_TOKEN_INVALID'],
    'no sid': [await sign(key1, { omit: ['sid'] }), '401 ACCESS_TOKEN_INVALID'],
    'no tuid': [await sign(key1, { omit: ['tuid'] }), '401 ACCESS_TOKEN_INVALID'],
    'issued in the future': [await sign(key1, { claims: { iat: now + 300 } }), '401 ACCESS_TOKEN_INVALID'],
    'signed by a stranger under identity\'s kid': [await sign({ kid: 'key-1', privateKey: stranger }), '401 ACCESS_TOKEN_INVALID'],
    'HS256 with a kid of identity': [hs256, '401 ACCESS_TOKEN_INVALID'],
    'alg none': [`${Buffer.from('{"alg":"none","typ":"at+jwt","kid":"key-1"}').toString('base64url')}.${p}.`, '401 ACCESS_TOKEN_INVALID'],
    'signature of another payload': [`${h}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.${s}`, '401 ACCESS_TOKEN_INVALID'],
    garbage: ['not-a-token', '401 ACCESS_TOKEN_INVALID'],
  };
  for (const [name, [token, want, tenant]] of Object.entries(cases)) {
    assert.equal(await refusal(v, token, tenant), want, name);
  }
});

test("an unknown kid fetches identity's keys again, at most once a second", async () => {
  const v = new AccessTokenVerifier({ identityURL, issuer: ISSUER });
  await v.verify(await sign(key1), TENANT, 'acme.localhost');
  const fetches = hosts.length;
  const rotated = await sign(key2);
  jwks.keys.push(key2.jwk); // identity rotated
  try {
    await sign({ kid: 'made-up', privateKey: key1.privateKey }).then((t) => refusal(v, t));
    assert.equal(hosts.length, fetches, 'within a second of the last fetch: no new fetch');
    await sleep(1100); // the refetch cool-down: what is tested here
    assert.equal(await refusal(v, rotated), 'accepted');
    assert.equal(hosts.length, fetches + 1);
  } finally {
    jwks.keys.pop();
  }
});

test('identity unreachable or refusing the host is an outage, not a bad token', async () => {
  status = 404;
  try {
    const v = new AccessTokenVerifier({ identityURL, issuer: ISSUER });
    assert.equal(await refusal(v, await sign(key1)), '503 IDENTITY_UNAVAILABLE');
  } finally {
    status = 200;
  }
  const down = new AccessTokenVerifier({ identityURL: 'http://127.0.0.1:1', issuer: ISSUER });
  assert.equal(await refusal(down, await sign(key1)), '503 IDENTITY_UNAVAILABLE');
});

test("each tenant's keys are its own: fetched with its host, and never used for another tenant", async () => {
  const other = await newKey('other-key');
  jwksByHost.set('globex.localhost', { keys: [other.jwk] });
  try {
    const v = new AccessTokenVerifier({ identityURL, issuer: ISSUER });
    const acme = await sign(key1);
    const globex = await sign(other, { claims: { tid: 'globex', tuid: OTHER.uid } });
    const before = hosts.length;
    assert.equal(await refusalAt(v, globex, TENANT, 'acme.localhost'), '401 ACCESS_TOKEN_WRONG_TENANT');
    assert.equal(hosts.length, before, "another tenant's token fetches nothing");
    assert.equal(await refusalAt(v, acme, TENANT, 'acme.localhost'), 'accepted');
    assert.equal(await refusalAt(v, globex, OTHER, 'globex.localhost'), 'accepted');
    assert.deepEqual(hosts.slice(before), ['acme.localhost', 'globex.localhost'], 'one fetch per tenant, with its host');
    assert.equal(await refusalAt(v, acme, TENANT, 'acme.localhost'), 'accepted');
    assert.equal(hosts.length, before + 2, 'each key set is kept');
    // Globex's genuine key, under its own kid or acme's, does not sign for acme.
    const forged = await sign(other);
    assert.equal(await refusalAt(v, forged, TENANT, 'acme.localhost'), '401 ACCESS_TOKEN_INVALID');
    const underAcmeKid = await sign({ kid: key1.kid, privateKey: other.privateKey });
    assert.equal(await refusalAt(v, underAcmeKid, TENANT, 'acme.localhost'), '401 ACCESS_TOKEN_INVALID');
    assert.equal(await refusalAt(v, acme, OTHER, 'globex.localhost'), '401 ACCESS_TOKEN_WRONG_TENANT');
  } finally {
    jwksByHost.delete('globex.localhost');
  }
});

test('a verifier holds the keys of at most maxTenants tenants', async () => {
  const v = new AccessTokenVerifier({ identityURL, issuer: ISSUER, maxTenants: 1 });
  const token = await sign(key1);
  const before = hosts.length;
  assert.equal(await refusalAt(v, token, TENANT, 'acme.localhost'), 'accepted');
  assert.equal(await refusalAt(v, await sign(key1, { claims: { tuid: OTHER.uid } }), OTHER, 'globex.localhost'), 'accepted');
  assert.equal(v.tenants.size, 1);
  assert.equal(await refusalAt(v, token, TENANT, 'acme.localhost'), 'accepted');
  assert.equal(hosts.length, before + 3, "acme's keys were let go for globex's, and fetched again");
});

test('the bearer token is taken from the Authorization header only', () => {
  assert.equal(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi');
  assert.equal(bearerToken('bearer abc'), 'abc');
  for (const value of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Token abc']) {
    assert.throws(() => bearerToken(value), (err) => err.status === 401 && err.reason === 'MISSING_BEARER_TOKEN', String(value));
  }
});

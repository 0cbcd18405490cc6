import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiError } from '../src/errors.js';
import { RegistryClient, RegistryError, TenantDirectory, normalizeHost, requireActive } from '../src/registry.js';

const ACME = { uid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', slug: 'acme', state: 'STATE_ACTIVE', schema: 'acme', placement: '', domains: [] };

/** A registry whose answers the test decides, counting the calls. */
function fakeRegistry(answer) {
  const calls = [];
  return {
    calls,
    async resolveTenant(query) {
      calls.push(query);
      return answer(query);
    },
  };
}

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms) => (now += ms) };
}

test('answers are remembered for the TTL, then asked again', async () => {
  const registry = fakeRegistry(() => ACME);
  const c = clock();
  const dir = new TenantDirectory({ registry, ttlMillis: 5000, now: c.now });
  assert.equal((await dir.byHost('ACME.localhost:8090')).slug, 'acme');
  assert.equal((await dir.byHost('acme.localhost.')).slug, 'acme');
  assert.deepEqual(registry.calls, [{ host: 'acme.localhost' }]);
  c.advance(5001);
  await dir.byHost('acme.localhost');
  assert.equal(registry.calls.length, 2);
});

test('unknown tenants are remembered too', async () => {
  const registry = fakeRegistry(() => {
    throw new RegistryError('notFound', 'no');
  });
  const dir = new TenantDirectory({ registry, ttlMillis: 5000 });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(dir.bySlug('nobody'), (err) => err instanceof ApiError && err.status === 404 && err.reason === 'TENANT_NOT_FOUND');
  }
  assert.equal(registry.calls.length, 1);
});

test('concurrent lookups of one key make one call', async () => {
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  const registry = fakeRegistry(async () => {
    await gate;
    return ACME;
  });
  const dir = new TenantDirectory({ registry, ttlMillis: 5000 });
  const lookups = [dir.bySlug('acme'), dir.bySlug('acme'), dir.bySlug('acme')];
  release();
  for (const t of await Promise.all(lookups)) {
    assert.equal(t.slug, 'acme');
  }
  assert.equal(registry.calls.length, 1);
});

test('while the registry is down, a tenant seen in the last minute is served, others are unavailable', async () => {
  let down = false;
  const registry = fakeRegistry(() => {
    if (down) {
      throw new RegistryError('unavailable', 'connection refused');
    }
    return ACME;
  });
  const c = clock();
  const dir = new TenantDirectory({ registry, ttlMillis: 5000, staleMillis: 60_000, now: c.now });
  await dir.bySlug('acme');
  down = true;
  c.advance(10_000);
  assert.equal((await dir.bySlug('acme')).slug, 'acme');
  await assert.rejects(dir.bySlug('other'), (err) => err.status === 503 && err.reason === 'TENANT_REGISTRY_UNAVAILABLE');
  c.advance(60_000);
  await assert.rejects(dir.bySlug('acme'), (err) => err.status === 503);
});

test("a refused credential is the deployment's fault, not the client's", async () => {
  const registry = fakeRegistry(() => {
    throw new RegistryError('rejected', 'HTTP 401');
  });
  const dir = new TenantDirectory({ registry, ttlMillis: 5000 });
  await assert.rejects(dir.bySlug('acme'), (err) => err.status === 500 && err.reason === 'TENANT_REGISTRY_REJECTED');
});

test('the cache is bounded', async () => {
  const registry = fakeRegistry(({ slug }) => ({ ...ACME, slug }));
  const dir = new TenantDirectory({ registry, ttlMillis: 5000, maxEntries: 2 });
  await dir.bySlug('aaa');
  await dir.bySlug('bbb');
  await dir.bySlug('ccc');
  assert.deepEqual([...dir.entries.keys()], ['slug:bbb', 'slug:ccc']);
});

test('only active tenants are served', () => {
  requireActive(ACME);
  const refusal = (state) => {
    try {
      requireActive({ ...ACME, state });
    } catch (err) {
      return [err.status, err.reason];
    }
    return null;
  };
  assert.deepEqual(refusal('STATE_SUSPENDED'), [400, 'TENANT_SUSPENDED']);
  assert.deepEqual(refusal('STATE_PROVISIONING'), [400, 'TENANT_PROVISIONING']);
  assert.deepEqual(refusal('STATE_DELETED'), [404, 'TENANT_NOT_FOUND']);
  assert.deepEqual(refusal('STATE_NEW_ONE'), [400, 'TENANT_STATE_UNKNOWN']);
});

test('hosts are normalised for the cache; empty and overlong ones are refused', () => {
  assert.equal(normalizeHost('Acme.Example.COM.:443'), 'acme.example.com');
  assert.throws(() => normalizeHost(''), (err) => err.reason === 'HOST_EMPTY');
  assert.throws(() => normalizeHost(`${'a'.repeat(254)}.com`), (err) => err.reason === 'HOST_TOO_LONG');
});

test('the client sends the token and reads google.rpc.Status errors', async () => {
  const seen = [];
  const client = new RegistryClient({
    baseURL: 'http://registry',
    token: 'tnc_notes-node_x',
    fetch: async (url, init) => {
      seen.push({ url, auth: init.headers.authorization });
      return new Response(
        JSON.stringify({ code: 5, message: 'no tenant', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'TENANT_NOT_FOUND' }] }),
        { status: 404 },
      );
    },
  });
  await assert.rejects(client.resolveTenant({ host: 'a b&c' }), (err) => err instanceof RegistryError && err.kind === 'notFound' && err.reason === 'TENANT_NOT_FOUND');
  assert.deepEqual(seen, [{ url: 'http://registry/v1/tenants:resolve?host=a+b%26c', auth: 'Bearer tnc_notes-node_x' }]);

  const down = new RegistryClient({ baseURL: 'http://registry', token: 't', fetch: async () => Promise.reject(new TypeError('fetch failed')) });
  await assert.rejects(down.resolveTenant({ slug: 'acme' }), (err) => err.kind === 'unavailable');
});

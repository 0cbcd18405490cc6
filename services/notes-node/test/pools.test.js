import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TenantPools, databaseError } from '../src/pools.js';
import { newLogger } from '../src/log.js';

/** A pg.Pool stand-in: records its config, answers current_schema(). */
function fakePoolFactory(schemaOf = (config) => config.user.split('_')[1]) {
  const made = [];
  const create = (config) => {
    const pool = {
      config,
      ended: false,
      on() {},
      async query() {
        return { rows: [{ schema: schemaOf(config) }] };
      },
      async connect() {
        if (pool.ended) {
          throw new Error('Cannot use a pool after calling end on the pool');
        }
        return { query: async () => ({ rows: [] }), release() {} };
      },
      async end() {
        pool.ended = true;
      },
    };
    made.push(pool);
    return pool;
  };
  return { made, create };
}

function tenant(n) {
  const uid = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  // The fake answers the schema from the role's uid part.
  return { uid, slug: `t${n}`, schema: uid.replaceAll('-', ''), placement: '' };
}

function pools(factory, maxPools = 2) {
  return new TenantPools({
    placements: new Map([['default', { host: 'db', port: 5432, database: 'tenantry', ssl: false }]]),
    component: 'notes-node',
    componentToken: 'tnc_notes-node_c2VjcmV0',
    maxPools,
    maxConnsPerPool: 3,
    idleTimeoutMillis: 1000,
    log: newLogger('error', () => {}),
    createPool: factory.create,
  });
}

test('a tenant gets its own pool, as its role, reused', async () => {
  const factory = fakePoolFactory();
  const p = pools(factory);
  await p.withClient(tenant(1), async () => {});
  await p.withClient(tenant(1), async () => {});
  assert.equal(factory.made.length, 1);
  const { config } = factory.made[0];
  assert.equal(config.user, 't_00000000000040008000000000000001_notes-node');
  assert.equal(config.host, 'db');
  assert.equal(config.database, 'tenantry');
  assert.equal(config.max, 3);
  assert.match(config.password, /^[A-Za-z0-9_-]{43}$/);
});

test('the least recently used pool is ended beyond the bound', async () => {
  const factory = fakePoolFactory();
  const p = pools(factory, 2);
  await p.withClient(tenant(1), async () => {});
  await p.withClient(tenant(2), async () => {});
  await p.withClient(tenant(1), async () => {}); // 2 is now the least recent
  await p.withClient(tenant(3), async () => {});
  assert.equal(p.size, 2);
  assert.deepEqual(
    factory.made.map((pool) => pool.ended),
    [false, true, false],
  );
  await p.closeAll();
  assert.ok(factory.made.every((pool) => pool.ended));
});

test('a role whose schema is not the tenant\'s is refused, and the pool dropped', async () => {
  const factory = fakePoolFactory(() => 'public');
  const p = pools(factory);
  await assert.rejects(p.withClient(tenant(1), async () => {}), (err) => err.status === 500 && err.reason === 'TENANT_SCHEMA_MISMATCH');
  assert.equal(p.size, 0);
  assert.ok(factory.made[0].ended);
});

test('a placement the service does not know is refused', async () => {
  const p = pools(fakePoolFactory());
  await assert.rejects(p.withClient({ ...tenant(1), placement: 'eu' }, async () => {}), (err) => err.reason === 'PLACEMENT_UNKNOWN');
});

test('database errors become outages or internal errors, never SQL text', () => {
  const cases = [
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 503, 'DATABASE_UNAVAILABLE'],
    [{ code: '57P01', message: 'terminating connection due to administrator command' }, 503, 'DATABASE_UNAVAILABLE'],
    [{ message: 'timeout exceeded when trying to connect' }, 503, 'DATABASE_UNAVAILABLE'],
    [{ code: '28P01', message: 'password authentication failed for user "t_..."' }, 503, 'TENANT_ROLE_UNAVAILABLE'],
    [{ code: '42P01', message: 'relation "notes" does not exist' }, 503, 'TENANT_SCHEMA_NOT_READY'],
    [{ code: '40001', message: 'could not serialize access' }, 409, 'CONCURRENT_CONFLICT'],
    [{ code: '42501', message: 'permission denied for table users' }, 500, 'INTERNAL'],
  ];
  for (const [err, status, reason] of cases) {
    const apiErr = databaseError(Object.assign(new Error(err.message), err));
    assert.equal(apiErr.status, status, err.message);
    assert.equal(apiErr.reason, reason, err.message);
    assert.ok(!apiErr.message.includes(err.message), 'no SQL text for the client');
  }
});

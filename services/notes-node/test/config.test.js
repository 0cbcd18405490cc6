import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConfigError, loadConfig, parseDatabaseURL, parseDuration } from '../src/config.js';

const ENV = {
  TENANTRY_COMPONENT_TOKEN: 'tnc_notes-node_c2VjcmV0',
  DATABASE_URL: 'postgres://postgres:secret@127.0.0.1:5433/tenantry?sslmode=disable',
};

test('defaults work next to make run', () => {
  const cfg = loadConfig([], ENV);
  assert.equal(cfg.registryURL, 'http://localhost:8081');
  assert.equal(cfg.identityURL, 'http://localhost:8080');
  assert.deepEqual(cfg.listen, { host: 'localhost', port: 8090 });
  assert.equal(cfg.issuer, 'tenantry-identity');
  assert.equal(cfg.tenantCacheTTLMillis, 5000);
  assert.deepEqual(cfg.placements.get('default'), { host: '127.0.0.1', port: 5433, database: 'tenantry', ssl: false });
});

test('flags win over the environment', () => {
  const cfg = loadConfig(['--registry-url', 'http://registry:9000/', '--tenant-cache-ttl=250ms'], {
    ...ENV,
    TENANTRY_REGISTRY_URL: 'http://elsewhere',
  });
  assert.equal(cfg.registryURL, 'http://registry:9000');
  assert.equal(cfg.tenantCacheTTLMillis, 250);
});

test('placements are read, user and password ignored', () => {
  const cfg = loadConfig([], { ...ENV, TENANTRY_PLACEMENTS: 'eu=postgres://u:p@db-eu:6432/t?sslmode=verify-full, us=postgres://db-us/t' });
  assert.deepEqual(cfg.placements.get('eu'), { host: 'db-eu', port: 6432, database: 't', ssl: { rejectUnauthorized: true } });
  assert.deepEqual(cfg.placements.get('us'), { host: 'db-us', port: 5432, database: 't', ssl: false });
});

test('every problem is reported at once', () => {
  let err;
  try {
    loadConfig(['--db-pools', '0', '--tenant-cache-ttl', 'soon'], {
      TENANTRY_COMPONENT_TOKEN: 'tnc_identity_abc',
      TENANTRY_PLACEMENTS: 'eu',
      TENANTRY_REGISTRY_URL: 'ftp://registry',
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, String(err));
  const got = (name) => assert.ok(err.problems.some((p) => p.includes(name)), `${name} in ${err.problems.join('; ')}`);
  got('--component-token');
  got('--database-url');
  got('--placements');
  got('--registry-url');
  got('--db-pools');
  got('--tenant-cache-ttl');
  assert.equal(err.problems.length, 6);
});

test('unknown flags are refused', () => {
  assert.throws(() => loadConfig(['--no-such-flag'], ENV), ConfigError);
});

test('durations and database URLs are parsed strictly', () => {
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2m'), 120_000);
  assert.throws(() => parseDuration('5'), /not a duration/);
  assert.throws(() => parseDatabaseURL('mysql://x/y'), /postgres/);
  assert.throws(() => parseDatabaseURL('postgres://host'), /database/);
  assert.throws(() => parseDatabaseURL('postgres://host/db?sslmode=sometimes'), /sslmode/);
  assert.equal(parseDatabaseURL('postgres:///db?host=/var/run/postgresql').host, '/var/run/postgresql');
});

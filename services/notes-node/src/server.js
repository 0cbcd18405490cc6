// notes-node: an example product service on Tenantry, in Node.js. It only
// wires: configuration → registration of its component → HTTP server, and
// owns the process's signals and graceful shutdown (health NOT_SERVING →
// drain requests in flight → close the database pools).
//
//   node src/server.js [--http-addr localhost:8090] ...   (--help lists them)

import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { AccessTokenVerifier } from './accesstoken.js';
import { createApp } from './app.js';
import { loadMigrations, registerComponent } from './component.js';
import { ConfigError, loadConfig, usage } from './config.js';
import { describeError, newLogger } from './log.js';
import { TenantPools } from './pools.js';
import { RegistryClient, TenantDirectory } from './registry.js';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'migrations');

/** How long start-up waits for the registry to take the component. */
const REGISTER_DEADLINE_MILLIS = 30_000;

async function main() {
  let cfg;
  try {
    cfg = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`notes-node: ${err.message}\n(node src/server.js --help lists the settings)\n`);
      return 2;
    }
    throw err;
  }
  if (cfg.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const log = newLogger(cfg.logLevel).with({ service: cfg.component });

  const registry = new RegistryClient({ baseURL: cfg.registryURL, token: cfg.componentToken });
  const migrations = await loadMigrations(MIGRATIONS_DIR);
  const stopping = new AbortController();
  const onSignal = (signal) => {
    log.info('signal received: stopping', { signal });
    stopping.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const registered = await registerComponent(
      registry,
      { id: cfg.component, displayName: 'Notes (Node.js example)', migrations },
      { deadlineMillis: REGISTER_DEADLINE_MILLIS, log, signal: stopping.signal },
    );
    log.info('component registered', { component: cfg.component, latestVersion: registered.latestVersion, addedVersions: registered.addedVersions });
  } catch (err) {
    log.error('cannot register the component with the registry', { err });
    return 1;
  }
  if (stopping.signal.aborted) {
    return 0;
  }

  const tenants = new TenantDirectory({ registry, ttlMillis: cfg.tenantCacheTTLMillis, log });
  const verifier = new AccessTokenVerifier({ identityURL: cfg.identityURL, issuer: cfg.issuer });
  const pools = new TenantPools({
    placements: cfg.placements,
    component: cfg.component,
    componentToken: cfg.componentToken,
    maxPools: cfg.maxPools,
    maxConnsPerPool: cfg.maxConnsPerPool,
    idleTimeoutMillis: cfg.dbIdleTimeoutMillis,
    log,
  });
  let serving = true;
  const app = createApp({ tenants, verifier, pools, baseDomains: cfg.baseDomains, log, serving: () => serving });
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, app);

  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(cfg.listen.port, cfg.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    log.error('cannot listen', { addr: `${cfg.listen.host ?? ''}:${cfg.listen.port}`, err });
    return 1;
  }
  const addr = server.address();
  log.info('serving HTTP', { addr: typeof addr === 'string' ? addr : `${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}` });

  await new Promise((resolve) => stopping.signal.addEventListener('abort', resolve, { once: true }));

  // Health says NOT_SERVING at once (a load balancer stops sending), the
  // listener closes, requests in flight get shutdownTimeout to finish.
  serving = false;
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeIdleConnections();
  const timer = setTimeout(() => {
    log.warn('requests still running at the shutdown timeout: closing their connections');
    server.closeAllConnections();
  }, cfg.shutdownTimeoutMillis);
  await closed;
  clearTimeout(timer);
  await pools.closeAll();
  log.info('stopped');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`notes-node: ${describeError(err)}\n`);
    process.exitCode = 1;
  },
);

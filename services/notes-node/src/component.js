// This service as a Tenantry component: its migrations (migrations/, one
// NNNN_name.sql file per version) registered with the registry at start-up,
// so that every new tenant's schema gets them and MigrateTenants brings the
// existing ones up to date. Registering the same list again changes
// nothing; changing an applied migration is refused by the registry.

import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { RegistryError } from './registry.js';

const FILE = /^(\d{4})_([a-z0-9_]{1,63})\.sql$/;

/**
 * Reads the migrations of dir, versions 1, 2, 3... in order.
 * @param {string} dir
 * @returns {Promise<{version: number, name: string, sql: string}[]>}
 */
export async function loadMigrations(dir) {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations = [];
  for (const file of files) {
    const m = FILE.exec(file);
    if (m === null) {
      throw new Error(`${path.join(dir, file)}: a migration is named NNNN_name.sql (name: a-z, 0-9, _)`);
    }
    const version = Number(m[1]);
    if (version !== migrations.length + 1) {
      throw new Error(`${path.join(dir, file)}: expected version ${migrations.length + 1}; versions are 1, 2, 3... with no gap`);
    }
    migrations.push({ version, name: m[2], sql: await readFile(path.join(dir, file), 'utf8') });
  }
  if (migrations.length === 0) {
    throw new Error(`${dir} holds no migration`);
  }
  return migrations;
}

/**
 * Registers the component, retrying while the registry is unavailable (it
 * may be starting too) until deadline; any other refusal (bad SQL, a
 * changed migration, a wrong credential) is final.
 * @param {import('./registry.js').RegistryClient} registry
 * @param {{id: string, displayName: string, migrations: {version: number, name: string, sql: string}[]}} component
 * @param {{deadlineMillis: number, log: import('./log.js').Logger, signal?: AbortSignal}} options
 */
export async function registerComponent(registry, component, { deadlineMillis, log, signal }) {
  const deadline = Date.now() + deadlineMillis;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await registry.registerComponent(component);
    } catch (err) {
      const retry = err instanceof RegistryError && err.kind === 'unavailable' && Date.now() + delay < deadline && !signal?.aborted;
      if (!retry) {
        throw err;
      }
      log.warn('registry unavailable; registering the component again shortly', { err, retryInMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

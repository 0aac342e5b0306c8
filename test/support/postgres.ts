// Real PostgreSQL for the tests, never a mock. One throwaway cluster serves a whole vitest run: the first test
// file that asks for a database starts it (so runs without PostgreSQL tests pay nothing), the others reuse it, and
// the global teardown stops it by PID. Each test file gets its own database. TEST_DATABASE_URL=postgres://… uses
// an existing server instead (the role needs CREATEDB). Missing binaries fail the test with how to install them.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { startPostgresCluster } from '../../demo/postgres-cluster.mjs';
import { CLUSTER_STATE_FILE } from './postgres-setup.js';
import { waitFor } from './wait-for.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder where the run's lazily started cluster records its URL and PID (test/support/postgres-setup.ts). */
    postgresStateDir: string;
  }
}

interface ClusterState {
  url?: string;
  pid?: number;
  dir?: string;
  error?: string;
}

/** The URL of the run's cluster, starting it if this is the first file to ask. */
async function serverUrl(): Promise<string> {
  if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
  const stateDir = inject('postgresStateDir');
  if (!stateDir) throw new Error('test/support/postgres-setup.ts is not in vitest globalSetup, and TEST_DATABASE_URL is unset');
  const file = join(stateDir, CLUSTER_STATE_FILE);
  let starter = false;
  try {
    mkdirSync(join(stateDir, 'starting')); // atomic: exactly one worker wins
    starter = true;
  } catch {
    // another worker starts it
  }
  if (starter) {
    let state: ClusterState;
    try {
      const cluster = await startPostgresCluster({ durable: false });
      state = { url: cluster.url, pid: cluster.pid, dir: cluster.dir };
    } catch (err) {
      state = { error: (err as Error).message };
    }
    writeFileSync(file, JSON.stringify(state));
  }
  const state = await waitFor(() => existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as ClusterState), {
    timeoutMs: 60_000, what: 'the test PostgreSQL cluster to start',
  });
  if (state.error) throw new Error(state.error);
  return state.url!;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
  /** The database's name. */
  name: string;
  /** Run one statement on the server's own database, as its creator (e.g. to refuse connections to this one). */
  admin(sql: string): Promise<void>;
}

/** A fresh, empty database on the run's cluster (or on TEST_DATABASE_URL's server). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const admin = new URL(await serverUrl());
  const name = `relay_test_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: admin.href });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(admin.href);
  url.pathname = `/${name}`;
  return { url: url.href, name, admin: run, drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

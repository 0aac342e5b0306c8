// vitest globalSetup: the PostgreSQL cluster of a run is started lazily by the first test file that asks for a
// database (test/support/postgres.ts), which records it in the state folder handed out here; the teardown stops it.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { stopPostgresCluster } from '../../demo/postgres-cluster.mjs';

export const CLUSTER_STATE_FILE = 'cluster.json';

export default function setup(project: TestProject) {
  const stateDir = mkdtempSync(join(tmpdir(), 'relay-test-pg-state-'));
  project.provide('postgresStateDir', stateDir);
  return async () => {
    const file = join(stateDir, CLUSTER_STATE_FILE);
    if (existsSync(file)) {
      const state = JSON.parse(readFileSync(file, 'utf8')) as { pid?: number; dir?: string };
      if (state.pid && state.dir) await stopPostgresCluster({ pid: state.pid, dir: state.dir });
    }
    rmSync(stateDir, { recursive: true, force: true });
  };
}

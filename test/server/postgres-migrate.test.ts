// Versioned migrations on a real PostgreSQL server: instances starting together apply each step exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../src/server/store/postgres/pool.js';
import { runMigrations } from '../../src/server/store/postgres/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let database: TestDatabase;
const pools: Pool[] = [];
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await database.drop();
});
const pool = () => {
  const p = createPool(database.url, { max: 3 });
  pools.push(p);
  return p;
};

describe('PostgreSQL migrations', () => {
  it('run each step once when several instances start at the same moment', async () => {
    // A step that is not idempotent: run twice, it would fail (the table exists) or insert a second row.
    const steps = ['CREATE TABLE counter (n INTEGER NOT NULL)', 'INSERT INTO counter (n) VALUES (1)'];
    const applied = await Promise.all([1, 2, 3, 4].map(() => runMigrations(pool(), [{ module: 'race', steps }])));
    expect(applied.sort()).toEqual([0, 0, 0, 2]);
    const { rows } = await pools[0]!.query('SELECT n FROM counter');
    expect(rows).toEqual([{ n: 1 }]);

    // A later release appends a step: only that one runs.
    expect(await runMigrations(pool(), [{ module: 'race', steps: [...steps, 'INSERT INTO counter (n) VALUES (2)'] }])).toBe(1);
    const versions = await pools[0]!.query("SELECT version FROM schema_migrations WHERE module = 'race' ORDER BY version");
    expect(versions.rows.map((r) => r.version)).toEqual([1, 2, 3]);
  });

  it('roll a failing step back whole and name it', async () => {
    const steps = ['CREATE TABLE half (a INTEGER); INSERT INTO half VALUES (1); SELECT no_such_function()'];
    await expect(runMigrations(pool(), [{ module: 'broken', steps }])).rejects.toThrow(/migration broken v1 failed: .*no_such_function/);
    const { rows } = await pools[0]!.query("SELECT to_regclass('half') AS t");
    expect(rows).toEqual([{ t: null }]);
  });
});

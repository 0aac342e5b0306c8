// The audience store on each backend, for contract tests that must pass on both: SQLite in memory, and a real
// PostgreSQL database (test/support/postgres.ts) shared by one test file and emptied between tests.
import { openDatabase, type Db } from '../../src/server/store/db.js';
import { createSqliteAudienceStore } from '../../src/server/store/sqlite-audiences.js';
import { createPool, type Pool } from '../../src/server/store/postgres/pool.js';
import { openPostgresAudienceStore } from '../../src/server/store/postgres/audiences.js';
import type { AudienceStore } from '../../src/server/store/audience-types.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

export const AUDIENCE_TABLES = ['audience_definitions', 'audience_lists', 'audience_members', 'audience_inflight_jobs', 'audience_runs', 'audience_leases'];

export interface AudienceBackend {
  name: 'sqlite' | 'postgres';
  store: AudienceStore;
  /** Run one SQL statement without parameters (test set-up only). */
  exec(sql: string): Promise<void>;
  count(table: string): Promise<number>;
  /** Empty every audience table. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function openSqliteBackend(): Promise<AudienceBackend & { db: Db }> {
  const db = openDatabase(':memory:');
  return {
    name: 'sqlite',
    db,
    store: createSqliteAudienceStore(db),
    exec: async (sql) => void db.exec(sql),
    count: async (table) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number,
    reset: async () => void db.exec(AUDIENCE_TABLES.map((t) => `DELETE FROM ${t};`).join('\n')),
    close: async () => db.close(),
  };
}

export async function openPostgresBackend(): Promise<AudienceBackend & { pool: Pool; database: TestDatabase }> {
  const database = await createTestDatabase();
  const pool = createPool(database.url, { max: 5 });
  const store = await openPostgresAudienceStore(pool);
  return {
    name: 'postgres',
    pool,
    database,
    store,
    exec: async (sql) => void (await pool.query(sql)),
    count: async (table) => Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n),
    reset: async () => void (await pool.query(`TRUNCATE ${AUDIENCE_TABLES.join(', ')}`)),
    close: async () => {
      await pool.end();
      await database.drop();
    },
  };
}

export const BACKENDS = [
  { name: 'sqlite', open: openSqliteBackend },
  { name: 'postgres', open: openPostgresBackend },
] as const;

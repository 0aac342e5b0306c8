// The audience store on each backend, for contract tests that must pass on both: SQLite in memory, and a real
// PostgreSQL database (test/support/postgres.ts) shared by one test file and emptied between tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type Db } from '../../src/server/store/db.js';
import { createSqliteAudienceStore } from '../../src/server/store/sqlite-audiences.js';
import { createSqliteStore } from '../../src/server/store/sqlite.js';
import type { RelayStore } from '../../src/server/store/types.js';
import { parseWireEvent } from '../../src/shared/wire-schema.js';
import type { RelayEvent } from '../../src/shared/wire.js';
import type { Pool } from '../../src/server/store/postgres/pool.js';
import { openStore } from '../../src/server/store/open.js';
import type { AudienceStore } from '../../src/server/store/audience-types.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

/** Core tables, children first. */
const CORE_TABLES = ['forward_outbox', 'events', 'profile_aliases', 'profiles'];

export const AUDIENCE_TABLES = ['audience_definitions', 'audience_lists', 'audience_members', 'audience_inflight_jobs', 'audience_runs', 'audience_leases'];

export interface AudienceBackend {
  name: 'sqlite' | 'postgres';
  store: AudienceStore;
  /** The core store on the same database: segment sources read the profiles and events it ingests. */
  relay: RelayStore;
  /** Run one SQL statement without parameters (test set-up only). */
  exec(sql: string): Promise<void>;
  count(table: string): Promise<number>;
  /** Empty every audience table and the core store. */
  reset(): Promise<void>;
  /** A second, independent connection to the same database, as another process or instance would have. */
  another(): Promise<{ store: AudienceStore; close(): Promise<void> }>;
  close(): Promise<void>;
}

export async function openSqliteBackend(): Promise<AudienceBackend & { db: Db }> {
  const dir = mkdtempSync(join(tmpdir(), 'relay-audience-db-'));
  const db = openDatabase(dir);
  return {
    name: 'sqlite',
    db,
    store: createSqliteAudienceStore(db),
    relay: createSqliteStore(db),
    exec: async (sql) => void db.exec(sql),
    count: async (table) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number,
    reset: async () => void db.exec([...AUDIENCE_TABLES, ...CORE_TABLES].map((t) => `DELETE FROM ${t};`).join('\n')),
    another: async () => {
      const other = openDatabase(dir);
      return { store: createSqliteAudienceStore(other), close: async () => void other.close() };
    },
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function openPostgresBackend(): Promise<AudienceBackend & { pool: Pool; database: TestDatabase }> {
  const database = await createTestDatabase();
  const open = () => openStore({ databaseUrl: database.url, dataDir: '/nonexistent: PostgreSQL writes no files' });
  const opened = await open();
  if (opened.backend.kind !== 'postgres') throw new Error('expected PostgreSQL');
  const pool = opened.backend.pool;
  return {
    name: 'postgres',
    pool,
    database,
    store: opened.audiences,
    relay: opened.relay,
    exec: async (sql) => void (await pool.query(sql)),
    count: async (table) => Number((await pool.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n),
    reset: async () => void (await pool.query(`TRUNCATE ${[...AUDIENCE_TABLES, ...CORE_TABLES].join(', ')} RESTART IDENTITY CASCADE`)),
    another: async () => {
      const other = await open();
      return { store: other.audiences, close: () => other.close() };
    },
    close: async () => {
      await opened.close();
      await database.drop();
    },
  };
}

export const BACKENDS = [
  { name: 'sqlite', open: openSqliteBackend },
  { name: 'postgres', open: openPostgresBackend },
] as const;

export const TEST_PUBLIC_KEY = 'Ab12Cd';

/** Store events through the core store, as intake would (validated first). Events default to a `track` with no route. */
export async function ingest(relay: RelayStore, events: (Partial<RelayEvent> & { time: string; profile: RelayEvent['profile'] })[]): Promise<void> {
  let n = 0;
  const valid = events.map((e) => {
    const parsed = parseWireEvent({ type: 'track', route: 'off', unique_id: `${e.time}-${n++}-${Math.random().toString(36).slice(2)}`, ...e });
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.event;
  });
  await relay.ingest(TEST_PUBLIC_KEY, valid);
}

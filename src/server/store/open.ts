// The one place that picks a storage backend: SQLite in a data folder (the embedded default), or PostgreSQL when
// a postgres:// URL is given (DATABASE_URL). With PostgreSQL nothing is written to the data folder.
import { openDatabase, type Db } from './db.js';
import { createSqliteStore } from './sqlite.js';
import { lockDataDir } from './data-dir-lock.js';
import { StartupError } from '../startup.js';
import type { RelayStore } from './types.js';
import type { AudienceStore } from './audience-types.js';
import { createSqliteAudienceStore } from './sqlite-audiences.js';
import { createPool, type Pool } from './postgres/pool.js';
import { runMigrations, type MigrationSet } from './postgres/migrate.js';
import { CORE_MIGRATIONS } from './postgres/schema.js';
import { createPostgresStore } from './postgres/relay-store.js';
import { AUDIENCE_MIGRATIONS, createPostgresAudienceStore } from './postgres/audiences.js';

export interface OpenStoreOptions {
  /** postgres://… selects PostgreSQL; otherwise SQLite in `dataDir`. */
  databaseUrl?: string;
  /** Folder of the SQLite file (claimed by this process alone, unless claimDataDir is false), or ':memory:'.
   * Ignored with a databaseUrl. */
  dataDir: string;
  /** SQLite: false shares the folder with the `serve` that claimed it (`sync` and `logs` do). Default true. */
  claimDataDir?: boolean;
  /** PostgreSQL: how long an outbox claim holds without renewal (default 30 s). */
  claimLeaseMs?: number;
  log?: (level: 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

/** The backend's own handle, for store implementations under src/server/store only. */
export type StoreBackend = { kind: 'sqlite'; db: Db } | { kind: 'postgres'; pool: Pool; databaseUrl: string };

export interface OpenedStore {
  relay: RelayStore;
  /** Audience definitions, sync state, run logs and leases, on the same database. */
  audiences: AudienceStore;
  backend: StoreBackend;
  /** Where the data lives, for log lines (a PostgreSQL URL without its password). */
  location: string;
  close(): Promise<void>;
}

export function isPostgresUrl(url: string | undefined): boolean {
  return !!url && /^postgres(ql)?:\/\//i.test(url);
}

/** The URL as it may be shown: no password. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** Every module's PostgreSQL schema, applied in this order at open (each set versioned on its own). */
const POSTGRES_MIGRATIONS: MigrationSet[] = [CORE_MIGRATIONS, AUDIENCE_MIGRATIONS];

export async function openStore(options: OpenStoreOptions): Promise<OpenedStore> {
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    if (!isPostgresUrl(options.databaseUrl)) {
      throw new StartupError(`DATABASE_URL must be a postgres:// or postgresql:// URL, got "${options.databaseUrl.split(':')[0]}:…"`);
    }
    const databaseUrl = options.databaseUrl;
    const pool = createPool(databaseUrl, { onError: (err) => options.log?.('warn', `PostgreSQL connection error: ${err.message}`) });
    try {
      await runMigrations(pool, POSTGRES_MIGRATIONS);
    } catch (err) {
      await pool.end();
      throw new StartupError(`cannot open the PostgreSQL store at ${redactDatabaseUrl(databaseUrl)}: ${(err as Error).message || (err as { code?: string }).code}; check DATABASE_URL`);
    }
    const relay = createPostgresStore({ pool, databaseUrl, claimLeaseMs: options.claimLeaseMs });
    return {
      relay,
      audiences: createPostgresAudienceStore(pool),
      backend: { kind: 'postgres', pool, databaseUrl },
      location: redactDatabaseUrl(databaseUrl),
      async close() {
        await relay.close();
        await pool.end();
      },
    };
  }
  const lock = options.dataDir === ':memory:' || options.claimDataDir === false ? undefined : lockDataDir(options.dataDir);
  let db: Db;
  try {
    db = openDatabase(options.dataDir);
  } catch (err) {
    lock?.release();
    throw err;
  }
  const relay = createSqliteStore(db);
  return {
    relay,
    audiences: createSqliteAudienceStore(db),
    backend: { kind: 'sqlite', db },
    location: options.dataDir,
    async close() {
      await relay.close();
      lock?.release();
    },
  };
}

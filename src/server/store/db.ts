// The embedded SQLite database (better-sqlite3 12): one file in RELAY_DATA_DIR, WAL mode, and named migration
// sets so each module (core store, audiences) owns its own tables.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { ensureDataDir, isUnwritable, unwritableDataDir } from '../startup.js';

export type Db = Database.Database;

/** Open (or create) the relay database. `':memory:'` gives a throwaway one for tests. */
export function openDatabase(dataDir: string): Db {
  if (dataDir !== ':memory:') ensureDataDir(dataDir);
  let db: Db | undefined;
  try {
    db = new Database(dataDir === ':memory:' ? ':memory:' : join(dataDir, 'relay.sqlite3'));
    // The first write: a folder that cannot be written shows here at the latest.
    db.pragma('journal_mode = WAL');
  } catch (err) {
    db?.close();
    if (isUnwritable(err)) throw unwritableDataDir(dataDir, err);
    throw err;
  }
  db.pragma('synchronous = NORMAL');
  // WAL + NORMAL: a commit survives a process crash without an fsync; only checkpoints fsync. Checkpointing every
  // ~40 MB of WAL instead of every 4 MB triples intake throughput on slow virtual disks (bench/server.bench.mjs).
  db.pragma('wal_autocheckpoint = 10000');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (module TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (module, version))');
  applyMigrations(db, 'core', CORE_MIGRATIONS);
  applyMigrations(db, 'workflow', WORKFLOW_MIGRATIONS);
  return db;
}

/** Apply the not-yet-applied steps of one module's migration list, each in its own transaction. Append only. */
export function applyMigrations(db: Db, module: string, steps: string[]): void {
  const done = new Set(
    db.prepare('SELECT version FROM schema_migrations WHERE module = ?').pluck().all(module) as number[],
  );
  steps.forEach((sql, i) => {
    if (done.has(i + 1)) return;
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (module, version) VALUES (?, ?)').run(module, i + 1);
    })();
  });
}

/**
 * Core tables. Times are epoch milliseconds (INTEGER); JSON columns are TEXT.
 * - profiles: one stitched person. Identifier columns hold the latest known value.
 * - profile_aliases: every identifier ever seen for a profile (anonymous_id, email, phone_number, external_id),
 *   so an anonymous visitor who later identifies is stitched onto one profile.
 * - events: every event the snippet sent (all routes), unique by unique_id.
 * - forward_outbox: `server`-routed items waiting to be sent to Klaviyo with the private key. Status also takes
 *   `inflight` (claimed by the forwarder; a restart puts such items back to pending).
 */
const CORE_MIGRATIONS = [
  `
  CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    email TEXT, phone_number TEXT, external_id TEXT, anonymous_id TEXT, kx TEXT,
    first_name TEXT, last_name TEXT, organization TEXT, title TEXT, locale TEXT, image TEXT,
    location TEXT,            -- JSON object
    properties TEXT,          -- JSON object of custom traits
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE profile_aliases (
    kind TEXT NOT NULL,       -- anonymous_id | email | phone_number | external_id
    value TEXT NOT NULL,
    profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    PRIMARY KEY (kind, value)
  );
  CREATE INDEX profile_aliases_profile ON profile_aliases(profile_id);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    unique_id TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    type TEXT NOT NULL,       -- track | identify
    name TEXT,                -- metric name (track)
    properties TEXT NOT NULL, -- JSON
    time INTEGER NOT NULL,
    value REAL, value_currency TEXT,
    route TEXT NOT NULL,      -- client | server | off
    profile_id INTEGER REFERENCES profiles(id),
    profile TEXT NOT NULL,    -- JSON: the identifiers and traits sent with the event
    received_at INTEGER NOT NULL
  );
  CREATE INDEX events_profile_name_time ON events(profile_id, name, time);
  CREATE INDEX events_name_time ON events(name, time);
  CREATE TABLE forward_outbox (
    event_id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    job_id TEXT,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX forward_outbox_due ON forward_outbox(status, next_attempt_at);
  `,
  // What the operator should know about an item that was delivered, e.g. an identity conflict Klaviyo reported
  // and how it was resolved.
  `ALTER TABLE forward_outbox ADD COLUMN note TEXT;`,
  // job_id was never written.
  `ALTER TABLE forward_outbox DROP COLUMN job_id;`,
];

/** The workflow toggles saved from the console: one row, the whole validated workflow as JSON. */
const WORKFLOW_MIGRATIONS = [
  `
  CREATE TABLE workflow_override (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    workflow TEXT NOT NULL,   -- JSON: {default?, events}
    updated_at INTEGER NOT NULL
  );
  `,
];

// The core tables on PostgreSQL: the same shape as the SQLite schema (store/db.ts), so segment SQL and tests read
// alike. Times are epoch milliseconds (BIGINT); JSON columns are JSONB. Append-only: add a step, never edit one.
import type { MigrationSet } from './migrate.js';

export const CORE_MIGRATIONS: MigrationSet = {
  module: 'core',
  steps: [
    `
    CREATE TABLE profiles (
      id BIGSERIAL PRIMARY KEY,
      email TEXT, phone_number TEXT, external_id TEXT, anonymous_id TEXT, kx TEXT,
      first_name TEXT, last_name TEXT, organization TEXT, title TEXT, locale TEXT, image TEXT,
      location JSONB,
      properties JSONB,
      first_seen BIGINT NOT NULL,
      last_seen BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    );
    CREATE TABLE profile_aliases (
      kind TEXT NOT NULL,       -- anonymous_id | email | phone_number | external_id
      value TEXT NOT NULL,
      profile_id BIGINT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
      PRIMARY KEY (kind, value)
    );
    CREATE INDEX profile_aliases_profile ON profile_aliases(profile_id);
    CREATE TABLE events (
      id BIGSERIAL PRIMARY KEY,
      unique_id TEXT NOT NULL UNIQUE,
      public_key TEXT NOT NULL,
      type TEXT NOT NULL,
      name TEXT,
      properties JSONB NOT NULL,
      time BIGINT NOT NULL,
      value DOUBLE PRECISION, value_currency TEXT,
      route TEXT NOT NULL,
      profile_id BIGINT REFERENCES profiles(id),
      profile JSONB NOT NULL,
      received_at BIGINT NOT NULL
    );
    CREATE INDEX events_profile_name_time ON events(profile_id, name, time);
    CREATE INDEX events_name_time ON events(name, time);
    -- claimed_by / lease_until: which instance is sending an inflight item, and until when its claim holds
    -- unless renewed. An expired claim (its holder died) is due again.
    CREATE TABLE forward_outbox (
      event_id BIGINT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
      status TEXT NOT NULL DEFAULT 'pending',
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at BIGINT NOT NULL DEFAULT 0,
      last_error TEXT,
      note TEXT,                -- delivered, with something the operator should know (e.g. an identity conflict)
      claimed_by TEXT,
      lease_until BIGINT,
      updated_at BIGINT NOT NULL
    );
    CREATE INDEX forward_outbox_pending ON forward_outbox(next_attempt_at, event_id) WHERE status = 'pending';
    CREATE INDEX forward_outbox_inflight ON forward_outbox(lease_until) WHERE status = 'inflight';
    CREATE INDEX forward_outbox_failed ON forward_outbox(event_id) WHERE status = 'failed';
    -- Stored events per name (identify under '$identify') and the newest event time, in slots (one per
    -- connection, modulo 64) so concurrent intakes never wait on one hot row; read as the sum over slots.
    CREATE TABLE event_name_counts (
      name TEXT NOT NULL,
      slot INTEGER NOT NULL,
      count BIGINT NOT NULL,
      last_seen_at BIGINT NOT NULL,
      PRIMARY KEY (name, slot)
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value JSONB NOT NULL, updated_at BIGINT NOT NULL);
    `,
  ],
};

// AudienceStore on PostgreSQL: the same tables as SQLite's, migrated as the `audiences` set through the
// versioned runner. Every value is a bound parameter. The run lease is one INSERT … ON CONFLICT … WHERE on the
// database's clock, so instances asking at the same moment get exactly one yes; segments stream through a
// server-side cursor on their own connection.
import Cursor from 'pg-cursor';
import type { Pool } from './pool.js';
import { inTransaction } from './pool.js';
import { runMigrations, type MigrationSet } from './migrate.js';
import { segmentQuery } from './segment.js';
import type {
  AudienceMembers, AudienceStore, LeftMember, MemberState, PendingConsent, RunLeases, RunRecord, RunRecords, SegmentProfile,
} from '../audience-types.js';

export const AUDIENCE_MIGRATIONS: MigrationSet = {
  module: 'audiences',
  steps: [
    `
    CREATE TABLE audience_definitions (name TEXT PRIMARY KEY, definition JSONB NOT NULL, updated_at BIGINT NOT NULL);
    -- The list a definition resolved to. A {create} list is remembered by name so it is made once.
    -- consent_settings: the settings consent was last applied with; a change re-applies it.
    CREATE TABLE audience_lists (
      audience TEXT PRIMARY KEY, list_spec TEXT NOT NULL, list_id TEXT NOT NULL, updated_at BIGINT NOT NULL, consent_settings TEXT
    );
    -- Diff state: one row per member Klaviyo confirmed on the list, with the hash of the payload it accepted.
    -- Keys sort bytewise (COLLATE "C") so batches page in the same order as on SQLite.
    CREATE TABLE audience_members (
      audience TEXT NOT NULL,
      member_key TEXT COLLATE "C" NOT NULL,
      hash TEXT NOT NULL,
      email TEXT, phone_number TEXT, external_id TEXT,
      consented_at TEXT,
      consent_pending BOOLEAN NOT NULL DEFAULT false,  -- a subscribe/unsubscribe call is still owed
      seen_run BIGINT NOT NULL,                        -- last run whose source contained the member
      left_at BIGINT,                                  -- removed from the list (remembered, not deleted)
      list_unsubscribed BOOLEAN NOT NULL DEFAULT false, -- Klaviyo took them off the list (list-level unsubscribe)
      PRIMARY KEY (audience, member_key)
    );
    CREATE INDEX audience_members_pending ON audience_members(audience, member_key) WHERE consent_pending;
    -- Import jobs Klaviyo accepted whose result is not yet folded into the diff state.
    CREATE TABLE audience_inflight_jobs (
      seq BIGSERIAL, job_id TEXT PRIMARY KEY, audience TEXT NOT NULL, list_id TEXT NOT NULL, members JSONB NOT NULL, created_at BIGINT NOT NULL
    );
    CREATE TABLE audience_runs (
      id BIGSERIAL PRIMARY KEY,
      audience TEXT NOT NULL,
      trigger TEXT NOT NULL,            -- manual | schedule | cli
      status TEXT NOT NULL,             -- running | success | partial | failed
      started_at BIGINT NOT NULL,
      ended_at BIGINT,
      list_id TEXT,
      counts JSONB NOT NULL,
      job_ids JSONB NOT NULL DEFAULT '[]',
      errors JSONB NOT NULL DEFAULT '[]',
      error TEXT
    );
    CREATE INDEX audience_runs_audience ON audience_runs(audience, id);
    CREATE TABLE audience_leases (audience TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL);
    `,
  ],
};

/** The database's clock in epoch milliseconds: every instance reads the same one. */
const DB_NOW = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;

function members(pool: Pool, audience: string): AudienceMembers {
  const rows = async <T extends object>(sql: string, params: unknown[]) => (await pool.query<T>(sql, params)).rows;
  return {
    get: async (key) =>
      (await rows<MemberState>('SELECT hash, email, phone_number, external_id, left_at, list_unsubscribed FROM audience_members WHERE audience = $1 AND member_key = $2', [audience, key]))[0],
    getMany: async (keys) => {
      const out = new Map<string, MemberState>();
      if (!keys.length) return out;
      const found = await rows<MemberState & { member_key: string }>(
        'SELECT member_key, hash, email, phone_number, external_id, left_at, list_unsubscribed FROM audience_members WHERE audience = $1 AND member_key = ANY($2::text[])',
        [audience, keys],
      );
      for (const { member_key, ...state } of found) out.set(member_key, state);
      return out;
    },
    touchMany: async (keys, run, owesConsent = false) => {
      if (keys.length) {
        await pool.query('UPDATE audience_members SET seen_run = $1, consent_pending = consent_pending OR $4 WHERE audience = $2 AND member_key = ANY($3::text[])', [
          run, audience, keys, owesConsent,
        ]);
      }
    },
    recordInflight: async (jobId, listId, sent) => {
      await pool.query('INSERT INTO audience_inflight_jobs (job_id, audience, list_id, members, created_at) VALUES ($1, $2, $3, $4::jsonb, $5)', [
        jobId, audience, listId, JSON.stringify(sent), Date.now(),
      ]);
    },
    inflight: async () =>
      (await rows<{ job_id: string; list_id: string; members: InflightMembers }>(
        'SELECT job_id, list_id, members FROM audience_inflight_jobs WHERE audience = $1 ORDER BY created_at, seq',
        [audience],
      )).map((r) => ({ jobId: r.job_id, listId: r.list_id, members: r.members })),
    commitJob: (jobId, rejected, run, touched) =>
      inTransaction(pool, async (client) => {
        if (jobId) {
          // Confirmed members come straight from the in-flight job's JSON, minus the ones Klaviyo rejected: one
          // statement per job instead of one per member. A consent debt already owed is kept.
          await client.query(
            `INSERT INTO audience_members (audience, member_key, hash, email, phone_number, external_id, consented_at, consent_pending, seen_run)
             SELECT DISTINCT ON (m ->> 'key') $1, m ->> 'key', m ->> 'hash', m ->> 'email', m ->> 'phone_number', m ->> 'external_id',
               m ->> 'consented_at', coalesce((m ->> 'consent')::boolean, false), $2
             FROM audience_inflight_jobs j, jsonb_array_elements(j.members) WITH ORDINALITY AS t(m, n)
             WHERE j.job_id = $3 AND NOT ((m ->> 'key') = ANY($4::text[]))
             ORDER BY m ->> 'key', n DESC
             ON CONFLICT (audience, member_key) DO UPDATE SET hash = excluded.hash, email = excluded.email,
               phone_number = excluded.phone_number, external_id = excluded.external_id, consented_at = excluded.consented_at,
               consent_pending = audience_members.consent_pending OR excluded.consent_pending, seen_run = excluded.seen_run, left_at = NULL,
               list_unsubscribed = false`,
            [audience, run, jobId, rejected],
          );
        }
        if (touched.length) {
          await client.query('UPDATE audience_members SET seen_run = $1 WHERE audience = $2 AND member_key = ANY($3::text[])', [run, audience, touched]);
        }
        if (jobId) await client.query('DELETE FROM audience_inflight_jobs WHERE job_id = $1', [jobId]);
      }),
    pendingConsent: (limit) =>
      rows<PendingConsent>(
        'SELECT member_key, email, phone_number, consented_at FROM audience_members WHERE audience = $1 AND consent_pending ORDER BY member_key LIMIT $2',
        [audience, limit],
      ),
    settleConsent: async (keys, unsubscribedFromList) => {
      if (keys.length) {
        await pool.query(
          'UPDATE audience_members SET consent_pending = false, list_unsubscribed = (member_key = ANY($3::text[])) WHERE audience = $1 AND member_key = ANY($2::text[])',
          [audience, keys, unsubscribedFromList],
        );
      }
    },
    leftMembers: (run, limit) =>
      rows<LeftMember>(
        'SELECT member_key, email, phone_number, external_id, list_unsubscribed FROM audience_members WHERE audience = $1 AND seen_run <> $2 AND left_at IS NULL ORDER BY member_key LIMIT $3',
        [audience, run, limit],
      ),
    countLeft: async (run) =>
      (await rows<{ n: number }>('SELECT count(*) AS n FROM audience_members WHERE audience = $1 AND seen_run <> $2 AND left_at IS NULL', [audience, run]))[0].n,
    countMembers: async () =>
      (await rows<{ n: number }>('SELECT count(*) AS n FROM audience_members WHERE audience = $1 AND left_at IS NULL', [audience]))[0].n,
    markLeft: async (keys, at = Date.now()) => {
      if (keys.length) {
        await pool.query('UPDATE audience_members SET left_at = $1, consent_pending = false WHERE audience = $2 AND member_key = ANY($3::text[])', [at, audience, keys]);
      }
    },
    consentSettings: async () =>
      (await rows<{ consent_settings: string | null }>('SELECT consent_settings FROM audience_lists WHERE audience = $1', [audience]))[0]?.consent_settings ?? undefined,
    rememberConsentSettings: async (settings) => {
      await pool.query('UPDATE audience_lists SET consent_settings = $1 WHERE audience = $2', [settings, audience]);
    },
    rememberedList: async (spec) =>
      (await rows<{ list_id: string }>('SELECT list_id FROM audience_lists WHERE audience = $1 AND list_spec = $2', [audience, spec]))[0]?.list_id,
    rememberList: (spec, listId) =>
      inTransaction(pool, async (client) => {
        // Locked so a concurrent change of list cannot interleave with the reset.
        const before = (await client.query<{ list_id: string }>('SELECT list_id FROM audience_lists WHERE audience = $1 FOR UPDATE', [audience])).rows[0]?.list_id;
        if (before !== undefined && before !== listId) {
          await client.query('DELETE FROM audience_members WHERE audience = $1', [audience]);
          await client.query('DELETE FROM audience_inflight_jobs WHERE audience = $1', [audience]);
        }
        await client.query(
          `INSERT INTO audience_lists (audience, list_spec, list_id, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (audience) DO UPDATE SET list_spec = excluded.list_spec, list_id = excluded.list_id, updated_at = excluded.updated_at`,
          [audience, spec, listId, Date.now()],
        );
      }),
  };
}

type InflightMembers = Awaited<ReturnType<AudienceMembers['inflight']>>[number]['members'];

function runs(pool: Pool): RunRecords {
  return {
    start: async (audience, trigger, startedAt, counts) =>
      (await pool.query<{ id: number }>("INSERT INTO audience_runs (audience, trigger, status, started_at, counts) VALUES ($1, $2, 'running', $3, $4::jsonb) RETURNING id", [
        audience, trigger, startedAt, JSON.stringify(counts),
      ])).rows[0].id,
    update: async (id, f) => {
      await pool.query(
        `UPDATE audience_runs SET status = coalesce($1, status), ended_at = coalesce($2, ended_at), list_id = coalesce($3, list_id),
           counts = $4::jsonb, job_ids = $5::jsonb, errors = $6::jsonb, error = coalesce($7, error) WHERE id = $8`,
        [f.status ?? null, f.endedAt ?? null, f.listId ?? null, JSON.stringify(f.counts), JSON.stringify(f.jobIds), JSON.stringify(f.errors), f.error ?? null, id],
      );
    },
    get: async (id) => (await pool.query<RunRecord>('SELECT * FROM audience_runs WHERE id = $1', [id])).rows[0],
    list: async (audience, limit) => (await pool.query<RunRecord>('SELECT * FROM audience_runs WHERE audience = $1 ORDER BY id DESC LIMIT $2', [audience, limit])).rows,
    closeAbandoned: async (audience, error, endedAt, exceptId) => {
      await pool.query("UPDATE audience_runs SET status = 'failed', ended_at = $1, error = $2 WHERE audience = $3 AND status = 'running' AND id <> $4", [
        endedAt, error, audience, exceptId ?? -1,
      ]);
    },
  };
}

function leases(pool: Pool): RunLeases {
  return {
    // Concurrent inserts of one audience serialise on its row; the loser then meets the WHERE against the
    // winner's committed lease and gets no row back.
    acquire: async (audience, owner, ttlMs) =>
      (await pool.query(
        `INSERT INTO audience_leases (audience, owner, expires_at) VALUES ($1, $2, ${DB_NOW} + $3::bigint)
         ON CONFLICT (audience) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE audience_leases.owner = excluded.owner OR audience_leases.expires_at <= ${DB_NOW}
         RETURNING 1`,
        [audience, owner, Math.round(ttlMs)],
      )).rowCount === 1,
    renew: async (audience, owner, ttlMs) =>
      (await pool.query(`UPDATE audience_leases SET expires_at = ${DB_NOW} + $1::bigint WHERE audience = $2 AND owner = $3`, [Math.round(ttlMs), audience, owner])).rowCount === 1,
    release: async (audience, owner) => {
      await pool.query('DELETE FROM audience_leases WHERE audience = $1 AND owner = $2', [audience, owner]);
    },
    heldUntil: async (audience) => (await pool.query<{ expires_at: number }>('SELECT expires_at FROM audience_leases WHERE audience = $1', [audience])).rows[0]?.expires_at,
  };
}

/** Rows fetched per cursor read: memory stays at one batch whatever the segment's size. */
const SEGMENT_BATCH = 1000;

async function* streamSegment(pool: Pool, rule: Parameters<AudienceStore['segment']>[0], now: number): AsyncGenerator<SegmentProfile> {
  const q = segmentQuery(rule, now);
  const client = await pool.connect();
  const cursor = client.query(new Cursor<SegmentProfile>(q.sql, q.params));
  let broken = false;
  try {
    for (;;) {
      const batch = await cursor.read(SEGMENT_BATCH);
      for (const row of batch) yield { ...row, location: row.location ?? {}, properties: row.properties ?? {} };
      if (batch.length < SEGMENT_BATCH) return;
    }
  } catch (err) {
    broken = true;
    throw err;
  } finally {
    await cursor.close().catch(() => {
      broken = true;
    });
    client.release(broken || undefined);
  }
}

/** The audience store on `pool`, after applying the audience migrations (under the migration lock). */
export async function openPostgresAudienceStore(pool: Pool): Promise<AudienceStore> {
  await runMigrations(pool, [AUDIENCE_MIGRATIONS]);
  return createPostgresAudienceStore(pool);
}

/** The audience store on `pool`; the caller has applied AUDIENCE_MIGRATIONS. */
export function createPostgresAudienceStore(pool: Pool): AudienceStore {
  return {
    savedDefinitions: async () =>
      (await pool.query<{ name: string; definition: unknown }>('SELECT name, definition FROM audience_definitions ORDER BY name')).rows,
    saveDefinition: async (name, definition) => {
      await pool.query(
        `INSERT INTO audience_definitions (name, definition, updated_at) VALUES ($1, $2::jsonb, $3)
         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at`,
        [name, JSON.stringify(definition), Date.now()],
      );
    },
    members: (audience) => members(pool, audience),
    runs: runs(pool),
    leases: leases(pool),
    segment: (rule, now) => streamSegment(pool, rule, now),
  };
}

// The audience module's own tables: saved definitions, resolved lists, the per-member diff state (what Klaviyo
// has confirmed), import jobs in flight (for resume), run logs and the cross-process run lease.
import type { Db } from '../store/db.js';
import { applyMigrations } from '../store/db.js';

const MIGRATIONS = [
  `
  CREATE TABLE audience_definitions (name TEXT PRIMARY KEY, definition TEXT NOT NULL, updated_at INTEGER NOT NULL);
  -- The list a definition resolved to. A {create} list is remembered by name so it is made once.
  CREATE TABLE audience_lists (audience TEXT PRIMARY KEY, list_spec TEXT NOT NULL, list_id TEXT NOT NULL, updated_at INTEGER NOT NULL);
  -- Diff state: one row per member Klaviyo confirmed on the list, with the hash of the payload it accepted.
  CREATE TABLE audience_members (
    audience TEXT NOT NULL,
    member_key TEXT NOT NULL,
    hash TEXT NOT NULL,
    email TEXT, phone_number TEXT, external_id TEXT,
    consented_at TEXT,
    consent_pending INTEGER NOT NULL DEFAULT 0,   -- 1: subscribe/unsubscribe call still owed
    seen_run INTEGER NOT NULL,                    -- last run whose source contained the member
    PRIMARY KEY (audience, member_key)
  ) WITHOUT ROWID;
  CREATE INDEX audience_members_pending ON audience_members(audience) WHERE consent_pending = 1;
  -- Import jobs Klaviyo accepted whose result is not yet folded into the diff state.
  CREATE TABLE audience_inflight_jobs (
    job_id TEXT PRIMARY KEY, audience TEXT NOT NULL, list_id TEXT NOT NULL, members TEXT NOT NULL, created_at INTEGER NOT NULL
  );
  CREATE TABLE audience_runs (
    id INTEGER PRIMARY KEY,
    audience TEXT NOT NULL,
    trigger TEXT NOT NULL,            -- manual | schedule | cli
    status TEXT NOT NULL,             -- running | success | partial | failed
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    list_id TEXT,
    counts TEXT NOT NULL,
    job_ids TEXT NOT NULL DEFAULT '[]',
    errors TEXT NOT NULL DEFAULT '[]',
    error TEXT
  );
  CREATE INDEX audience_runs_audience ON audience_runs(audience, id);
  CREATE TABLE audience_leases (audience TEXT PRIMARY KEY, owner TEXT NOT NULL, run_id INTEGER, expires_at INTEGER NOT NULL);
  `,
  // Members removed from the list are remembered (left_at set) rather than deleted: if they come back they are
  // added to the list again, but a subscribe call never goes out a second time for the same address.
  `ALTER TABLE audience_members ADD COLUMN left_at INTEGER;`,
  // list_unsubscribed: Klaviyo took the member off the list by a list-level unsubscribe, so reruns and removals
  // leave them alone. consent_settings: the settings consent was last applied with; a change re-applies it.
  `ALTER TABLE audience_members ADD COLUMN list_unsubscribed INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE audience_lists ADD COLUMN consent_settings TEXT;`,
];

/** A transaction as a plain function (keeps better-sqlite3's Transaction type out of declarations). */
function tx<A extends unknown[]>(db: Db, fn: (...args: A) => void): (...args: A) => void {
  const run = db.transaction(fn);
  return (...args: A) => run(...args);
}

export function migrateAudiences(db: Db): void {
  applyMigrations(db, 'audiences', MIGRATIONS);
}

export interface MemberState {
  hash: string;
  /** Set when the member was removed from the list (it left the source). */
  left_at: number | null;
  /** 1: Klaviyo took the member off the list by a list-level unsubscribe. */
  list_unsubscribed: number;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
}

/** A member as sent in an import job, enough to commit its state once Klaviyo confirms it. */
export interface SentMember {
  key: string;
  hash: string;
  email?: string;
  phone_number?: string;
  external_id?: string;
  consented_at?: string;
  /** Owes a consent call once confirmed: new to the list or its identifiers changed. */
  consent: boolean;
}

export interface PendingConsent {
  member_key: string;
  email: string | null;
  phone_number: string | null;
  consented_at: string | null;
}

export interface LeftMember {
  member_key: string;
  list_unsubscribed: number;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
}

/** Prepared statements over the audience tables, scoped to one audience. */
export function audienceState(db: Db, audience: string) {
  const getMember = db.prepare<[string, string], MemberState>(
    'SELECT hash, email, phone_number, external_id, left_at, list_unsubscribed FROM audience_members WHERE audience = ? AND member_key = ?',
  );
  const touch = db.prepare('UPDATE audience_members SET seen_run = ?, consent_pending = max(consent_pending, ?) WHERE audience = ? AND member_key IN (SELECT value FROM json_each(?))');
  // Confirmed members come straight from the in-flight job's JSON, minus the ones Klaviyo rejected: one
  // statement per job instead of one per member.
  const commitFromJob = db.prepare(`
    INSERT INTO audience_members (audience, member_key, hash, email, phone_number, external_id, consented_at, consent_pending, seen_run)
    SELECT ?, m.value ->> 'key', m.value ->> 'hash', m.value ->> 'email', m.value ->> 'phone_number', m.value ->> 'external_id',
      m.value ->> 'consented_at', coalesce(m.value ->> 'consent', 0), ?
    FROM audience_inflight_jobs j, json_each(j.members) m
    WHERE j.job_id = ? AND (m.value ->> 'key') NOT IN (SELECT value FROM json_each(?))
    ON CONFLICT (audience, member_key) DO UPDATE SET hash = excluded.hash, email = excluded.email,
      phone_number = excluded.phone_number, external_id = excluded.external_id, consented_at = excluded.consented_at,
      consent_pending = max(consent_pending, excluded.consent_pending), seen_run = excluded.seen_run, left_at = NULL,
      list_unsubscribed = 0`);
  const insertJob = db.prepare('INSERT INTO audience_inflight_jobs (job_id, audience, list_id, members, created_at) VALUES (?, ?, ?, ?, ?)');
  const deleteJob = db.prepare('DELETE FROM audience_inflight_jobs WHERE job_id = ?');
  const settlePending = db.prepare('UPDATE audience_members SET consent_pending = 0, list_unsubscribed = ? WHERE audience = ? AND member_key = ?');
  const markLeft = db.prepare('UPDATE audience_members SET left_at = ?, consent_pending = 0 WHERE audience = ? AND member_key = ?');

  const getMany = db.prepare<[string, string], MemberState & { member_key: string }>(
    'SELECT member_key, hash, email, phone_number, external_id, left_at, list_unsubscribed FROM audience_members WHERE audience = ? AND member_key IN (SELECT value FROM json_each(?))',
  );

  return {
    get: (key: string) => getMember.get(audience, key),

    /** State of many members in one query (one read transaction instead of one per member). */
    getMany: (keys: string[]): Map<string, MemberState> => {
      const out = new Map<string, MemberState>();
      for (const row of getMany.all(audience, JSON.stringify(keys))) out.set(row.member_key, row);
      return out;
    },

    /** Mark unchanged members as still in the source (and, with `owesConsent`, owed a consent call again). */
    touchMany: (keys: string[], run: number, owesConsent = false) => {
      if (keys.length) touch.run(run, owesConsent ? 1 : 0, audience, JSON.stringify(keys));
    },

    /** Record a job Klaviyo accepted, so a killed run can fold in its result instead of importing again. */
    recordInflight: (jobId: string, listId: string, members: SentMember[]) =>
      insertJob.run(jobId, audience, listId, JSON.stringify(members), Date.now()),

    inflight: () =>
      db
        .prepare<[string], { job_id: string; list_id: string; members: string }>('SELECT job_id, list_id, members FROM audience_inflight_jobs WHERE audience = ? ORDER BY created_at')
        .all(audience)
        .map((r) => ({ jobId: r.job_id, listId: r.list_id, members: JSON.parse(r.members) as SentMember[] })),

    /**
     * Fold a confirmed job into the diff state: its members except `rejected` get the hash Klaviyo accepted,
     * `touched` are marked as seen, and the job leaves the in-flight set, all in one transaction.
     */
    commitJob: tx(db, (jobId: string, rejected: string[], run: number, touched: string[]) => {
      commitFromJob.run(audience, run, jobId, JSON.stringify(rejected));
      if (touched.length) touch.run(run, 0, audience, JSON.stringify(touched));
      deleteJob.run(jobId);
    }),

    /** Up to `limit` members still owed a consent call. */
    pendingConsent: (limit: number) =>
      db
        .prepare<[string, number], PendingConsent>('SELECT member_key, email, phone_number, consented_at FROM audience_members WHERE audience = ? AND consent_pending = 1 ORDER BY member_key LIMIT ?')
        .all(audience, limit),

    /** Consent settled for `keys`; those in `unsubscribedFromList` are now off the list by Klaviyo's doing. */
    settleConsent: tx(db, (keys: string[], unsubscribedFromList: string[]) => {
      const offList = new Set(unsubscribedFromList);
      for (const key of keys) settlePending.run(offList.has(key) ? 1 : 0, audience, key);
    }),

    /** Up to `limit` members on the list that this run's source no longer contains. */
    leftMembers: (run: number, limit: number) =>
      db
        .prepare<[string, number, number], LeftMember>('SELECT member_key, email, phone_number, external_id, list_unsubscribed FROM audience_members WHERE audience = ? AND seen_run <> ? AND left_at IS NULL ORDER BY member_key LIMIT ?')
        .all(audience, run, limit),

    countLeft: (run: number) =>
      (db.prepare('SELECT count(*) FROM audience_members WHERE audience = ? AND seen_run <> ? AND left_at IS NULL').pluck().get(audience, run) as number),

    /** Members currently on the list. */
    countMembers: () => db.prepare('SELECT count(*) FROM audience_members WHERE audience = ? AND left_at IS NULL').pluck().get(audience) as number,

    /** Removed from the list: remembered as having left, so a return is not a fresh consent. */
    markLeft: tx(db, (keys: string[]) => {
      const now = Date.now();
      for (const key of keys) markLeft.run(now, audience, key);
    }),

    /** The consent settings last applied to this audience's members (undefined before the first run). */
    consentSettings: () =>
      db.prepare<[string], { consent_settings: string | null }>('SELECT consent_settings FROM audience_lists WHERE audience = ?').get(audience)?.consent_settings ?? undefined,

    rememberConsentSettings: (settings: string) =>
      db.prepare('UPDATE audience_lists SET consent_settings = ? WHERE audience = ?').run(settings, audience),

    /** The list id resolved for this list spec before, if any. */
    rememberedList: (spec: string) =>
      db.prepare<[string, string], { list_id: string }>('SELECT list_id FROM audience_lists WHERE audience = ? AND list_spec = ?').get(audience, spec)?.list_id,

    /**
     * Remember the resolved list. A different list than before starts a fresh diff state: the members
     * confirmed on the old list say nothing about the new one.
     */
    rememberList: tx(db, (spec: string, listId: string) => {
      const before = db.prepare<[string], { list_id: string }>('SELECT list_id FROM audience_lists WHERE audience = ?').get(audience)?.list_id;
      if (before !== undefined && before !== listId) {
        db.prepare('DELETE FROM audience_members WHERE audience = ?').run(audience);
        db.prepare('DELETE FROM audience_inflight_jobs WHERE audience = ?').run(audience);
      }
      db.prepare(
        'INSERT INTO audience_lists (audience, list_spec, list_id, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (audience) DO UPDATE SET list_spec = excluded.list_spec, list_id = excluded.list_id, updated_at = excluded.updated_at',
      ).run(audience, spec, listId, Date.now());
    }),
  };
}

export type AudienceState = ReturnType<typeof audienceState>;

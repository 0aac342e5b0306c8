// AudienceStore on the embedded SQLite database: the audience module's own tables, migrated as the `audiences`
// set. better-sqlite3 is synchronous; the async interface is what lets PostgreSQL replace it.
import type { Db } from './db.js';
import { applyMigrations } from './db.js';
import type {
  AudienceMembers, AudienceStore, InflightJob, LeftMember, MemberState, PendingConsent, RunRecord, RunRecords, RunLeases,
} from './audience-types.js';
import { streamSegment } from './sqlite-segment.js';

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

/** SQLite keeps booleans as 0/1. */
type Flagged<T> = Omit<T, 'list_unsubscribed'> & { list_unsubscribed: number };
const unflag = <T extends { list_unsubscribed: number }>(row: T) => ({ ...row, list_unsubscribed: row.list_unsubscribed === 1 });

/** A transaction as a plain function (keeps better-sqlite3's Transaction type out of declarations). */
function tx<A extends unknown[]>(db: Db, fn: (...args: A) => void): (...args: A) => void {
  const run = db.transaction(fn);
  return (...args: A) => run(...args);
}

function members(db: Db, audience: string): AudienceMembers {
  const getMember = db.prepare<[string, string], Flagged<MemberState>>(
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
  const settle = db.prepare(`UPDATE audience_members SET consent_pending = 0,
    list_unsubscribed = (member_key IN (SELECT value FROM json_each(?))) WHERE audience = ? AND member_key IN (SELECT value FROM json_each(?))`);
  const markLeft = db.prepare('UPDATE audience_members SET left_at = ?, consent_pending = 0 WHERE audience = ? AND member_key IN (SELECT value FROM json_each(?))');
  const getMany = db.prepare<[string, string], Flagged<MemberState> & { member_key: string }>(
    'SELECT member_key, hash, email, phone_number, external_id, left_at, list_unsubscribed FROM audience_members WHERE audience = ? AND member_key IN (SELECT value FROM json_each(?))',
  );
  const inflight = db.prepare<[string], { job_id: string; list_id: string; members: string }>(
    'SELECT job_id, list_id, members FROM audience_inflight_jobs WHERE audience = ? ORDER BY created_at, rowid',
  );
  const pending = db.prepare<[string, number], PendingConsent>(
    'SELECT member_key, email, phone_number, consented_at FROM audience_members WHERE audience = ? AND consent_pending = 1 ORDER BY member_key LIMIT ?',
  );
  const left = db.prepare<[string, number, number], Flagged<LeftMember>>(
    'SELECT member_key, email, phone_number, external_id, list_unsubscribed FROM audience_members WHERE audience = ? AND seen_run <> ? AND left_at IS NULL ORDER BY member_key LIMIT ?',
  );
  const countLeft = db.prepare('SELECT count(*) FROM audience_members WHERE audience = ? AND seen_run <> ? AND left_at IS NULL').pluck();
  const countMembers = db.prepare('SELECT count(*) FROM audience_members WHERE audience = ? AND left_at IS NULL').pluck();
  const listFor = db.prepare<[string], { list_id: string; list_spec: string; consent_settings: string | null }>(
    'SELECT list_id, list_spec, consent_settings FROM audience_lists WHERE audience = ?',
  );
  const rememberSettings = db.prepare('UPDATE audience_lists SET consent_settings = ? WHERE audience = ?');

  const commitJob = tx(db, (jobId: string, rejected: string[], run: number, touched: string[]) => {
    if (jobId) commitFromJob.run(audience, run, jobId, JSON.stringify(rejected));
    if (touched.length) touch.run(run, 0, audience, JSON.stringify(touched));
    if (jobId) deleteJob.run(jobId);
  });
  const rememberList = tx(db, (spec: string, listId: string) => {
    const before = listFor.get(audience)?.list_id;
    if (before !== undefined && before !== listId) {
      db.prepare('DELETE FROM audience_members WHERE audience = ?').run(audience);
      db.prepare('DELETE FROM audience_inflight_jobs WHERE audience = ?').run(audience);
    }
    db.prepare(
      'INSERT INTO audience_lists (audience, list_spec, list_id, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (audience) DO UPDATE SET list_spec = excluded.list_spec, list_id = excluded.list_id, updated_at = excluded.updated_at',
    ).run(audience, spec, listId, Date.now());
  });

  return {
    get: async (key) => {
      const row = getMember.get(audience, key);
      return row && unflag(row);
    },
    getMany: async (keys) => {
      const out = new Map<string, MemberState>();
      for (const { member_key, ...row } of getMany.all(audience, JSON.stringify(keys))) out.set(member_key, unflag(row));
      return out;
    },
    touchMany: async (keys, run, owesConsent = false) => {
      if (keys.length) touch.run(run, owesConsent ? 1 : 0, audience, JSON.stringify(keys));
    },
    recordInflight: async (jobId, listId, sent) => {
      insertJob.run(jobId, audience, listId, JSON.stringify(sent), Date.now());
    },
    inflight: async (): Promise<InflightJob[]> =>
      inflight.all(audience).map((r) => ({ jobId: r.job_id, listId: r.list_id, members: JSON.parse(r.members) })),
    commitJob: async (jobId, rejected, run, touched) => commitJob(jobId, rejected, run, touched),
    pendingConsent: async (limit) => pending.all(audience, limit),
    settleConsent: async (keys, unsubscribedFromList) => {
      if (keys.length) settle.run(JSON.stringify(unsubscribedFromList), audience, JSON.stringify(keys));
    },
    leftMembers: async (run, limit) => left.all(audience, run, limit).map(unflag),
    countLeft: async (run) => countLeft.get(audience, run) as number,
    countMembers: async () => countMembers.get(audience) as number,
    markLeft: async (keys, at = Date.now()) => {
      if (keys.length) markLeft.run(at, audience, JSON.stringify(keys));
    },
    consentSettings: async () => listFor.get(audience)?.consent_settings ?? undefined,
    rememberConsentSettings: async (settings) => {
      rememberSettings.run(settings, audience);
    },
    rememberedList: async (spec) => {
      const row = listFor.get(audience);
      return row?.list_spec === spec ? row.list_id : undefined;
    },
    rememberList: async (spec, listId) => rememberList(spec, listId),
  };
}

type RunRow = Omit<RunRecord, 'counts' | 'job_ids' | 'errors'> & { counts: string; job_ids: string; errors: string };

const toRecord = (row: RunRow): RunRecord => ({
  ...row,
  counts: JSON.parse(row.counts),
  job_ids: JSON.parse(row.job_ids),
  errors: JSON.parse(row.errors),
});

function runs(db: Db): RunRecords {
  const insert = db.prepare("INSERT INTO audience_runs (audience, trigger, status, started_at, counts) VALUES (?, ?, 'running', ?, ?)");
  const update = db.prepare(
    'UPDATE audience_runs SET status = coalesce(?, status), ended_at = coalesce(?, ended_at), list_id = coalesce(?, list_id), counts = ?, job_ids = ?, errors = ?, error = coalesce(?, error) WHERE id = ?',
  );
  const get = db.prepare<[number], RunRow>('SELECT * FROM audience_runs WHERE id = ?');
  const list = db.prepare<[string, number], RunRow>('SELECT * FROM audience_runs WHERE audience = ? ORDER BY id DESC LIMIT ?');
  const abandon = db.prepare("UPDATE audience_runs SET status = 'failed', ended_at = ?, error = ? WHERE audience = ? AND status = 'running' AND id <> ?");
  return {
    start: async (audience, trigger, startedAt, counts) => Number(insert.run(audience, trigger, startedAt, JSON.stringify(counts)).lastInsertRowid),
    update: async (id, f) => {
      update.run(f.status ?? null, f.endedAt ?? null, f.listId ?? null, JSON.stringify(f.counts), JSON.stringify(f.jobIds), JSON.stringify(f.errors), f.error ?? null, id);
    },
    get: async (id) => {
      const row = get.get(id);
      return row && toRecord(row);
    },
    list: async (audience, limit) => list.all(audience, limit).map(toRecord),
    closeAbandoned: async (audience, error, endedAt, exceptId) => {
      abandon.run(endedAt, error, audience, exceptId ?? -1);
    },
  };
}

function leases(db: Db): RunLeases {
  // One statement: the row is written only when it is free, lapsed or already ours, so two connections asking
  // at once cannot both succeed (SQLite serialises writers; the WHERE decides).
  const acquire = db.prepare(`INSERT INTO audience_leases (audience, owner, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (audience) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE audience_leases.owner = excluded.owner OR audience_leases.expires_at <= ?`);
  const renew = db.prepare('UPDATE audience_leases SET expires_at = ? WHERE audience = ? AND owner = ?');
  const release = db.prepare('DELETE FROM audience_leases WHERE audience = ? AND owner = ?');
  const heldUntil = db.prepare('SELECT expires_at FROM audience_leases WHERE audience = ?').pluck();
  return {
    acquire: async (audience, owner, ttlMs) => {
      const now = Date.now();
      return acquire.run(audience, owner, now + ttlMs, now).changes === 1;
    },
    renew: async (audience, owner, ttlMs) => renew.run(Date.now() + ttlMs, audience, owner).changes === 1,
    release: async (audience, owner) => {
      release.run(audience, owner);
    },
    heldUntil: async (audience) => heldUntil.get(audience) as number | undefined,
  };
}

export function createSqliteAudienceStore(db: Db): AudienceStore {
  applyMigrations(db, 'audiences', MIGRATIONS);
  const saved = db.prepare<[], { name: string; definition: string }>('SELECT name, definition FROM audience_definitions ORDER BY name');
  const save = db.prepare('INSERT INTO audience_definitions (name, definition, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at');
  return {
    savedDefinitions: async () => saved.all().map((r) => ({ name: r.name, definition: JSON.parse(r.definition) })),
    saveDefinition: async (name, definition) => {
      save.run(name, JSON.stringify(definition), Date.now());
    },
    members: (audience) => members(db, audience),
    runs: runs(db),
    leases: leases(db),
    segment: (rule, now) => streamSegment(db, rule, now),
  };
}

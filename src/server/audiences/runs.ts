// Run log rows (SPEC §3 step 9) and the run lease that keeps two processes from syncing one audience at once.
import { randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';

export const COUNT_NAMES = [
  'read', 'skipped_anonymous', 'invalid', 'invalid_fields', 'unchanged', 'imported', 'subscribed', 'unsubscribed', 'removed', 'failed',
] as const;
export type CountName = (typeof COUNT_NAMES)[number];
export type Counts = Record<CountName, number>;
export const emptyCounts = (): Counts => Object.fromEntries(COUNT_NAMES.map((n) => [n, 0])) as Counts;

export type RunStatus = 'running' | 'success' | 'partial' | 'failed';

export interface MemberError {
  /** The member (its key: external id, email, phone or store profile), when the error concerns one. */
  member?: string;
  stage: 'source' | 'validate' | 'import' | 'subscribe' | 'unsubscribe' | 'remove' | 'list' | 'run';
  detail: string;
  jobId?: string;
  /** Klaviyo profiles involved, e.g. the ones holding a member's identifiers when Klaviyo refused to merge them. */
  profile_ids?: string[];
}

export interface RunLog {
  id: number;
  audience: string;
  trigger: string;
  status: RunStatus;
  started_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  list_id: string | null;
  counts: Counts;
  job_ids: string[];
  errors: MemberError[];
  /** How many errors were not kept (the log keeps the first MAX_LOGGED_ERRORS). */
  errors_omitted: number;
  error: string | null;
}

/** A run with a million failures must not write a million-entry log row. */
export const MAX_LOGGED_ERRORS = 1_000;

type RunRow = {
  id: number; audience: string; trigger: string; status: RunStatus; started_at: number; ended_at: number | null;
  list_id: string | null; counts: string; job_ids: string; errors: string; error: string | null;
};

function toLog(row: RunRow): RunLog {
  const stored = JSON.parse(row.errors) as { items: MemberError[]; omitted: number } | MemberError[];
  const items = Array.isArray(stored) ? stored : stored.items;
  return {
    id: row.id,
    audience: row.audience,
    trigger: row.trigger,
    status: row.status,
    started_at: new Date(row.started_at).toISOString(),
    ended_at: row.ended_at === null ? null : new Date(row.ended_at).toISOString(),
    duration_ms: row.ended_at === null ? null : row.ended_at - row.started_at,
    list_id: row.list_id,
    counts: { ...emptyCounts(), ...JSON.parse(row.counts) },
    job_ids: JSON.parse(row.job_ids),
    errors: items,
    errors_omitted: Array.isArray(stored) ? 0 : stored.omitted,
    error: row.error,
  };
}

export function runLogStore(db: Db) {
  return {
    start(audience: string, trigger: string): number {
      return Number(
        db.prepare("INSERT INTO audience_runs (audience, trigger, status, started_at, counts) VALUES (?, ?, 'running', ?, ?)")
          .run(audience, trigger, Date.now(), JSON.stringify(emptyCounts())).lastInsertRowid,
      );
    },
    /** Progress or the final row. */
    update(id: number, fields: { status?: RunStatus; ended?: boolean; listId?: string; counts: Counts; jobIds: string[]; errors: MemberError[]; errorsOmitted: number; error?: string }) {
      db.prepare(
        'UPDATE audience_runs SET status = coalesce(?, status), ended_at = coalesce(?, ended_at), list_id = coalesce(?, list_id), counts = ?, job_ids = ?, errors = ?, error = coalesce(?, error) WHERE id = ?',
      ).run(
        fields.status ?? null, fields.ended ? Date.now() : null, fields.listId ?? null, JSON.stringify(fields.counts),
        JSON.stringify(fields.jobIds), JSON.stringify({ items: fields.errors, omitted: fields.errorsOmitted }), fields.error ?? null, id,
      );
    },
    get(id: number): RunLog | undefined {
      const row = db.prepare<[number], RunRow>('SELECT * FROM audience_runs WHERE id = ?').get(id);
      return row && toLog(row);
    },
    /** Newest first. */
    list(audience: string, limit = 50): RunLog[] {
      return db.prepare<[string, number], RunRow>('SELECT * FROM audience_runs WHERE audience = ? ORDER BY id DESC LIMIT ?').all(audience, limit).map(toLog);
    },
    /** Rows left `running` by a process that died: they end as failed, so the log never shows a ghost run. */
    closeAbandoned(audience: string, exceptId?: number) {
      db.prepare("UPDATE audience_runs SET status = 'failed', ended_at = ?, error = 'interrupted: the process stopped during the run; the next run resumes it' WHERE audience = ? AND status = 'running' AND id <> ?")
        .run(Date.now(), audience, exceptId ?? -1);
    },
  };
}

export type RunLogStore = ReturnType<typeof runLogStore>;

/** Lease of one audience's run across processes; renewed while the run lives, taken over once expired. */
export function createLease(db: Db, audience: string, ttlMs = 60_000) {
  const owner = randomUUID();
  return {
    owner,
    /** True when this owner now holds the lease. */
    acquire: (): boolean =>
      db.transaction(() => {
        const now = Date.now();
        const row = db.prepare<[string], { owner: string; expires_at: number }>('SELECT owner, expires_at FROM audience_leases WHERE audience = ?').get(audience);
        if (row && row.owner !== owner && row.expires_at > now) return false;
        db.prepare('INSERT INTO audience_leases (audience, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (audience) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at')
          .run(audience, owner, now + ttlMs);
        return true;
      }).immediate(),
    renew: () => db.prepare('UPDATE audience_leases SET expires_at = ? WHERE audience = ? AND owner = ?').run(Date.now() + ttlMs, audience, owner),
    release: () => db.prepare('DELETE FROM audience_leases WHERE audience = ? AND owner = ?').run(audience, owner),
    /** When the current holder's lease lapses unless renewed. */
    heldUntil: () => db.prepare('SELECT expires_at FROM audience_leases WHERE audience = ?').pluck().get(audience) as number | undefined,
  };
}

// Run log rows (start, end, status, counts, job ids, errors) and the run lease that keeps two processes from syncing one audience at once.
import { randomUUID } from 'node:crypto';
import type { AudienceStore, RunRecord } from '../store/audience-types.js';

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

function toLog(row: RunRecord): RunLog {
  const stored = row.errors as { items: MemberError[]; omitted: number } | MemberError[];
  const items = Array.isArray(stored) ? stored : stored.items;
  return {
    id: row.id,
    audience: row.audience,
    trigger: row.trigger,
    status: row.status as RunStatus,
    started_at: new Date(row.started_at).toISOString(),
    ended_at: row.ended_at === null ? null : new Date(row.ended_at).toISOString(),
    duration_ms: row.ended_at === null ? null : row.ended_at - row.started_at,
    list_id: row.list_id,
    counts: { ...emptyCounts(), ...row.counts },
    job_ids: row.job_ids,
    errors: items,
    errors_omitted: Array.isArray(stored) ? 0 : stored.omitted,
    error: row.error,
  };
}

export const INTERRUPTED = 'interrupted: the process stopped during the run; the next run resumes it';

export function runLogStore(store: AudienceStore, now: () => number = Date.now) {
  const runs = store.runs;
  return {
    start: (audience: string, trigger: string): Promise<number> => runs.start(audience, trigger, now(), emptyCounts()),
    /** Progress or the final row. */
    update: (id: number, fields: { status?: RunStatus; ended?: boolean; listId?: string; counts: Counts; jobIds: string[]; errors: MemberError[]; errorsOmitted: number; error?: string }) =>
      runs.update(id, {
        status: fields.status, endedAt: fields.ended ? now() : undefined, listId: fields.listId, counts: fields.counts,
        jobIds: fields.jobIds, errors: { items: fields.errors, omitted: fields.errorsOmitted }, error: fields.error,
      }),
    get: async (id: number): Promise<RunLog | undefined> => {
      const row = await runs.get(id);
      return row && toLog(row);
    },
    /** Newest first. */
    list: async (audience: string, limit = 50): Promise<RunLog[]> => (await runs.list(audience, limit)).map(toLog),
    /** Rows left `running` by a process that died: they end as failed, so the log never shows a ghost run. */
    closeAbandoned: (audience: string, exceptId?: number) => runs.closeAbandoned(audience, INTERRUPTED, now(), exceptId),
  };
}

export type RunLogStore = ReturnType<typeof runLogStore>;

/** How long a run's lease lasts unless renewed; a run renews it every quarter of that while it lives. */
export const LEASE_TTL_MS = 60_000;

/** Lease of one audience's run across processes; renewed while the run lives, taken over once expired. */
export function createLease(store: AudienceStore, audience: string, ttlMs = LEASE_TTL_MS) {
  const owner = randomUUID();
  const leases = store.leases;
  return {
    owner,
    ttlMs,
    /** True when this owner now holds the lease. */
    acquire: () => leases.acquire(audience, owner, ttlMs),
    renew: () => leases.renew(audience, owner, ttlMs),
    release: () => leases.release(audience, owner),
    /** When the current holder's lease lapses unless renewed. */
    heldUntil: () => leases.heldUntil(audience),
  };
}

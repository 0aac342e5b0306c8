// The audience module's storage boundary: saved definitions, resolved lists, the per-member diff state (what
// Klaviyo confirmed), import jobs in flight (for resume), run log rows, the run lease and the
// segment member stream. SQLite (store/sqlite-audiences.ts) and PostgreSQL (store/postgres/audiences.ts)
// implement it; audience code never sees a driver. Times are epoch milliseconds.
import type { RuleNode } from '../audiences/definition.js';
import type { StoredProfile } from './types.js';

export interface MemberState {
  hash: string;
  /** Set when the member was removed from the list (it left the source). */
  left_at: number | null;
  /** Klaviyo took the member off the list by a list-level unsubscribe: reruns and removals leave them be. */
  list_unsubscribed: boolean;
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
  list_unsubscribed: boolean;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
}

export interface InflightJob {
  jobId: string;
  listId: string;
  members: SentMember[];
}

/** One audience's diff state and in-flight jobs. */
export interface AudienceMembers {
  get(key: string): Promise<MemberState | undefined>;
  /** State of many members in one query. */
  getMany(keys: string[]): Promise<Map<string, MemberState>>;
  /** Mark unchanged members as still in the source (seen by `run`); with `owesConsent`, owed a consent call again. */
  touchMany(keys: string[], run: number, owesConsent?: boolean): Promise<void>;
  /** Record a job Klaviyo accepted, so a killed run can fold in its result instead of importing again. */
  recordInflight(jobId: string, listId: string, members: SentMember[]): Promise<void>;
  /** Jobs recorded and not yet committed, oldest first. */
  inflight(): Promise<InflightJob[]>;
  /**
   * Fold a confirmed job into the diff state, in one transaction: its members except `rejected` get the hash
   * Klaviyo accepted (and are on the list again, even after a list-level unsubscribe), `touched` are marked as
   * seen, and the job leaves the in-flight set.
   * A consent debt already owed survives a re-import without one. `jobId` '' only touches.
   */
  commitJob(jobId: string, rejected: string[], run: number, touched: string[]): Promise<void>;
  /** Up to `limit` members still owed a consent call, in key order. */
  pendingConsent(limit: number): Promise<PendingConsent[]>;
  /** Consent settled for `keys`; those in `unsubscribedFromList` are now off the list by Klaviyo's doing. */
  settleConsent(keys: string[], unsubscribedFromList: string[]): Promise<void>;
  /** Up to `limit` members on the list that run `run`'s source no longer contains, in key order. */
  leftMembers(run: number, limit: number): Promise<LeftMember[]>;
  countLeft(run: number): Promise<number>;
  /** Members currently on the list. */
  countMembers(): Promise<number>;
  /** Removed from the list: remembered as having left (at `at`), so a return is not a fresh consent. */
  markLeft(keys: string[], at?: number): Promise<void>;
  /** The consent settings last applied to this audience's members (undefined before the first run). */
  consentSettings(): Promise<string | undefined>;
  rememberConsentSettings(settings: string): Promise<void>;
  /** The list id resolved for this list spec before, if any. */
  rememberedList(spec: string): Promise<string | undefined>;
  /**
   * Remember the resolved list. A different list than before starts a fresh diff state: the members confirmed
   * on the old list say nothing about the new one.
   */
  rememberList(spec: string, listId: string): Promise<void>;
}

export interface RunRecord {
  id: number;
  audience: string;
  trigger: string;
  status: string;
  started_at: number;
  ended_at: number | null;
  list_id: string | null;
  counts: Record<string, number>;
  job_ids: string[];
  /** The errors as the run stored them (opaque to the store). */
  errors: unknown;
  error: string | null;
}

export interface RunRecordUpdate {
  status?: string;
  endedAt?: number;
  listId?: string;
  counts: Record<string, number>;
  jobIds: string[];
  errors: unknown;
  error?: string;
}

export interface RunRecords {
  /** A new `running` row; returns its id. */
  start(audience: string, trigger: string, startedAt: number, counts: Record<string, number>): Promise<number>;
  update(id: number, fields: RunRecordUpdate): Promise<void>;
  get(id: number): Promise<RunRecord | undefined>;
  /** Newest first. */
  list(audience: string, limit: number): Promise<RunRecord[]>;
  /** Rows left `running` by a process that died end as failed with `error`. */
  closeAbandoned(audience: string, error: string, endedAt: number, exceptId?: number): Promise<void>;
}

/**
 * One audience's run lease across processes and instances. Acquiring is one atomic statement in the database:
 * two instances asking at the same moment never both get it. Lease times follow the database's clock where the
 * database has one, so instances with skewed clocks still agree on when a lease lapsed.
 */
export interface RunLeases {
  /** True when `owner` now holds the lease (it was free, lapsed, or already its own). */
  acquire(audience: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extend the lease; false when `owner` no longer holds it. */
  renew(audience: string, owner: string, ttlMs: number): Promise<boolean>;
  release(audience: string, owner: string): Promise<void>;
  /** When the current holder's lease lapses unless renewed. */
  heldUntil(audience: string): Promise<number | undefined>;
}

/** A compiled segment query: its SQL text and the values bound to its placeholders. */
export interface CompiledSql {
  sql: string;
  params: unknown[];
}

/** One store profile matched by a segment, with its computed fields. */
export type SegmentProfile = Pick<StoredProfile, 'id' | 'email' | 'phone_number' | 'external_id' | 'anonymous_id' | 'first_name' | 'last_name' | 'properties' | 'first_seen' | 'last_seen'> & {
  organization: string | null;
  title: string | null;
  locale: string | null;
  image: string | null;
  location: Record<string, unknown>;
  last_event_time: number | null;
  event_count: number;
};

export interface AudienceStore {
  /** Definitions saved through the admin API (as saved; the caller validates them). */
  savedDefinitions(): Promise<{ name: string; definition: unknown }[]>;
  saveDefinition(name: string, definition: unknown): Promise<void>;
  members(audience: string): AudienceMembers;
  runs: RunRecords;
  leases: RunLeases;
  /**
   * The profiles matching `rule`, in id order, streamed (never all in memory). `now` anchors `within` windows.
   * Values in the rule are always bound as parameters, never spliced into SQL.
   */
  segment(rule: RuleNode, now: number): AsyncIterable<SegmentProfile>;
}

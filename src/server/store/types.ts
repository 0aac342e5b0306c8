// The one storage interface the server's callers use (routes, forwarder, console settings) for events, profiles
// and stitching, the forwarding outbox and saved settings. SQLite (store/sqlite.ts, the embedded default) and
// PostgreSQL (store/postgres/relay-store.ts, shared by many instances) implement it; open.ts picks one.
import type { RelayEvent } from '../../shared/wire.js';
import type { ValidEvent } from '../../shared/wire-schema.js';
import type { PropertyKeySample } from './property-keys.js';

export type AliasKind = 'anonymous_id' | 'email' | 'phone_number' | 'external_id';

export interface IngestResult {
  /** Events written for the first time. */
  stored: number;
  /** Events whose unique_id was already stored (a resend): ignored, still counted as accepted by the route. */
  duplicates: number;
  /** New `server`-routed items placed in the forwarding outbox. */
  queued: number;
}

export interface StoredProfile {
  id: number;
  email: string | null;
  phone_number: string | null;
  external_id: string | null;
  anonymous_id: string | null;
  first_name: string | null;
  last_name: string | null;
  properties: Record<string, unknown>;
  /** Every identifier ever linked to this profile. */
  aliases: { kind: AliasKind; value: string }[];
  first_seen: number;
  last_seen: number;
}

/** One outbox item, claimed for sending. */
export interface OutboxItem {
  eventId: number;
  /** Attempts including this one. */
  attempts: number;
  event: RelayEvent;
  /** The stitched profile this event belongs to (null when it carried no stitchable identifier, e.g. only `_kx`). */
  profileId: number | null;
  /** Identifiers the stitched profile knows now, which the event itself may lack (tracked before identify). */
  known: { email?: string; phone_number?: string; external_id?: string };
}

export type OutboxStatus = 'pending' | 'inflight' | 'sent' | 'failed';

export interface OutboxRow {
  eventId: number;
  unique_id: string;
  type: string;
  name: string | null;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  /** Delivered, with something the operator should know (e.g. a Klaviyo identity conflict and how it was resolved). */
  note: string | null;
}

export interface StoreCounts {
  events: number;
  profiles: number;
  outbox: Record<OutboxStatus, number>;
  /** Stored events per workflow route (client, server, off). */
  routes: Record<string, number>;
}

/** A recently received event and where forwarding stands with it (null when it is not a `server` item). */
export interface RecentEvent {
  unique_id: string;
  type: string;
  name: string | null;
  route: string;
  received_at: number;
  forward_status: OutboxStatus | null;
  forward_attempts: number | null;
  last_error: string | null;
}

/**
 * The exclusive right to forward the outbox. On PostgreSQL one instance holds it (an advisory lock on its own
 * session: if the process or its connection dies, PostgreSQL releases it and another instance takes over); the
 * embedded store belongs to one process, which always holds it.
 */
export interface ForwarderLeadership {
  /** False on the embedded store, where one process always holds it and there is nothing to report. */
  readonly shared: boolean;
  /** Try to take it (or confirm it is still held). Never waits for another holder. */
  acquire(): Promise<boolean>;
  readonly held: boolean;
  /** `listener` runs when a held leadership is lost without release() (its session died). */
  onLost(listener: (reason: string) => void): void;
  release(): Promise<void>;
}

export interface RelayStore {
  /** Store a batch of validated events in one transaction: all or nothing. Stitches profiles and queues `server` items. */
  ingest(publicKey: string, events: ValidEvent[], receivedAt?: number): Promise<IngestResult>;
  findProfile(kind: AliasKind, value: string): Promise<StoredProfile | undefined>;

  /**
   * Claims this store holds go back to pending, due now (the forwarder stopped or aborted a send). The embedded
   * store belongs to one process, so it also frees claims a crashed earlier run left behind; on a shared store
   * other instances' claims are left to their lease.
   */
  releaseClaims(): Promise<number>;
  /**
   * Claim up to `limit` items due at `now`, oldest first; they become `inflight`, claimed by this store for a
   * lease. Pending items and claims whose lease ran out (their holder died) are due. Never returns an item
   * another live claim holds.
   */
  claimDue(limit: number, now?: number): Promise<OutboxItem[]>;
  /** Extend the lease on this store's claims (the forwarder is still working on them). Returns how many. */
  renewClaims(): Promise<number>;
  /** Delivered; `note` records anything the operator should know about how. */
  markSent(eventIds: number[], note?: string): Promise<void>;
  /** Final: Klaviyo refused the item (4xx); `error` carries its detail. Never retried automatically. */
  markFailed(eventIds: number[], error: string): Promise<void>;
  /** Back to pending, due at `at`, remembering why. */
  reschedule(eventIds: number[], at: number, error: string): Promise<void>;
  forwarderLeadership(): ForwarderLeadership;

  /** Failed items back to pending, due now (after fixing what Klaviyo refused). Returns how many. */
  requeueFailed(): Promise<number>;

  listOutbox(filter?: { status?: OutboxStatus; limit?: number }): Promise<OutboxRow[]>;
  counts(): Promise<StoreCounts>;
  /** The newest events first, with their forwarding state. */
  recentEvents(limit: number): Promise<RecentEvent[]>;

  /** The workflow toggles saved from the console (they override the config file's), or undefined if none were saved. */
  loadWorkflowOverride(): Promise<{ workflow: unknown; updatedAt: number } | undefined>;
  /** Replace the saved workflow toggles; the caller has validated them. */
  saveWorkflowOverride(workflow: unknown): Promise<void>;
  /** Forget the saved workflow toggles, so the config file's workflow is served again. */
  clearWorkflowOverride(): Promise<void>;
  /**
   * Every event name in the store with how many events carry it and the newest event time (epoch ms).
   * Identify events are counted under `$identify`, the name their workflow toggle uses.
   */
  eventCounts(): Promise<{ name: string; count: number; lastSeenAt: number }[]>;
  /**
   * How many stored events of each named event have a time in `[from, to)` (epoch ms): the same window a Klaviyo
   * metric count is asked for, so the two compare. Every name asked for is answered, 0 when none; `$identify`
   * counts identify events.
   */
  eventCountsBetween(names: string[], from: number, to: number): Promise<{ name: string; count: number }[]>;

  /**
   * The top-level property keys of the newest `sample` events named `name` (by event time), with how many of them
   * carry each key (see property-keys.ts for the caps).
   */
  eventPropertyKeys(name: string, sample: number): Promise<PropertyKeySample>;
  /**
   * The keys a trait rule can name on the newest `sample` profiles that carry custom properties or a location
   * (among the newest PROFILE_SCAN profiles): the profile columns, `properties.<key>` and `location.<key>`, with how
   * many of them carry each.
   */
  profilePropertyKeys(sample: number): Promise<PropertyKeySample>;

  /** A trivial read: resolves once the store answers, rejects with the reason it cannot (what /healthz asks). */
  ping(): Promise<void>;

  /** Release connections (and a held forwarder leadership). */
  close(): Promise<void>;
}

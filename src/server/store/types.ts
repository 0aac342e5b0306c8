// The one storage interface the server's callers use (routes, forwarder). SQLite implements it today
// (store/sqlite.ts); a PostgreSQL implementation can replace it without touching callers, which is why every
// method is async even though better-sqlite3 is synchronous.
import type { RelayEvent } from '../../shared/wire.js';
import type { ValidEvent } from '../../shared/wire-schema.js';

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
}

export interface RelayStore {
  /** Store a batch of validated events in one transaction: all or nothing. Stitches profiles and queues `server` items. */
  ingest(publicKey: string, events: ValidEvent[], receivedAt?: number): Promise<IngestResult>;
  findProfile(kind: AliasKind, value: string): Promise<StoredProfile | undefined>;

  /** Items claimed by a forwarder that stopped or died go back to pending, due now. Returns how many. */
  releaseClaims(): Promise<number>;
  /** Claim up to `limit` pending items due at `now`, oldest first; they become `inflight`. */
  claimDue(limit: number, now?: number): Promise<OutboxItem[]>;
  /** When the next pending item becomes due (epoch ms), or undefined when none is pending. */
  nextDueAt(): Promise<number | undefined>;
  /** Delivered; `note` records anything the operator should know about how. */
  markSent(eventIds: number[], note?: string): Promise<void>;
  /** Final: Klaviyo refused the item (4xx); `error` carries its detail. Never retried automatically. */
  markFailed(eventIds: number[], error: string): Promise<void>;
  /** Back to pending, due at `at`, remembering why. */
  reschedule(eventIds: number[], at: number, error: string): Promise<void>;

  /** Failed items back to pending, due now (after fixing what Klaviyo refused). Returns how many. */
  requeueFailed(): Promise<number>;

  listOutbox(filter?: { status?: OutboxStatus; limit?: number }): Promise<OutboxRow[]>;
  counts(): Promise<StoreCounts>;
}

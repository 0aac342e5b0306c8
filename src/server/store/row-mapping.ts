// Rows as both backends read them, turned into the store's types (JSON columns already parsed).
import type { RelayEvent } from '../../shared/wire.js';
import type { ProfileState } from './stitching.js';
import type { OutboxItem, StoredProfile } from './types.js';

export interface ClaimedRow {
  event_id: number;
  /** Attempts including this one. */
  attempts: number;
  unique_id: string; type: string; name: string | null;
  properties: Record<string, unknown>;
  time: number;
  value: number | null; value_currency: string | null;
  profile: RelayEvent['profile'];
  profile_id: number | null;
  known_email: string | null; known_phone: string | null; known_external_id: string | null;
}

export function toOutboxItem(r: ClaimedRow): OutboxItem {
  return {
    eventId: r.event_id,
    attempts: r.attempts,
    profileId: r.profile_id,
    event: {
      type: r.type as RelayEvent['type'], name: r.name ?? undefined, properties: r.properties, time: new Date(r.time).toISOString(),
      ...(r.value !== null ? { value: r.value } : {}), ...(r.value_currency ? { value_currency: r.value_currency } : {}),
      unique_id: r.unique_id, route: 'server', profile: r.profile,
    },
    known: {
      ...(r.known_email ? { email: r.known_email } : {}),
      ...(r.known_phone ? { phone_number: r.known_phone } : {}),
      ...(r.known_external_id ? { external_id: r.known_external_id } : {}),
    },
  };
}

export function toStoredProfile(row: ProfileState, aliases: StoredProfile['aliases']): StoredProfile {
  return {
    id: row.id, email: row.email, phone_number: row.phone_number, external_id: row.external_id, anonymous_id: row.anonymous_id,
    first_name: row.first_name, last_name: row.last_name, properties: row.properties ?? {},
    aliases, first_seen: row.first_seen, last_seen: row.last_seen,
  };
}

/** A single-process store always forwards: it owns its database alone. */
export function soleLeadership() {
  let held = false;
  return {
    shared: false,
    async acquire() {
      held = true;
      return true;
    },
    get held() {
      return held;
    },
    onLost() {},
    async release() {
      held = false;
    },
  };
}

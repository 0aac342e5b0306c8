// Klaviyo JSON:API bodies built from relay events. Both halves use these, so a request is shaped in one place;
// test/shared/klaviyo-payloads.test.ts validates each against ../shared/klaviyo-openapi.
// Kept small and dependency-free: the snippet bundles the client builders.
import type { RelayEvent, RelayProfile } from './wire.js';

type Attrs = Record<string, unknown>;

/** Profile attributes with empty fields left out (Klaviyo treats null as "clear this field"). */
export function profileAttributes(profile: RelayProfile, withAnonymousId = true): Attrs {
  const out: Attrs = {};
  for (const key in profile) {
    const v = (profile as Attrs)[key];
    if (v === undefined || v === null || v === '') continue;
    if (key === 'anonymous_id' && !withAnonymousId) continue;
    if (typeof v === 'object' && !Object.keys(v as object).length) continue;
    out[key] = v;
  }
  return out;
}

const metric = (name: string) => ({ data: { type: 'metric', attributes: { name } } });

/** The event's own attributes, shared by the single and bulk event shapes. */
function eventAttributes(ev: RelayEvent): Attrs {
  const a: Attrs = { properties: ev.properties || {}, time: ev.time, unique_id: ev.unique_id, metric: metric(ev.name || '') };
  if (ev.value !== undefined) a.value = ev.value;
  if (ev.value_currency) a.value_currency = ev.value_currency;
  return a;
}

/** `POST /client/events` and `POST /api/events` (EventCreateQueryV2). */
export function eventBody(ev: RelayEvent) {
  const attributes = eventAttributes(ev);
  attributes.profile = { data: { type: 'profile', attributes: profileAttributes(ev.profile) } };
  return { data: { type: 'event', attributes } };
}

/** `POST /client/profiles` (OnsiteProfileCreateQuery): a client-side identify. */
export function clientProfileBody(profile: RelayProfile) {
  return { data: { type: 'profile', attributes: profileAttributes(profile) } };
}

/** `POST /api/profile-import` (ProfileUpsertQuery): a server-side identify. Server profiles have no anonymous_id. */
export function profileImportBody(profile: RelayProfile) {
  return { data: { type: 'profile', attributes: profileAttributes(profile, false) } };
}

/** One `event-bulk-create` entry: one profile with its events. */
export function bulkEntry(profile: RelayProfile, events: RelayEvent[]) {
  return {
    type: 'event-bulk-create',
    attributes: {
      profile: { data: { type: 'profile', attributes: profileAttributes(profile) } },
      events: { data: events.map((ev) => ({ type: 'event', attributes: eventAttributes(ev) })) },
    },
  };
}

/** `POST /api/event-bulk-create-jobs` (EventsBulkCreateJob). */
export function eventBulkJobBody(entries: ReturnType<typeof bulkEntry>[]) {
  return { data: { type: 'event-bulk-create-job', attributes: { 'events-bulk-create': { data: entries } } } };
}

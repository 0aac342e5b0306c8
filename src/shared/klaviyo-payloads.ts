// Klaviyo JSON:API bodies built from relay events. Both halves use these, so a request is shaped in one place;
// test/shared/klaviyo-payloads.test.ts validates each against the vendored OpenAPI spec (openapi/).
// Kept small and dependency-free: the snippet bundles the client builders.
import type { RelayEvent, RelayProfile } from './wire.js';

type Attrs = Record<string, unknown>;

/** A JSON:API resource object wrapped in `data`. */
const data = <A>(type: string, attributes: A) => ({ data: { type, attributes } });

/** Profile attributes with empty fields left out (Klaviyo treats null as "clear this field"). */
export function profileAttributes(profile: RelayProfile): Attrs {
  const out: Attrs = {};
  for (const key in profile) {
    const v = (profile as Attrs)[key];
    if (v != null && v !== '' && (typeof v != 'object' || Object.keys(v as object).length)) out[key] = v;
  }
  return out;
}

/** The event's own attributes, shared by the single and bulk event shapes. */
function eventAttributes(ev: RelayEvent): Attrs {
  const a: Attrs = { properties: ev.properties || {}, time: ev.time, unique_id: ev.unique_id, metric: data('metric', { name: ev.name || '' }) };
  if (ev.value !== undefined) a.value = ev.value;
  if (ev.value_currency) a.value_currency = ev.value_currency;
  return a;
}

const profileData = (profile: RelayProfile) => data('profile', profileAttributes(profile));

/** `POST /client/events` and `POST /api/events` (EventCreateQueryV2). */
export const eventBody = (ev: RelayEvent) => data('event', { ...eventAttributes(ev), profile: profileData(ev.profile) });

/** `POST /client/profiles` (OnsiteProfileCreateQuery): a client-side identify. */
export const clientProfileBody = (profile: RelayProfile) => profileData(profile);

/**
 * `POST /api/profile-import` (ProfileUpsertQuery): a server-side identify. Server profiles have no anonymous_id;
 * it is left out here rather than in profileAttributes, which the snippet bundles.
 */
export const profileImportBody = ({ anonymous_id, ...profile }: RelayProfile) => profileData(profile);

/** One `event-bulk-create` entry: one profile with its events. */
export const bulkEntry = (profile: RelayProfile, events: RelayEvent[]) => ({
  type: 'event-bulk-create',
  attributes: {
    profile: profileData(profile),
    events: { data: events.map((ev) => ({ type: 'event', attributes: eventAttributes(ev) })) },
  },
});

/** `POST /api/event-bulk-create-jobs` (EventsBulkCreateJob). */
export const eventBulkJobBody = (entries: ReturnType<typeof bulkEntry>[]) =>
  data('event-bulk-create-job', { 'events-bulk-create': { data: entries } });

/**
 * `PATCH /api/profiles/{id}` (ProfilePartialUpdateQuery): the traits of `profile` and only the identifiers named
 * in `identifiers`. Used when an identify's identifiers sit on two Klaviyo profiles: the one Klaviyo names is
 * updated without the identifiers that belong to the other.
 */
export function profileUpdateBody(id: string, profile: RelayProfile, identifiers: ('email' | 'phone_number' | 'external_id')[]) {
  const { anonymous_id, _kx, ...traits } = profile;
  const attributes = profileAttributes(traits);
  for (const key of ['email', 'phone_number', 'external_id'] as const) if (!identifiers.includes(key)) delete attributes[key];
  return { data: { type: 'profile', id, attributes } };
}

// JSON:API request bodies and filters for audience syncs, one small builder per Klaviyo call, so every request
// is shaped in one place. test/audiences/payloads.test.ts validates each against Klaviyo's OpenAPI spec.
import type { ProfileAttributes } from './mapping.js';

export type Channel = 'email' | 'sms';

/** Per-request limits Klaviyo publishes for the endpoints a sync uses. */
export const LIMITS = {
  importProfiles: 10_000,
  importBytes: 5 * 1024 * 1024,
  importProfileBytes: 100 * 1024,
  subscribeProfiles: 1_000,
  unsubscribeProfiles: 100,
  removeProfiles: 1_000,
  /** Values in one `any(...)` filter, matching the largest page of GET /api/profiles. */
  lookupValues: 100,
  lookupPageSize: 100,
} as const;

const listRef = (listId: string) => ({ type: 'list' as const, id: listId });

/** A filter string literal: Klaviyo filters take double-quoted strings with backslash escapes. */
export const filterString = (value: string) => JSON.stringify(value);

/** `GET /api/lists?filter=` for a list by its exact name. */
export const listByNameFilter = (name: string) => `equals(name,${filterString(name)})`;

/** `GET /api/profiles?filter=` for profiles whose `field` is any of `values`. */
export const profilesByFilter = (field: 'email' | 'external_id' | 'phone_number', values: string[]) =>
  `any(${field},[${values.map(filterString).join(',')}])`;

/** `POST /api/lists` (ListCreateQuery). */
export function listCreateBody(name: string, optInProcess?: 'single_opt_in' | 'double_opt_in') {
  return { data: { type: 'list', attributes: optInProcess ? { name, opt_in_process: optInProcess } : { name } } };
}

/** One profile of a bulk import job (ProfileUpsertQueryResourceObject). */
export const importProfileEntry = (attributes: ProfileAttributes) => ({ type: 'profile' as const, attributes });

/** Bytes an entry adds to the job body (its JSON plus the separating comma). */
export const entryBytes = (entry: ReturnType<typeof importProfileEntry>) => Buffer.byteLength(JSON.stringify(entry)) + 1;

/** Bytes of the job envelope around the entries. */
export const importEnvelopeBytes = (listId: string) => Buffer.byteLength(JSON.stringify(importJobBody([], listId)));

/** `POST /api/profile-bulk-import-jobs` (ProfileImportJobCreateQuery): profiles upserted and added to the list. */
export function importJobBody(entries: ReturnType<typeof importProfileEntry>[], listId: string) {
  return {
    data: {
      type: 'profile-bulk-import-job',
      attributes: { profiles: { data: entries } },
      relationships: { lists: { data: [listRef(listId)] } },
    },
  };
}

export interface ConsentMember {
  email?: string | null;
  phone_number?: string | null;
  /** ISO time consent was collected; required for every member of a historical import. */
  consented_at?: string | null;
}

/** The channels a member can take part in: email needs an email, SMS a phone number. */
export function memberChannels(member: ConsentMember, channels: Channel[]): Channel[] {
  return channels.filter((c) => (c === 'email' ? !!member.email : !!member.phone_number));
}

function identifiers(member: ConsentMember, channels: Channel[]) {
  const out: { email?: string; phone_number?: string } = {};
  if (channels.includes('email') && member.email) out.email = member.email;
  if (channels.includes('sms') && member.phone_number) out.phone_number = member.phone_number;
  return out;
}

/**
 * `POST /api/profile-subscription-bulk-create-jobs` (SubscriptionCreateJobCreateQuery), ≤ 1,000 profiles.
 * Only the selected channels each member has an identifier for. `historical` skips double opt-in and needs
 * every member's consented_at.
 */
export function subscribeJobBody(members: ConsentMember[], channels: Channel[], listId: string, historical = false) {
  const profiles = members.map((m) => {
    const own = memberChannels(m, channels);
    const marketing = historical ? { consent: 'SUBSCRIBED', consented_at: m.consented_at } : { consent: 'SUBSCRIBED' };
    const subscriptions: Record<string, unknown> = {};
    for (const c of own) subscriptions[c] = { marketing };
    return { type: 'profile', attributes: { ...identifiers(m, own), subscriptions } };
  });
  const attributes: Record<string, unknown> = { profiles: { data: profiles } };
  if (historical) attributes.historical_import = true;
  return { data: { type: 'profile-subscription-bulk-create-job', attributes, relationships: { list: { data: listRef(listId) } } } };
}

/**
 * `POST /api/profile-subscription-bulk-delete-jobs` (SubscriptionDeleteJobCreateQuery), ≤ 100 profiles.
 * With a list: a list-level unsubscribe, only for members confirmed on that list (Klaviyo takes them off it and
 * unsubscribes anyone else globally). Without one (`listId` undefined): the channels are unsubscribed account-wide.
 */
export function unsubscribeJobBody(members: ConsentMember[], channels: Channel[], listId: string | undefined) {
  const profiles = members.map((m) => {
    const own = memberChannels(m, channels);
    const subscriptions: Record<string, unknown> = {};
    for (const c of own) subscriptions[c] = { marketing: { consent: 'UNSUBSCRIBED' } };
    return { type: 'profile', attributes: { ...identifiers(m, own), subscriptions } };
  });
  const job: Record<string, unknown> = { type: 'profile-subscription-bulk-delete-job', attributes: { profiles: { data: profiles } } };
  if (listId !== undefined) job.relationships = { list: { data: listRef(listId) } };
  return { data: job };
}

/** `DELETE /api/lists/{id}/relationships/profiles` (ListMembersDeleteQuery), ≤ 1,000 profile ids. */
export function removeProfilesBody(profileIds: string[]) {
  return { data: profileIds.map((id) => ({ type: 'profile', id })) };
}

/** Split `items` into arrays of at most `size`. */
export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

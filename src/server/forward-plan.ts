// Pure planning for the forwarder: which Klaviyo request carries which outbox items. No I/O here.
import { bulkEntry, eventBulkJobBody, eventBody, profileImportBody } from '../shared/klaviyo-payloads.js';
import type { RelayProfile } from '../shared/wire.js';
import type { OutboxItem } from './store/types.js';

/** Klaviyo's limits for one bulk job: 1,000 events and 5 MB. We keep a margin under the byte cap. */
export const MAX_EVENTS_PER_JOB = 1000;
export const MAX_JOB_BYTES = 4_500_000;

export interface PlannedRequest {
  items: OutboxItem[];
  body: unknown;
  /** The merged profile a profile import carries (to resolve an identity conflict Klaviyo reports). */
  profile?: RelayProfile;
}

/** The event's own profile, with the identifiers stitching learned since (an event tracked before identify). */
export function profileFor(item: OutboxItem): RelayProfile {
  const profile: RelayProfile = { ...item.event.profile };
  for (const [k, v] of Object.entries(item.known) as [keyof OutboxItem['known'], string][]) if (!profile[k]) profile[k] = v;
  return profile;
}

const groupKey = (item: OutboxItem) =>
  item.profileId !== null ? `p${item.profileId}` : `kx${item.event.profile._kx ?? item.event.unique_id}`;

/** Later snapshots win, so a job carries the freshest traits for the person. */
function mergedProfile(items: OutboxItem[]): RelayProfile {
  return items.reduce<RelayProfile>((acc, item) => ({ ...acc, ...profileFor(item) }), {});
}

function groupByProfile(items: OutboxItem[]): OutboxItem[][] {
  const groups = new Map<string, OutboxItem[]>();
  for (const item of items) {
    const key = groupKey(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return [...groups.values()];
}

/** A generous estimate of one event's bytes inside a bulk job (its profile snapshot counted too). */
const eventBytes = (item: OutboxItem) => Buffer.byteLength(JSON.stringify(item.event)) + 200;

/**
 * Bulk jobs of ≤ 1,000 events and ≤ MAX_JOB_BYTES, one entry per profile (a profile's events may span two jobs).
 * A unique_id repeated inside one job would fail the whole job at Klaviyo, so a repeat rides along as a
 * `duplicate` (marked sent with its twin) instead of being sent.
 */
export function planBulkJobs(items: OutboxItem[], maxEvents = MAX_EVENTS_PER_JOB, maxBytes = MAX_JOB_BYTES): (PlannedRequest & { duplicates: OutboxItem[] })[] {
  const jobs: (PlannedRequest & { duplicates: OutboxItem[] })[] = [];
  let entries: ReturnType<typeof bulkEntry>[] = [];
  let jobItems: OutboxItem[] = [];
  let duplicates: OutboxItem[] = [];
  let seen = new Set<string>();
  let bytes = 0;

  const closeJob = () => {
    if (jobItems.length) jobs.push({ items: jobItems, duplicates, body: eventBulkJobBody(entries) });
    entries = [];
    jobItems = [];
    duplicates = [];
    seen = new Set();
    bytes = 0;
  };

  for (const group of groupByProfile(items)) {
    const profile = mergedProfile(group);
    const profileBytes = Buffer.byteLength(JSON.stringify(profile)) + 200;
    let entryItems: OutboxItem[] = [];
    const closeEntry = () => {
      if (entryItems.length) entries.push(bulkEntry(profile, entryItems.map((i) => i.event)));
      entryItems = [];
    };
    for (const item of group) {
      if (seen.has(item.event.unique_id)) {
        duplicates.push(item);
        continue;
      }
      const size = eventBytes(item) + (entryItems.length ? 0 : profileBytes);
      if (jobItems.length >= maxEvents || (jobItems.length && bytes + size > maxBytes)) {
        closeEntry();
        closeJob();
        bytes = profileBytes;
        bytes += eventBytes(item);
      } else bytes += size;
      entryItems.push(item);
      jobItems.push(item);
      seen.add(item.event.unique_id);
    }
    closeEntry();
  }
  closeJob();
  return jobs;
}

export function singleEventRequest(item: OutboxItem): PlannedRequest {
  return { items: [item], body: eventBody({ ...item.event, profile: profileFor(item) }) };
}

export const PERSON_IDS = ['email', 'phone_number', 'external_id'] as const;

/**
 * One profile-import per person, carrying every trait their identifies set (latest wins). Klaviyo keys a
 * server-side profile by email, phone or external id only; an identify with none of them cannot be sent.
 */
export function planProfileImports(identifies: OutboxItem[]): { requests: PlannedRequest[]; unsendable: OutboxItem[] } {
  const requests: PlannedRequest[] = [];
  const unsendable: OutboxItem[] = [];
  for (const group of groupByProfile(identifies)) {
    const profile = mergedProfile(group);
    if (PERSON_IDS.some((k) => profile[k])) requests.push({ items: group, body: profileImportBody(profile), profile });
    else unsendable.push(...group);
  }
  return { requests, unsendable };
}

export const UNSENDABLE_IDENTIFY =
  'a server-side identify needs email, phone_number or external_id: Klaviyo /api/profile-import cannot key a profile by anonymous_id or _kx';

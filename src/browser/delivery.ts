// What goes in which request: a pure plan from owed outbox entries to HTTP requests, no I/O.
// - Klaviyo: a backlog of BULK_MIN or more events for one profile goes as `POST /client/event-bulk-create`
//   (≤ 1,000 events, under 5 MB); a trickle goes one event per `POST /client/events`; identify calls go to
//   `POST /client/profiles`. Both event endpoints are rate-limited per account, shared by every shopper's browser.
// - The companion server: batches of ≤ 100 events, ≤ 512 KB.
import { bulkEntry, clientProfileBody, eventBody } from '../shared/klaviyo-payloads.js';
import { KLAVIYO_REVISION } from '../shared/revision.js';
import type { OutboxEntry, RelayOptions } from './types.js';

/**
 * One bulk request costs 1/150 of the account's per-minute bulk budget, a single event 1/3,500 of the singles
 * budget: from 24 events for one profile (3,500 / 150 = 23.3) a bulk request uses no larger share than the singles.
 */
export const BULK_MIN = 24;
export const MAX_BULK_EVENTS = 1000;
/** Klaviyo refuses bodies over 5 MB; event sizes are estimated, so keep a margin. */
export const MAX_BULK_BYTES = 45e5;
export const MAX_BATCH_EVENTS = 100;
export const MAX_BATCH_BYTES = 512e3;

/** Where requests go: the running options, URLs without a trailing slash (init normalises them). */
export type Target = Pick<RelayOptions, 'publicKey' | 'klaviyoUrl' | 'endpoint' | 'relayFallback'>;

export interface HttpRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Builds the request for some entries; a refused batch is split and each half rebuilt with it. */
export type Build = (entries: OutboxEntry[]) => HttpRequest;
export type Job = [entries: OutboxEntry[], build: Build];

export const byteLength = (s: string) => new Blob([s]).size;

const klaviyoRequest = (t: Target, path: string, body: unknown): HttpRequest => ({
  url: `${t.klaviyoUrl}${path}?company_id=${encodeURIComponent(t.publicKey!)}`,
  headers: { revision: KLAVIYO_REVISION, 'content-type': 'application/vnd.api+json' },
  body: JSON.stringify(body),
});

/** `text/plain` keeps the batch a CORS "simple request": no preflight round trip. */
export const relayRequest = (t: Target): Build => (entries) => ({
  url: `${t.endpoint}/v1/events`,
  headers: { 'content-type': 'text/plain;charset=UTF-8' },
  body: JSON.stringify({ public_key: t.publicKey, events: entries.map((e) => e.event) }),
});

/** Splits entries, oldest first, into batches of ≤ maxEvents and ≤ maxBytes of JSON. */
export function toBatches(entries: OutboxEntry[], maxEvents: number, maxBytes: number): OutboxEntry[][] {
  const batches: OutboxEntry[][] = [];
  let batch: OutboxEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const size = byteLength(JSON.stringify(e.event)) + 1;
    if (batch.length == maxEvents || (batch.length > 0 && bytes + size > maxBytes)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(e);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Klaviyo jobs: events grouped by the exact profile they were captured with; a group of BULK_MIN or more goes bulk. */
export function klaviyoJobs(entries: OutboxEntry[], t: Target): Job[] {
  const single: Build = ([{ event }]) =>
    event.type == 'identify' ? klaviyoRequest(t, '/client/profiles', clientProfileBody(event.profile)) : klaviyoRequest(t, '/client/events', eventBody(event));
  const bulk: Build = (group) =>
    klaviyoRequest(t, '/client/event-bulk-create', { data: bulkEntry(group[0].event.profile, group.map((e) => e.event)) });
  const groups: Record<string, OutboxEntry[]> = {};
  for (const e of entries) (groups[e.event.type == 'identify' ? e.event.unique_id : JSON.stringify(e.event.profile)] ||= []).push(e);
  const jobs: Job[] = [];
  for (const group of Object.values(groups)) {
    if (group.length < BULK_MIN) for (const e of group) jobs.push([[e], single]);
    else for (const batch of toBatches(group, MAX_BULK_EVENTS, MAX_BULK_BYTES)) jobs.push([batch, bulk]);
  }
  return jobs;
}

export const relayJobs = (entries: OutboxEntry[], t: Target): Job[] =>
  toBatches(entries, MAX_BATCH_EVENTS, MAX_BATCH_BYTES).map((batch) => [batch, relayRequest(t)]);

// Sends outbox entries: client events one per request to Klaviyo's Client API (pinned detail 4), everything owed to
// the companion server in batches of ≤ 100 events. Each destination has its own backoff: a 429 or an outage pauses
// that whole endpoint, never just the one event. Handles pagehide with keepalive inside the 64 KB budget.
import { eventBody, clientProfileBody } from '../shared/klaviyo-payloads.js';
import { KLAVIYO_REVISION } from '../shared/revision.js';
import type { RelayEvent } from '../shared/wire.js';
import { owes } from './outbox.js';
import type { Outbox } from './outbox.js';
import { classify, retryDelay } from './retry.js';
import type { Destination, HookInfo, HookName, OutboxEntry } from './types.js';

export const MAX_BATCH_EVENTS = 100;
export const MAX_BATCH_BYTES = 512e3;
/** Chromium refuses keepalive requests beyond 64 KiB in flight per page; stay under it. */
export const KEEPALIVE_BYTES = 6e4;
const CONCURRENCY = 4;

export interface Target {
  publicKey: string;
  klaviyoUrl: string;
  endpoint?: string;
}

const byteLength = (s: string) => new Blob([s]).size;

/** The Client API request for one event: a track to `/client/events`, an identify to `/client/profiles`. */
export function klaviyoRequest(ev: RelayEvent, t: Target) {
  const identify = ev.type == 'identify';
  return {
    url: `${t.klaviyoUrl}/client/${identify ? 'profiles' : 'events'}?company_id=${encodeURIComponent(t.publicKey)}`,
    headers: { revision: KLAVIYO_REVISION, 'content-type': 'application/vnd.api+json' },
    body: JSON.stringify(identify ? clientProfileBody(ev.profile) : eventBody(ev)),
  };
}

/** `text/plain` keeps the batch a CORS "simple request": no preflight round trip. */
export const relayRequest = (events: RelayEvent[], t: Target) => ({
  url: `${t.endpoint}/v1/events`,
  headers: { 'content-type': 'text/plain;charset=UTF-8' },
  body: JSON.stringify({ public_key: t.publicKey, events }),
});

/** Splits entries into batches of ≤ 100 events and ≤ MAX_BATCH_BYTES of JSON, oldest first. */
export function toBatches(entries: OutboxEntry[]): OutboxEntry[][] {
  const out: OutboxEntry[][] = [];
  let cur: OutboxEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const size = byteLength(JSON.stringify(e.event)) + 1;
    if (cur.length && (cur.length == MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES)) out.push(cur), (cur = []), (bytes = 0);
    cur.push(e);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

export function createDelivery(outbox: Outbox, emit: (hook: HookName, info: HookInfo) => void) {
  const perDestination = () => ({ klaviyo: 0, relay: 0 });
  const blockedUntil = perDestination();
  const failures = perDestination();
  /** The last answer's status; 0 = a network error, which `online` may lift early. */
  const lastStatus = perDestination();
  const busy = new Set<string>();
  let keepaliveBytes = 0;

  const open = (dest: Destination) => Date.now() >= blockedUntil[dest];

  /**
   * Starts the request synchronously (pagehide relies on that). While the page is hidden it asks for keepalive when
   * the 64 KB budget allows; `mustKeepalive` (pagehide) skips what the budget cannot carry, as it would be cancelled.
   * Resolves once the outbox has committed the answer on each entry (before the flush lock is freed).
   */
  function post(dest: Destination, entries: OutboxEntry[], req: ReturnType<typeof relayRequest>, mustKeepalive: boolean) {
    let size = mustKeepalive || document.visibilityState == 'hidden' ? byteLength(req.body) : 0;
    if (keepaliveBytes + size > KEEPALIVE_BYTES) {
      if (mustKeepalive) return;
      size = 0;
    }
    keepaliveBytes += size;
    const tags = entries.map((e) => dest + e.event.unique_id);
    tags.map((t) => busy.add(t));
    return fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, keepalive: !!size })
      .then(
        async (r) => [r.status, r.headers.get('retry-after'), await r.json().catch(() => 0)] as const,
        (err) => [0, null, err?.message] as const,
      )
      .then(([status, retryAfter, body]) => {
        keepaliveBytes -= size;
        tags.map((t) => busy.delete(t));
        const outcome = classify(status);
        const detail = body?.errors?.[0]?.detail || body?.error || (status ? 'HTTP ' + status : String(body || 'network error'));
        const retry = outcome == 'retry';
        lastStatus[dest] = status;
        failures[dest] = retry ? failures[dest] + 1 : 0;
        if (retry) {
          // The whole endpoint waits, not only these events (pinned detail 6).
          const waitMs = retryDelay(failures[dest], status, retryAfter);
          blockedUntil[dest] = Math.max(blockedUntil[dest], Date.now() + waitMs);
          emit('retry', { destination: dest, status, waitMs, reason: detail, attempts: failures[dest] });
        }
        // A 2xx batch answer may still reject single events by index.
        const rejected: { index: number; error: string }[] = (outcome == 'ok' && body?.rejected) || [];
        return Promise.all(
          entries.map((e, i) => {
            e.attempts++;
            if (retry) e.error = detail;
            else {
              const why = outcome == 'drop' ? detail : rejected.find((r) => r.index == i)?.error;
              e.to[dest] = true;
              emit(why === undefined ? 'sent' : 'dropped', { event: e.event, destination: dest, status, reason: why });
            }
            return outbox.save(e);
          }),
        );
      });
  }

  /**
   * Klaviyo takes one event per request, a few in parallel; the relay takes batches one after another. Both stop as
   * soon as their endpoint is told to wait. Hidden (pagehide), every request starts synchronously, within the
   * keepalive budget, because no await would resume in an unloading page.
   */
  async function drain(dest: Destination, jobs: [OutboxEntry[], ReturnType<typeof relayRequest>][], hidden: boolean, lanes: number) {
    if (hidden) return void jobs.forEach(([batch, req]) => open(dest) && post(dest, batch, req, true));
    const lane = async () => {
      for (let job; open(dest) && (job = jobs.shift()); ) await post(dest, job[0], job[1], false);
    };
    await Promise.all(Array.from({ length: lanes }, lane));
  }

  // An entry not routed yet (stored before the workflow config arrived) waits: its route decides where it goes.
  const owed = (entries: OutboxEntry[], dest: Destination) => entries.filter((e) => e.event.route && owes(e, dest) && !busy.has(dest + e.event.unique_id));

  return {
    blockedUntil,
    /** Sends what is owed now; resolves when every request has settled. */
    send: (entries: OutboxEntry[], t: Target, hidden = false) =>
      Promise.all([
        drain('klaviyo', owed(entries, 'klaviyo').map((e) => [[e], klaviyoRequest(e.event, t)]), hidden, CONCURRENCY),
        t.endpoint && drain('relay', toBatches(owed(entries, 'relay')).map((b) => [b, relayRequest(b.map((e) => e.event), t)]), hidden, 1),
      ]).then(() => undefined),
    /** After `online`: a destination paused by a network error may try at once (a 429's wait still holds). */
    online() {
      for (const d in lastStatus) if (!lastStatus[d as Destination]) blockedUntil[d as Destination] = 0;
    },
  };
}

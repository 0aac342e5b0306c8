// The outbox's emitter: it adds events to the outbox and flushes it, one flush at a time per tab and one tab at a
// time (the flush lock). A flush claims what is owed, sends it, then settles each entry (delivered, or dropped with
// Klaviyo's detail) or reschedules (the whole destination waits: a 429 or an outage pauses the endpoint, never just
// one event). The same claim → send → settle or reschedule as the companion server's forwarder.
import type { RelayEvent, Route } from '../shared/wire.js';
import { byteLength, klaviyoJobs, relayJobs, type Build, type Job, type Target } from './delivery.js';
import { owes, type Outbox } from './outbox.js';
import { classify, retryDelay } from './retry.js';
import type { Hooks } from './hooks.js';
import type { Destination, OutboxEntry } from './types.js';

/** Chromium refuses keepalive requests beyond 64 KiB in flight per page; stay under it. */
export const KEEPALIVE_BYTES = 6e4;
/** Klaviyo requests in flight at once; the companion takes its batches one after another. */
const KLAVIYO_LANES = 4;
/**
 * Consecutive Klaviyo requests without any HTTP answer (while the companion answers) before client events are
 * handed to the companion. An ad blocker fails each one at once; with the backoff between them three take a few
 * seconds, and a shopper who is simply offline fails the companion too, so never switches.
 */
export const FALLBACK_AFTER = 3;

/**
 * @param target where requests go: the running options, read at each send (init may change them)
 * @param allowed whether anything may be sent now (consent, checked again at every flush)
 * @param routeOf the route of an entry stored before the workflow was known; undefined while it still is not
 * @param lock runs a flush if this tab gets the flush lock
 */
export function createFlusher(
  outbox: Outbox,
  hooks: Hooks,
  target: Target,
  allowed: () => boolean,
  routeOf: (event: RelayEvent) => Route | undefined,
  lock: (flush: () => Promise<void>) => Promise<unknown>,
) {
  const { emit } = hooks;
  const blockedUntil = { klaviyo: 0, relay: 0 };
  const failures = { klaviyo: 0, relay: 0 };
  /** Each destination's last answer; 0 = no HTTP answer (a network error, or none yet). */
  const lastStatus = { klaviyo: 0, relay: 0 };
  /** Entries with a request in flight, per destination, so no flush or pagehide sends them twice. */
  const busy = new Set<string>();
  let unreachable = 0;
  let handOff = false;
  let keepaliveBytes = 0;
  let lastAt = 0;
  let flushing: Promise<void> | undefined;
  /** One follow-up flush queued behind the running one: a call made mid-flush must see its own events go. */
  let next: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let due = Infinity;

  const open = (dest: Destination) => Date.now() >= blockedUntil[dest] && !(handOff && dest == 'klaviyo');

  function schedule(ms: number) {
    if (Date.now() + ms >= due) return;
    clearTimeout(timer);
    due = Date.now() + ms;
    timer = setTimeout(() => {
      due = Infinity;
      flush();
    }, ms);
  }

  /** Retry when something is still owed: at the end of the shortest wait among destinations owed, at least 1 s away. */
  function reschedule() {
    if (!allowed() || navigator.onLine === false) return;
    const waits = (['klaviyo', 'relay'] as const)
      .filter((dest) => [...outbox.live.values()].some((e) => owes(e, dest)))
      .map((dest) => blockedUntil[dest] - Date.now());
    if (waits.length > 0) schedule(Math.max(1e3, Math.min(...waits)));
  }

  /** Claim: what the outbox owes now, routed where the workflow is known; client events handed off after a switch. */
  async function claim() {
    const entries = await outbox.route(await outbox.load(), routeOf);
    if (handOff) {
      for (const e of entries) {
        if (owes(e, 'klaviyo')) {
          e.event.route = 'server';
          delete e.to.klaviyo;
          e.to.relay = false;
          await outbox.save(e);
        }
      }
    }
    return entries;
  }

  /**
   * Sends one request and settles its entries. The request starts synchronously (pagehide relies on that). While
   * the page is hidden it asks for keepalive when the 64 KB budget allows; `mustKeepalive` (pagehide) skips what the
   * budget cannot carry, as it would be cancelled. A refused batch is split in halves until the refusal names single
   * events, so one bad event never costs the others. Resolves once the outbox has committed every answer.
   */
  async function post(dest: Destination, entries: OutboxEntry[], build: Build, mustKeepalive: boolean) {
    const req = build(entries);
    let size = mustKeepalive || document.visibilityState == 'hidden' ? byteLength(req.body) : 0;
    if (keepaliveBytes + size > KEEPALIVE_BYTES) {
      if (mustKeepalive) return;
      size = 0;
    }
    keepaliveBytes += size;
    const tags = entries.map((e) => dest + e.event.unique_id);
    for (const tag of tags) busy.add(tag);
    /** 0 = no HTTP answer at all (a network error). */
    let status = 0;
    let retryAfter = null;
    let body;
    try {
      const r = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, keepalive: size > 0 });
      status = r.status;
      retryAfter = r.headers.get('retry-after');
      body = await r.json().catch(() => 0);
    } catch (err) {
      body = (err as Error)?.message;
    }
    keepaliveBytes -= size;
    for (const tag of tags) busy.delete(tag);
    const outcome = classify(status);
    const detail = body?.errors?.[0]?.detail || body?.error || (status ? 'HTTP ' + status : String(body || 'network error'));
    lastStatus[dest] = status;
    if (dest == 'klaviyo') unreachable = status ? 0 : unreachable + 1;
    failures[dest] = outcome == 'retry' ? failures[dest] + 1 : 0;
    if (outcome == 'retry') {
      // The whole endpoint waits, not only these events.
      const waitMs = retryDelay(failures[dest], status, retryAfter);
      blockedUntil[dest] = Math.max(blockedUntil[dest], Date.now() + waitMs);
      // Klaviyo's host gives no answer at all while the companion does: an ad blocker. Switch, once, if allowed.
      const fallback = !handOff && target.relayFallback && unreachable >= FALLBACK_AFTER && lastStatus.relay > 0;
      if (fallback) {
        handOff = true;
        schedule(0);
      }
      emit('retry', { destination: dest, status, waitMs, reason: detail, attempts: failures[dest], fallback });
    }
    if (outcome == 'drop' && entries.length > 1) {
      const half = Math.ceil(entries.length / 2);
      for (const part of [entries.slice(0, half), entries.slice(half)]) if (open(dest)) await post(dest, part, build, false);
      return;
    }
    // A 2xx batch answer may still reject single events by index (read only when the batch is not dropped whole).
    const rejected: { index: number; error: string }[] = body?.rejected || [];
    await Promise.all(
      entries.map((e, i) => {
        e.attempts++;
        if (outcome == 'retry') e.error = detail;
        else {
          const why = outcome == 'drop' ? detail : rejected.find((r) => r.index == i)?.error;
          e.to[dest] = true;
          emit(why === undefined ? 'sent' : 'dropped', { event: e.event, destination: dest, status, reason: why });
        }
        return outbox.save(e);
      }),
    );
  }

  /**
   * Sends what is owed now, each destination in its lanes; a lane stops as soon as its endpoint is told to wait.
   * Hidden (pagehide), every request starts synchronously, within the keepalive budget, as no await would resume
   * in an unloading page.
   */
  function send(entries: OutboxEntry[], hidden: boolean) {
    // An entry not routed yet (stored before the workflow config arrived) waits: its route decides where it goes.
    const owed = (dest: Destination) => entries.filter((e) => e.event.route && owes(e, dest) && !busy.has(dest + e.event.unique_id));
    // Hidden, each job gets a lane of its own: every lane starts its first request synchronously.
    const drain = (dest: Destination, jobs: Job[], lanes: number) => {
      const lane = async () => {
        for (let job; open(dest) && (job = jobs.shift()); ) await post(dest, job[0], job[1], hidden);
      };
      return Promise.all(Array.from({ length: hidden ? jobs.length : lanes }, lane));
    };
    return Promise.all([
      drain('klaviyo', klaviyoJobs(owed('klaviyo'), target), KLAVIYO_LANES),
      target.endpoint && drain('relay', relayJobs(owed('relay'), target), 1),
    ]);
  }

  function flush(): Promise<void> {
    if (flushing) {
      next ||= flushing.then(() => {
        next = undefined;
        return flush();
      });
      return next;
    }
    flushing = (async () => {
      if (allowed() && navigator.onLine !== false) await lock(async () => void (await send(await claim(), false)));
    })()
      .finally(() => (flushing = undefined))
      .then(reschedule)
      .catch((e) => hooks.fail('flush', e));
    return flushing;
  }

  return {
    /**
     * Stores a new event (before any network attempt) and schedules a flush. It is routed now if the workflow is
     * known and reported `queued` once committed; otherwise (only while the companion's config is awaited, so the
     * store copy is owed either way) it is stored unrouted, and routed and reported by a flush once it is known.
     */
    add(event: RelayEvent) {
      event.route ||= routeOf(event)!;
      if (event.route == 'server' && !target.endpoint) return emit('dropped', { event, reason: 'route "server" needs an endpoint' });
      const to: OutboxEntry['to'] = {};
      if (event.route == 'client') to.klaviyo = false;
      if (target.endpoint) to.relay = false;
      else if (event.route == 'off') return; // `off` without an endpoint goes nowhere
      lastAt = Math.max(Date.now(), lastAt + 1e-3);
      const entry: OutboxEntry = { event, to, attempts: 0, at: lastAt };
      const stored = outbox.add(entry);
      if (event.route) stored.then(() => emit('queued', { event }));
      schedule(500);
    },
    flush,
    /** pagehide: send what is owed, synchronously, with keepalive. */
    pagehide() {
      if (allowed()) send([...outbox.live.values()], true);
    },
    /** After `online`: a destination paused by a network error may try at once (a 429's wait still holds). */
    online() {
      for (const dest of ['klaviyo', 'relay'] as const) if (lastStatus[dest] == 0) blockedUntil[dest] = 0;
      return flush();
    },
  };
}

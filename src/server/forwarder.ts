// Sends the durable outbox's `server` items to Klaviyo with the private key. Items are claimed from the store,
// sent, then marked sent / failed / rescheduled; a crash leaves them claimed, and the next start releases them,
// so everything arrives (Klaviyo keeps the first of each unique_id). Klaviyo being down only delays delivery.
import { KlaviyoError, type KlaviyoClient } from './klaviyo-client.js';
import { createRateWindow, type WindowLimit } from './rate-window.js';
import {
  planBulkJobs, planProfileImports, singleEventRequest, UNSENDABLE_IDENTIFY, MAX_EVENTS_PER_JOB, MAX_JOB_BYTES, type PlannedRequest,
} from './forward-plan.js';
import type { OutboxItem, RelayStore } from './store/types.js';

type Operation = 'bulk' | 'event' | 'profile';

const PATHS: Record<Operation, string> = {
  bulk: '/api/event-bulk-create-jobs',
  event: '/api/events',
  profile: '/api/profile-import',
};

/** Klaviyo's published limits for the three endpoints (x-klaviyo-ratelimit in the OpenAPI spec). */
export const KLAVIYO_LIMITS: Record<Operation, WindowLimit> = {
  bulk: { burst: 10, steady: 150 },
  event: { burst: 350, steady: 3500 },
  profile: { burst: 75, steady: 750 },
};

export interface ForwarderLog {
  (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void;
}

export interface ForwarderOptions {
  store: RelayStore;
  /** Without a client (no KLAVIYO_PRIVATE_KEY) nothing is sent; items wait in the outbox. */
  klaviyo?: KlaviyoClient;
  log?: ForwarderLog;
  /** Poll period for due items; 0 disables the timer and notify(): only flush() sends. */
  intervalMs?: number;
  /** Up to this many due track events go one by one to /api/events; more go as bulk jobs. */
  trickle?: number;
  claimLimit?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  limits?: Partial<Record<Operation, WindowLimit>>;
  /** First retry wait after a 5xx/timeout; doubles per attempt up to retryCapMs, with jitter. */
  retryBaseMs?: number;
  retryCapMs?: number;
  /** Wait after 401/403 (a key problem, not an event problem: items are kept, not failed). */
  authRetryMs?: number;
  maxEventsPerJob?: number;
  maxJobBytes?: number;
}

export interface ForwarderStats {
  sent: number;
  failed: number;
  retried: number;
  requests: Record<Operation, number>;
}

export interface Forwarder {
  start(): Promise<void>;
  /** Send everything due now; resolves when each item is sent, failed or rescheduled. */
  flush(): Promise<void>;
  /** New items were queued: forward soon. */
  notify(): void;
  stop(): Promise<void>;
  stats(): ForwarderStats;
}

/** Exponential backoff with jitter that never retries instantly: a wait in [d/2, d), d = min(cap, base·2^n). */
export function retryDelayMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const d = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + (random() * d) / 2);
}

async function runPool(tasks: (() => Promise<void>)[], concurrency: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  if (errors.length) throw errors[0];
}

export function createForwarder(options: ForwarderOptions): Forwarder {
  const { store, klaviyo } = options;
  const log: ForwarderLog = options.log ?? (() => {});
  const intervalMs = options.intervalMs ?? 1000;
  const trickle = options.trickle ?? 10;
  const claimLimit = options.claimLimit ?? 5000;
  const concurrency = options.concurrency ?? 4;
  const retryBaseMs = options.retryBaseMs ?? 1000;
  const retryCapMs = options.retryCapMs ?? 5 * 60_000;
  const authRetryMs = options.authRetryMs ?? 60_000;
  const limits = { ...KLAVIYO_LIMITS, ...options.limits };
  const windows = {
    bulk: createRateWindow(limits.bulk),
    event: createRateWindow(limits.event),
    profile: createRateWindow(limits.profile),
  };
  /** After a 429, the endpoint rests until this time: other items for it are rescheduled, not sent. */
  const pausedUntil: Record<Operation, number> = { bulk: 0, event: 0, profile: 0 };
  const stats: ForwarderStats = { sent: 0, failed: 0, retried: 0, requests: { bulk: 0, event: 0, profile: 0 } };

  let abort = new AbortController();
  let stopped = true;
  let chain: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let soon: NodeJS.Timeout | undefined;
  let roundQueued = false;

  const ids = (items: OutboxItem[]) => items.map((i) => i.eventId);

  async function retryLater(items: OutboxItem[], at: number, reason: string) {
    stats.retried += items.length;
    await store.reschedule(ids(items), at, reason);
  }

  /** Send one planned request and record its outcome on every item it carries. */
  async function deliver(op: Operation, request: PlannedRequest, onRefused?: (err: KlaviyoError) => Promise<void>): Promise<void> {
    const { items } = request;
    if (Date.now() < pausedUntil[op]) return retryLater(items, pausedUntil[op], 'waiting for Klaviyo rate limit (429)');
    await windows[op].acquire(abort.signal);
    stats.requests[op]++;
    try {
      await klaviyo!.post(PATHS[op], request.body, { maxAttempts: 1, signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) throw err;
      return recordFailure(op, items, err, onRefused);
    }
    await store.markSent(ids(items));
    stats.sent += items.length;
    log('debug', `forwarded ${items.length} item(s) to ${PATHS[op]}`);
  }

  async function recordFailure(op: Operation, items: OutboxItem[], err: unknown, onRefused?: (err: KlaviyoError) => Promise<void>) {
    const now = Date.now();
    const attempts = Math.max(...items.map((i) => i.attempts));
    if (!(err instanceof KlaviyoError)) {
      log('error', `forwarding to ${PATHS[op]} failed unexpectedly; will retry`, { error: (err as Error)?.message });
      return retryLater(items, now + retryDelayMs(attempts, retryBaseMs, retryCapMs), `unexpected error: ${(err as Error)?.message}`);
    }
    const reason = `Klaviyo ${err.status || 'network error'}: ${err.detail}`;
    if (err.status === 429) {
      // A floor keeps "Retry-After: 0" from turning into a tight loop.
      const waitMs = Math.max(250, err.retryAfterMs ?? retryDelayMs(attempts, retryBaseMs, retryCapMs));
      pausedUntil[op] = Math.max(pausedUntil[op], now + waitMs);
      log('warn', `Klaviyo rate-limited ${PATHS[op]}; retrying in ${waitMs} ms`, { items: items.length });
      return retryLater(items, pausedUntil[op], reason);
    }
    if (err.retryable) {
      const waitMs = retryDelayMs(attempts, retryBaseMs, retryCapMs);
      log('warn', `${reason} on ${PATHS[op]}; retrying in ${waitMs} ms`, { items: items.length, attempts });
      return retryLater(items, now + waitMs, reason);
    }
    if (err.status === 401 || err.status === 403) {
      log('error', `${reason}: check KLAVIYO_PRIVATE_KEY and its scopes; items are kept and retried in ${authRetryMs} ms`);
      return retryLater(items, now + authRetryMs, reason);
    }
    if (onRefused) return onRefused(err);
    log('warn', `Klaviyo refused ${items.length} item(s) on ${PATHS[op]}: ${err.detail}`, { unique_ids: items.map((i) => i.event.unique_id) });
    stats.failed += items.length;
    await store.markFailed(ids(items), reason);
  }

  const sendSingly = (items: OutboxItem[]) => runPool(items.map((item) => () => deliver('event', singleEventRequest(item))), concurrency);

  /** Plan and send one claimed batch. `wholeQueue`: nothing else is due, so a trickle may go one by one. */
  async function forwardBatch(items: OutboxItem[], wholeQueue: boolean): Promise<void> {
    const identifies = items.filter((i) => i.event.type === 'identify');
    const tracks = items.filter((i) => i.event.type !== 'identify');
    const tasks: (() => Promise<void>)[] = [];

    const { requests, unsendable } = planProfileImports(identifies);
    if (unsendable.length) {
      stats.failed += unsendable.length;
      await store.markFailed(ids(unsendable), UNSENDABLE_IDENTIFY);
      log('warn', `${unsendable.length} server identify item(s) failed: ${UNSENDABLE_IDENTIFY}`);
    }
    for (const request of requests) tasks.push(() => deliver('profile', request));

    if (wholeQueue && tracks.length <= trickle) {
      for (const item of tracks) tasks.push(() => deliver('event', singleEventRequest(item)));
    } else {
      for (const job of planBulkJobs(tracks, options.maxEventsPerJob ?? MAX_EVENTS_PER_JOB, options.maxJobBytes ?? MAX_JOB_BYTES)) {
        // A refused job (one bad event sinks a whole job) is retried event by event, so only the bad ones fail.
        const request = { items: [...job.items, ...job.duplicates], body: job.body };
        tasks.push(() =>
          deliver('bulk', request, async (err) => {
            log('warn', `Klaviyo refused a bulk job of ${job.items.length} events (${err.detail}); sending them one by one`);
            await sendSingly(job.items);
            await store.markSent(ids(job.duplicates));
          }),
        );
      }
    }
    await runPool(tasks, concurrency);
  }

  async function round(): Promise<void> {
    roundQueued = false;
    while (!stopped) {
      const items = await store.claimDue(claimLimit);
      if (!items.length) return;
      try {
        await forwardBatch(items, items.length < claimLimit);
      } catch (err) {
        // Stopping mid-send: whatever was claimed and not settled goes back to pending.
        await store.releaseClaims();
        if (abort.signal.aborted) return;
        throw err;
      }
    }
  }

  function exclusive(task: () => Promise<void>): Promise<void> {
    const run = chain.then(task);
    chain = run.catch((err) => log('error', `forwarding round failed: ${(err as Error)?.message}`));
    return run;
  }

  function tick() {
    if (stopped || roundQueued) return;
    roundQueued = true;
    void exclusive(round).catch(() => {});
  }

  return {
    async start() {
      if (!klaviyo) {
        log('warn', 'KLAVIYO_PRIVATE_KEY is unset: server-routed events are stored but not forwarded until it is set');
        return;
      }
      if (!stopped) return;
      stopped = false;
      abort = new AbortController();
      const released = await store.releaseClaims();
      if (released) log('info', `resuming ${released} outbox item(s) left in flight by the previous run`);
      if (intervalMs > 0) {
        timer = setInterval(tick, intervalMs);
        timer.unref();
      }
      tick();
    },
    async flush() {
      if (stopped) return;
      await exclusive(round);
    },
    notify() {
      if (stopped || soon || intervalMs <= 0) return;
      // A short delay lets a burst of requests gather into one bulk job.
      soon = setTimeout(() => {
        soon = undefined;
        tick();
      }, 50);
      soon.unref();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      clearTimeout(soon);
      soon = undefined;
      abort.abort(new Error('forwarder stopped'));
      await chain;
      await store.releaseClaims();
    },
    stats: () => structuredClone(stats),
  };
}

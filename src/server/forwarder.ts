// Sends the durable outbox's `server` items to Klaviyo with the private key, in one pattern: claim → send →
// settle (sent / failed) or reschedule. A crash leaves items claimed and the next start releases them, so
// everything arrives (Klaviyo keeps the first of each unique_id); Klaviyo being down only delays delivery.
// The transport (klaviyo-client.ts) limits each attempt; the outbox is the retry loop, so each send is one attempt
// and a retryable failure reschedules the items under the transport's retry policy.
// Only the instance holding the store's forwarder leadership claims and sends, so N instances on one shared store
// use one limiter instead of multiplying Klaviyo's per-account limits; the others keep trying to take over in case
// the leader dies. On a shared store a crashed leader's claims are freed when their lease runs out.
import { KlaviyoError, type KlaviyoClient } from './klaviyo-client.js';
import { systemClock, type Clock } from './rate-limiter.js';
import {
  planBulkJobs, planProfileImports, singleEventRequest, UNSENDABLE_IDENTIFY, MAX_EVENTS_PER_JOB, MAX_JOB_BYTES, PERSON_IDS, type PlannedRequest,
} from './forward-plan.js';
import { profileUpdateBody } from '../shared/klaviyo-payloads.js';
import type { OutboxItem, RelayStore } from './store/types.js';

/** The requests forwarding plans (counted in stats().requests). */
type Operation = 'bulk' | 'event' | 'profile';
/** Every Klaviyo call forwarding makes: the planned ones, and the lookup and update that resolve a 409 duplicate_profile. */
type Call = Operation | 'profileLookup' | 'profileUpdate';

/** Each call's Klaviyo operation (the operationId the transport's limits are keyed by), and its name for operators. */
const ENDPOINTS: Record<Call, { path: string; operationId: string; label: string }> = {
  bulk: { path: '/api/event-bulk-create-jobs', operationId: 'bulk_create_events', label: 'bulk event jobs' },
  event: { path: '/api/events', operationId: 'create_event', label: 'single events' },
  profile: { path: '/api/profile-import', operationId: 'create_or_update_profile', label: 'profile imports' },
  profileLookup: { path: '/api/profiles', operationId: 'get_profiles', label: 'profile lookups' },
  profileUpdate: { path: '/api/profiles/{id}', operationId: 'update_profile', label: 'profile updates' },
};

/** The key of a pause that holds every operation (a 401). */
const ALL_OPERATIONS = '*';

/** One operation (or all of them) waiting for Klaviyo to accept the key, with times in epoch ms. */
interface KeyPause {
  label: string;
  status: number;
  /** What Klaviyo answered, e.g. `Klaviyo 403: You do not have permission to perform this action`. */
  refusal: string;
  since: number;
  until: number;
}

/** Names the paused operations and what Klaviyo answered, grouping those refused alike. */
function pauseReason(pauses: KeyPause[]): string {
  const byRefusal = new Map<string, string[]>();
  for (const p of pauses) byRefusal.set(p.refusal, [...(byRefusal.get(p.refusal) ?? []), p.label]);
  const what = [...byRefusal].map(([refusal, labels]) => `${labels.join(', ')}: ${refusal}`).join('; ');
  return `${what}. Check KLAVIYO_PRIVATE_KEY and its scopes; their items are kept and retried`;
}

/** Handles a final refusal some other way than failing the items; resolves false to fail them after all. */
type Refusal = (err: KlaviyoError) => Promise<boolean>;

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
  /** How long an operation Klaviyo refused the key for (401/403) pauses before it tries again. */
  keyPauseMs?: number;
  maxEventsPerJob?: number;
  maxJobBytes?: number;
  /** Time source for due times and pauses (tests freeze it). Default: the Klaviyo client's clock. */
  clock?: Clock;
  /**
   * The store's claim lease (default 30 s). Claims are renewed every fifth of it while a round sends; a round
   * that cannot renew for two thirds of it stops sending, since another instance may soon take the items over.
   */
  claimLeaseMs?: number;
  /** How often a non-leader tries to take forwarding over, and the leader checks it still holds it (default 5 s). */
  leaderRetryMs?: number;
}

/** One Klaviyo operation paused because Klaviyo refused the key for it. */
export interface PausedOperation {
  /** Klaviyo's operationId, e.g. `create_or_update_profile`; `*` when a 401 paused every operation. */
  operationId: string;
  /** Its name for operators, e.g. `profile imports`. */
  label: string;
  status: number;
  reason: string;
  since: string;
  /** The next time this operation tries Klaviyo again. */
  retryAt: string;
}

/**
 * Why forwarding is (partly) paused: Klaviyo refused the key for some operations (401/403). Each is cleared by the
 * first request of that operation Klaviyo accepts again; the others keep flowing meanwhile.
 */
export interface ForwardingPause {
  /** The status Klaviyo answered for the first operation paused. */
  status: number;
  /** Names each paused operation and why, e.g. `profile imports: Klaviyo 403: …. Check KLAVIYO_PRIVATE_KEY and its scopes; …`. */
  reason: string;
  /** When the first of them paused. */
  since: string;
  /** The next time forwarding tries Klaviyo again: the earliest retry of a paused operation. */
  retryAt: string;
  operations: PausedOperation[];
}

export interface ForwarderStats {
  sent: number;
  failed: number;
  retried: number;
  /** Identifies whose identifiers sat on two Klaviyo profiles, delivered by updating the one Klaviyo named. */
  conflicts: number;
  requests: Record<Operation, number>;
  /** Set while any operation waits for Klaviyo to accept the key; what /healthz and the console show. */
  paused: ForwardingPause | null;
  /** This instance holds the forwarder leadership (always, on the embedded store). */
  leader: boolean;
}

/** Whether events reach Klaviyo now, and why not: what /healthz and the admin outbox view report. */
export interface ForwardingState {
  /** paused: Klaviyo refuses the key for at least one operation; the others keep flowing. */
  state: 'on' | 'off' | 'paused';
  reason?: string;
  /** While paused: the next time forwarding tries Klaviyo again. */
  retryAt?: string;
}

export interface Forwarder {
  start(): Promise<void>;
  /** Send everything due now; resolves when each item is sent, failed or rescheduled. */
  flush(): Promise<void>;
  /** New items were queued: forward soon. */
  notify(): void;
  stop(): Promise<void>;
  stats(): ForwarderStats;
  forwarding(): ForwardingState;
}

/** Every subset of `items`, the empty one included. */
const subsets = <T>(items: readonly T[]): T[][] => items.reduce<T[][]>((all, item) => [...all, ...all.map((set) => [...set, item])], [[]]);

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
  const clock = options.clock ?? klaviyo?.clock ?? systemClock;
  const intervalMs = options.intervalMs ?? 1000;
  const trickle = options.trickle ?? 10;
  const claimLimit = options.claimLimit ?? 5000;
  const concurrency = options.concurrency ?? 4;
  const keyPauseMs = options.keyPauseMs ?? 60_000;
  const claimLeaseMs = options.claimLeaseMs ?? 30_000;
  const leaderRetryMs = options.leaderRetryMs ?? Math.min(5_000, claimLeaseMs / 3);
  const leadership = store.forwarderLeadership();
  const stats: Omit<ForwarderStats, 'paused' | 'leader'> = { sent: 0, failed: 0, retried: 0, conflicts: 0, requests: { bulk: 0, event: 0, profile: 0 } };
  /**
   * Operations Klaviyo refused the key for, by operationId: a key lacking one scope (say profiles:write) pauses only
   * the operations that need it, and the rest keep flowing. A 401 says the key itself is missing or malformed, so
   * every operation would be refused alike: it pauses all of them at once (ALL_OPERATIONS; no round claims anything
   * until it ends), one log line and no request per operation to learn it. A 403 is per operation: a scope the key
   * lacks, or a key of another account, which each operation then learns on its first try.
   */
  const keyPauses = new Map<string, KeyPause>();

  let abort = new AbortController();
  let stopped = true;
  let chain: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let leaderTimer: NodeJS.Timeout | undefined;
  let soon: NodeJS.Timeout | undefined;
  let roundQueued = false;

  const ids = (items: OutboxItem[]) => items.map((i) => i.eventId);

  async function reschedule(items: OutboxItem[], at: number, reason: string) {
    stats.retried += items.length;
    await store.reschedule(ids(items), at, reason);
  }

  /** The key pause holding `call` now (its operation's, or the one of all operations), if any. */
  function keyHold(call: Call): KeyPause | undefined {
    const now = clock.now();
    return [keyPauses.get(ALL_OPERATIONS), keyPauses.get(ENDPOINTS[call].operationId)]
      .filter((p): p is KeyPause => !!p && p.until > now)
      .sort((a, b) => b.until - a.until)[0];
  }

  /** Klaviyo refused the key for `call`'s operation: pause it (every operation on a 401) and keep the items. */
  function pauseOperation(call: Call, err: KlaviyoError, items: OutboxItem[]) {
    const now = clock.now();
    const all = err.status === 401;
    const id = all ? ALL_OPERATIONS : ENDPOINTS[call].operationId;
    const held = keyPauses.get(id);
    const pause: KeyPause = {
      label: all ? 'all operations' : ENDPOINTS[call].label,
      status: err.status,
      refusal: `Klaviyo ${err.status}: ${err.detail.replace(/\.$/, '')}`,
      since: held?.since ?? now,
      until: now + keyPauseMs,
    };
    keyPauses.set(id, pause);
    if (!held) {
      log('error', `${pause.label} paused: ${pause.refusal}. Check KLAVIYO_PRIVATE_KEY and its scopes; their items are kept and retried every ${keyPauseMs / 1000} s${all ? '' : ', other operations keep flowing'}`, { operationId: id });
    }
    return reschedule(items, pause.until, pauseReason([pause]));
  }

  /**
   * Klaviyo accepted the key for `call`'s operation (it answered 2xx, or judged the request itself, which it does
   * only after the key and its scopes pass): that operation's pause ends, and a pause of all operations too.
   */
  function keyAccepted(call: Call) {
    for (const id of [ALL_OPERATIONS, ENDPOINTS[call].operationId]) {
      const pause = keyPauses.get(id);
      if (!pause) continue;
      keyPauses.delete(id);
      log('info', `${pause.label} resume: Klaviyo accepts the key again`, { operationId: id });
    }
  }

  async function settleSent(call: Call, items: OutboxItem[], note?: string) {
    keyAccepted(call);
    await store.markSent(ids(items), note);
    stats.sent += items.length;
  }

  /** Send one planned request (one attempt) and settle or reschedule every item it carries. */
  async function deliver(op: Operation, request: PlannedRequest, onRefused?: Refusal): Promise<void> {
    const { items } = request;
    const { path, operationId } = ENDPOINTS[op];
    const held = keyHold(op);
    const paused = Math.max(klaviyo!.limiter.pausedUntil(operationId), held?.until ?? 0);
    if (paused > clock.now()) return reschedule(items, paused, held ? pauseReason([held]) : `waiting for Klaviyo's rate limit on ${path}`);
    stats.requests[op]++;
    try {
      await klaviyo!.post(path, request.body, { maxAttempts: 1, signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) throw err;
      return settleFailure(op, path, items, err, onRefused);
    }
    await settleSent(op, items);
    log('debug', `forwarded ${items.length} item(s) to ${path}`);
  }

  /** A failed attempt: final 4xx → failed (or `onRefused`); key problem → pause its operation; anything else → reschedule. */
  async function settleFailure(call: Call, path: string, items: OutboxItem[], err: unknown, onRefused?: Refusal) {
    const now = clock.now();
    const attempts = Math.max(...items.map((i) => i.attempts));
    if (!(err instanceof KlaviyoError)) {
      const waitMs = klaviyo!.retryWaitMs(attempts, {});
      log('error', `forwarding to ${path} failed unexpectedly; retrying in ${waitMs} ms`, { error: (err as Error)?.message });
      return reschedule(items, now + waitMs, `unexpected error: ${(err as Error)?.message}`);
    }
    const reason = `Klaviyo ${err.status || 'network error'}: ${err.detail}`;
    if (err.retryable) {
      const waitMs = klaviyo!.retryWaitMs(attempts, err);
      const what = err.status === 429 ? `Klaviyo rate-limited ${path} (429)` : `${reason} on ${path}`;
      log('warn', `${what}; retrying in ${waitMs} ms`, { items: items.length, attempts });
      return reschedule(items, now + waitMs, reason);
    }
    if (err.keyProblem) return pauseOperation(call, err, items);
    keyAccepted(call);
    if (await onRefused?.(err)) return;
    log('warn', `Klaviyo refused ${items.length} item(s) on ${path}: ${err.detail}`, { unique_ids: items.map((i) => i.event.unique_id) });
    stats.failed += items.length;
    await store.markFailed(ids(items), reason);
  }

  /**
   * 409 duplicate_profile: the identify's identifiers sit on two Klaviyo profiles. The profile Klaviyo names is
   * updated by id with the traits and the identifiers that do not conflict: the ones it already holds, plus the
   * ones it lacks when Klaviyo accepts them. Identifiers it holds with another value are never overwritten.
   */
  async function resolveDuplicate(request: PlannedRequest, profileId: string): Promise<void> {
    const profile = request.profile!;
    const signal = abort.signal;
    const ours = PERSON_IDS.filter((k) => profile[k]);
    // Both operations must be allowed: a lookup whose update would be refused only costs a request.
    const waiting = [keyHold('profileLookup'), keyHold('profileUpdate')].filter((p): p is KeyPause => !!p);
    if (waiting.length) return reschedule(request.items, Math.max(...waiting.map((p) => p.until)), pauseReason(waiting));
    let call: Call = 'profileLookup';
    try {
      const found = await klaviyo!.get('/api/profiles', { filter: `equals(id,${JSON.stringify(profileId)})`, 'fields[profile]': PERSON_IDS.join(',') }, { maxAttempts: 1, signal });
      keyAccepted(call);
      call = 'profileUpdate';
      const held: Record<string, unknown> = found?.data?.[0]?.attributes ?? {};
      // Klaviyo matches emails case-insensitively, other identifiers exactly.
      const same = (k: (typeof PERSON_IDS)[number]) => (k === 'email' ? String(held.email ?? '').toLowerCase() === profile.email!.toLowerCase() : held[k] === profile[k]);
      const kept = ours.filter(same);
      const missing = ours.filter((k) => held[k] == null || held[k] === '');
      // Klaviyo does not say which identifier conflicts: try the largest sets of missing ones first (at most three
      // identifiers, so a handful of requests), ending with none.
      const additions = subsets(missing).sort((a, b) => b.length - a.length);
      for (const added of additions) {
        const identifiers = [...kept, ...added];
        try {
          await klaviyo!.patch(`/api/profiles/${encodeURIComponent(profileId)}`, profileUpdateBody(profileId, profile, identifiers), { maxAttempts: 1, signal });
        } catch (err) {
          if (err instanceof KlaviyoError && err.duplicateProfileId && added.length) continue;
          throw err;
        }
        const conflicting = ours.filter((k) => !identifiers.includes(k));
        const note =
          `Klaviyo 409 duplicate_profile: ${conflicting.join(', ') || 'an identifier'} belong${conflicting.length === 1 ? 's' : ''} to another Klaviyo profile; ` +
          `updated profile ${profileId} with the traits${identifiers.length ? ` and ${identifiers.join(', ')}` : ''}`;
        log('warn', note, { unique_ids: request.items.map((i) => i.event.unique_id) });
        stats.conflicts += request.items.length;
        return settleSent(call, request.items, note);
      }
    } catch (err) {
      if (signal.aborted) throw err;
      return settleFailure(call, call === 'profileLookup' ? ENDPOINTS.profileLookup.path : `/api/profiles/${profileId}`, request.items, err);
    }
  }

  function pauseInfo(): ForwardingPause | null {
    const paused = [...keyPauses].sort(([, a], [, b]) => a.since - b.since);
    if (!paused.length) return null;
    const iso = (ms: number) => new Date(ms).toISOString();
    const first = paused[0]![1];
    return {
      status: first.status,
      reason: pauseReason(paused.map(([, p]) => p)),
      since: iso(first.since),
      retryAt: iso(Math.min(...paused.map(([, p]) => p.until))),
      operations: paused.map(([operationId, p]) => ({ operationId, label: p.label, status: p.status, reason: pauseReason([p]), since: iso(p.since), retryAt: iso(p.until) })),
    };
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
    for (const request of requests) {
      tasks.push(() =>
        deliver('profile', request, async (err) => {
          const duplicate = err.duplicateProfileId;
          if (!duplicate) return false;
          await resolveDuplicate(request, duplicate);
          return true;
        }),
      );
    }

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
            return true;
          }),
        );
      }
    }
    await runPool(tasks, concurrency);
  }

  /** Keep this round's claims alive; if the store cannot be reached for most of the lease, stop sending. */
  function renewWhileSending(): () => void {
    let renewedAt = clock.now();
    const renewer = setInterval(() => {
      store.renewClaims().then(
        () => (renewedAt = clock.now()),
        (err) => {
          log('warn', `could not renew outbox claims: ${(err as Error)?.message}`);
          if (clock.now() - renewedAt > (claimLeaseMs * 2) / 3) abort.abort(new Error('outbox claims could not be renewed'));
        },
      );
    }, claimLeaseMs / 5);
    renewer.unref();
    return () => clearInterval(renewer);
  }

  async function round(): Promise<void> {
    roundQueued = false;
    // A previous round was aborted (leadership lost) and has finished: this one starts clean.
    if (abort.signal.aborted && !stopped) abort = new AbortController();
    while (!stopped && leadership.held) {
      if ((keyPauses.get(ALL_OPERATIONS)?.until ?? 0) > clock.now()) return;
      const items = await store.claimDue(claimLimit, clock.now());
      if (!items.length) return;
      const stopRenewing = renewWhileSending();
      try {
        await forwardBatch(items, items.length < claimLimit);
      } catch (err) {
        // Stopping (or losing leadership) mid-send: whatever was claimed and not settled goes back to pending.
        await store.releaseClaims();
        if (abort.signal.aborted) return;
        throw err;
      } finally {
        stopRenewing();
      }
    }
  }

  leadership.onLost((reason) => {
    log('warn', `stopped forwarding: ${reason}; another instance may take over`);
    abort.abort(new Error(reason));
  });

  /** Take forwarding over when no one holds it; as leader, confirm it is still held. */
  async function contendForLeadership() {
    if (stopped) return;
    const wasLeader = leadership.held;
    if ((await leadership.acquire()) && !wasLeader) {
      if (leadership.shared) log('info', 'this instance now forwards the outbox to Klaviyo');
      tick();
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
      await contendForLeadership();
      if (!leadership.held) log('info', 'another instance forwards the outbox; this one takes over if it stops');
      leaderTimer = setInterval(() => void contendForLeadership(), leaderRetryMs);
      leaderTimer.unref();
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
      clearInterval(leaderTimer);
      clearTimeout(soon);
      soon = undefined;
      abort.abort(new Error('forwarder stopped'));
      await chain;
      await store.releaseClaims();
      await leadership.release();
    },
    stats: () => ({ ...structuredClone(stats), paused: pauseInfo(), leader: leadership.held }),
    forwarding() {
      if (!klaviyo) return { state: 'off', reason: 'KLAVIYO_PRIVATE_KEY is unset' };
      const paused = pauseInfo();
      return paused ? { state: 'paused', reason: paused.reason, retryAt: paused.retryAt } : { state: 'on' };
    },
  };
}

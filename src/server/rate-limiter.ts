// The client-side limiter in front of every request to Klaviyo: it keeps each operation inside Klaviyo's published
// per-account limits, so a busy relay seldom meets a 429 at all. Klaviyo counts in fixed 1 s and 60 s windows
// (and a daily one for a few operations) whose boundaries we cannot see, so we count in sliding windows: at most
// `burst` sends in ANY 1 s and `steady` in any 60 s, which keeps every fixed window Klaviyo might use within the
// limit too. A 429 or an exhausted `RateLimit-Remaining` pauses the whole operation, since its window is shared.
import { setTimeout as delay } from 'node:timers/promises';
import { KLAVIYO_OPERATIONS, type RateLimit } from '../shared/klaviyo-limits.js';

/** Time source and abortable wait; tests pass a fake one and move time themselves. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  async sleep(ms, signal) {
    try {
      await delay(ms, undefined, { signal });
    } catch (err) {
      // Reject with the caller's reason (e.g. "interrupted; the next run resumes"), not a generic AbortError.
      throw signal?.aborted ? signal.reason : err;
    }
  },
};

/** Absorbs clock skew and network jitter between our count and Klaviyo's. */
const MARGIN_MS = 50;

const WINDOWS: { key: keyof RateLimit; ms: number }[] = [
  { key: 'burst', ms: 1_000 },
  { key: 'steady', ms: 60_000 },
  { key: 'daily', ms: 86_400_000 },
];

interface OperationWindow {
  limits: { count: number; ms: number }[];
  /** Send times within the longest window, oldest first. */
  sent: number[];
  pausedUntil: number;
  /** Callers of one operation take turns, in order. */
  queue: Promise<void>;
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;

export function createRateLimiter(limits: Record<string, RateLimit> = KLAVIYO_OPERATIONS, clock: Clock = systemClock) {
  const windows = new Map<string, OperationWindow>();

  function windowOf(operation: string): OperationWindow | undefined {
    let w = windows.get(operation);
    const limit = limits[operation];
    if (!w && limit) {
      const counted = WINDOWS.filter((x) => limit[x.key] !== undefined).map((x) => ({ count: limit[x.key]!, ms: x.ms }));
      windows.set(operation, (w = { limits: counted, sent: [], pausedUntil: 0, queue: Promise.resolve() }));
    }
    return w;
  }

  /** How long until one more send fits every window (0: now). */
  function waitMs(w: OperationWindow, t: number): number {
    const longest = w.limits[w.limits.length - 1]!.ms;
    while (w.sent.length && w.sent[0]! <= t - longest - MARGIN_MS) w.sent.shift();
    let wait = w.pausedUntil - t;
    for (const { count, ms } of w.limits) {
      if (w.sent.length >= count) wait = Math.max(wait, w.sent[w.sent.length - count]! + ms + MARGIN_MS - t);
    }
    return Math.max(0, wait);
  }

  return {
    /**
     * Resolves when one request of `operation` may be sent, and counts it. Unknown operations pass at once.
     * Rejects with the signal's reason when it aborts.
     */
    acquire(operation: string | undefined, signal?: AbortSignal): Promise<void> {
      const w = operation === undefined ? undefined : windowOf(operation);
      if (!w) return Promise.resolve();
      const turn = w.queue.then(async () => {
        for (let ms = waitMs(w, clock.now()); ms > 0; ms = waitMs(w, clock.now())) await clock.sleep(ms, signal);
        w.sent.push(clock.now());
      });
      w.queue = turn.catch(() => {});
      return turn;
    },
    /** Hold every request of `operation` until `until` (epoch ms): Klaviyo said its window is spent. */
    pause(operation: string | undefined, until: number): void {
      const w = operation === undefined ? undefined : windowOf(operation);
      if (w) w.pausedUntil = Math.max(w.pausedUntil, until);
    },
    /** When a paused operation may send again (0 or a past time: not paused). */
    pausedUntil(operation: string | undefined): number {
      return (operation !== undefined && windows.get(operation)?.pausedUntil) || 0;
    },
  };
}

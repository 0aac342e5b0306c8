// The client-side limiter in front of every request to Klaviyo: it keeps each operation inside Klaviyo's published
// per-account limits, so a busy relay seldom meets a 429 at all. Klaviyo counts requests as they arrive, in fixed
// 1 s and 60 s windows (and a daily one for a few operations) whose boundaries we cannot see. So a request counts
// here from the moment it is sent until its answer is back (it arrived somewhere in between), plus the window
// length; at most `burst` such requests fit any 1 s and `steady` any 60 s, which keeps every fixed window Klaviyo
// might use within the limit, however slow a single request was. A 429 or an exhausted `RateLimit-Remaining` pauses
// the whole operation, since its window is shared.
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

/** Absorbs the difference between our clock and Klaviyo's. */
const MARGIN_MS = 50;

const WINDOWS: { key: keyof RateLimit; ms: number }[] = [
  { key: 'burst', ms: 1_000 },
  { key: 'steady', ms: 60_000 },
  { key: 'daily', ms: 86_400_000 },
];

interface Send {
  /** When the answer came back; Infinity while the request is in flight. */
  answeredAt: number;
}

interface OperationWindow {
  limits: { count: number; ms: number }[];
  /** Sends that may still count in some window, in the order they were sent. */
  sends: Send[];
  pausedUntil: number;
  /** Callers of one operation take turns, in order. */
  queue: Promise<void>;
  /** Wakes a caller that waits for an answer (every slot of a window is held by a request in flight). */
  answered: () => void;
}

/** Call when the request's answer (or its failure) is in. */
export type Release = () => void;

export type RateLimiter = ReturnType<typeof createRateLimiter>;

export function createRateLimiter(limits: Record<string, RateLimit> = KLAVIYO_OPERATIONS, clock: Clock = systemClock) {
  const windows = new Map<string, OperationWindow>();

  function windowOf(operation: string): OperationWindow | undefined {
    let w = windows.get(operation);
    const limit = limits[operation];
    if (!w && limit) {
      const counted = WINDOWS.filter((x) => limit[x.key] !== undefined).map((x) => ({ count: limit[x.key]!, ms: x.ms }));
      windows.set(operation, (w = { limits: counted, sends: [], pausedUntil: 0, queue: Promise.resolve(), answered: () => {} }));
    }
    return w;
  }

  /** How long until one more send fits every window (0: now), or 'answer' when only an answer can free a slot. */
  function waitMs(w: OperationWindow, t: number): number | 'answer' {
    const longest = w.limits[w.limits.length - 1]!.ms;
    while (w.sends.length && w.sends[0]!.answeredAt + longest + MARGIN_MS <= t) w.sends.shift();
    let wait = w.pausedUntil - t;
    for (const { count, ms } of w.limits) {
      let inFlight = 0;
      const frees: number[] = [];
      for (const s of w.sends) {
        if (s.answeredAt === Infinity) inFlight++;
        else if (s.answeredAt + ms + MARGIN_MS > t) frees.push(s.answeredAt + ms + MARGIN_MS);
      }
      const mustFree = inFlight + frees.length - count + 1;
      if (mustFree <= 0) continue;
      if (frees.length < mustFree) return 'answer';
      frees.sort((a, b) => a - b);
      wait = Math.max(wait, frees[mustFree - 1]! - t);
    }
    return Math.max(0, wait);
  }

  function nextAnswer(w: OperationWindow, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      w.answered = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
    });
  }

  return {
    /**
     * Resolves when one request of `operation` may be sent, and counts it until the returned release is called
     * with its answer in. Unknown operations pass at once. Rejects with the signal's reason when it aborts.
     */
    async acquire(operation: string | undefined, signal?: AbortSignal): Promise<Release> {
      const w = operation === undefined ? undefined : windowOf(operation);
      if (!w) return () => {};
      const send: Send = { answeredAt: Infinity };
      const turn = w.queue.then(async () => {
        for (let ms = waitMs(w, clock.now()); ms !== 0; ms = waitMs(w, clock.now())) {
          if (ms === 'answer') await nextAnswer(w, signal);
          else await clock.sleep(ms, signal);
        }
        w.sends.push(send);
      });
      w.queue = turn.catch(() => {});
      await turn;
      return () => {
        if (send.answeredAt !== Infinity) return;
        send.answeredAt = clock.now();
        w.answered();
      };
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

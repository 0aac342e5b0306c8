// Per-endpoint rate limits from each operation's `x-klaviyo-ratelimit` (burst per second, steady per minute,
// sometimes daily), counted as Klaviyo does: per account (every key and connection of the account shares them), in
// fixed windows aligned to the clock, so a window's whole allowance is available again the moment it turns over.
// A breach answers 429 with Retry-After; every request that passes learns the steady window's state for the
// RateLimit-* headers.
import { ApiError } from './errors.js';
import type { Operation } from './openapi.js';

interface FixedWindow {
  name: string;
  limit: number;
  windowMs: number;
  /** Start of the window `used` counts (a multiple of windowMs). */
  start: number;
  used: number;
}

/** The steady window's state after a request, as Klaviyo reports it in RateLimit-Limit/-Remaining/-Reset. */
export interface RateLimitState {
  limit: number;
  remaining: number;
  /** Whole seconds until the window turns over. */
  resetSeconds: number;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `'10/s'` → `{count: 10, windowMs: 1000}`. */
export function parseRate(text: string): { count: number; windowMs: number } | undefined {
  const m = /^(\d+)\/([smhd])$/.exec(text.trim());
  return m ? { count: Number(m[1]), windowMs: UNIT_MS[m[2]] } : undefined;
}

export class RateLimiter {
  /** operationId → its windows; the sandbox is one account, so nothing else scopes them. */
  private readonly windows = new Map<string, FixedWindow[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Counts one request against each of the operation's windows, or throws a 429 naming the breached limit. */
  take(op: Operation): RateLimitState | undefined {
    if (!op.rateLimit) return undefined;
    const t = this.now();
    let windows = this.windows.get(op.operationId);
    if (!windows) {
      windows = Object.entries(op.rateLimit).flatMap(([name, text]) => {
        const rate = parseRate(text);
        return rate ? [{ name, limit: rate.count, windowMs: rate.windowMs, start: 0, used: 0 }] : [];
      });
      this.windows.set(op.operationId, windows);
    }
    for (const w of windows) {
      const start = t - (t % w.windowMs);
      if (start !== w.start) {
        w.start = start;
        w.used = 0;
      }
    }
    const full = windows.filter((w) => w.used >= w.limit);
    if (full.length) {
      const waitMs = Math.max(...full.map((w) => w.start + w.windowMs - t));
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      const limits = full.map((w) => `${w.name} ${op.rateLimit![w.name]}`).join(', ');
      throw new ApiError(429, 'throttled', `Request was throttled (${op.operationId}: ${limits}). Expected available in ${seconds} second${seconds === 1 ? '' : 's'}.`, undefined, { 'Retry-After': String(seconds) });
    }
    for (const w of windows) w.used += 1;
    const steady = windows.find((w) => w.name === 'steady') ?? windows[windows.length - 1];
    if (!steady) return undefined;
    return { limit: steady.limit, remaining: steady.limit - steady.used, resetSeconds: Math.ceil((steady.start + steady.windowMs - t) / 1000) };
  }

  reset(): void {
    this.windows.clear();
  }
}

/** The headers Klaviyo puts on every response that was not rate limited. */
export function rateLimitHeaders(state: RateLimitState | undefined): Record<string, string> {
  if (!state) return {};
  return { 'RateLimit-Limit': String(state.limit), 'RateLimit-Remaining': String(state.remaining), 'RateLimit-Reset': String(state.resetSeconds) };
}

// Per-endpoint rate limits from each operation's `x-klaviyo-ratelimit` (burst per second, steady per minute,
// sometimes daily), as token buckets per (operation, key). A breach answers 429 with Retry-After.
import { ApiError } from './errors.js';
import type { Operation } from './openapi.js';

interface Bucket {
  capacity: number;
  perMs: number;
  tokens: number;
  at: number;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `'10/s'` → `{count: 10, windowMs: 1000}`. */
export function parseRate(text: string): { count: number; windowMs: number } | undefined {
  const m = /^(\d+)\/([smhd])$/.exec(text.trim());
  return m ? { count: Number(m[1]), windowMs: UNIT_MS[m[2]] } : undefined;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Takes one token from each of the operation's buckets, or throws a 429 naming the breached limit. */
  take(op: Operation, key: string): void {
    if (!op.rateLimit) return;
    const id = `${op.operationId}\u0000${key}`;
    let buckets = this.buckets.get(id);
    const t = this.now();
    if (!buckets) {
      buckets = Object.values(op.rateLimit)
        .map(parseRate)
        .filter((r): r is NonNullable<typeof r> => !!r)
        .map((r) => ({ capacity: r.count, perMs: r.count / r.windowMs, tokens: r.count, at: t }));
      this.buckets.set(id, buckets);
    }
    let waitMs = 0;
    for (const b of buckets) {
      b.tokens = Math.min(b.capacity, b.tokens + (t - b.at) * b.perMs);
      b.at = t;
      if (b.tokens < 1) waitMs = Math.max(waitMs, (1 - b.tokens) / b.perMs);
    }
    if (waitMs > 0) {
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      const limits = Object.entries(op.rateLimit).map(([k, v]) => `${k} ${v}`).join(', ');
      throw new ApiError(429, 'throttled', `Request was throttled (${op.operationId}: ${limits}). Expected available in ${seconds} second${seconds === 1 ? '' : 's'}.`, undefined, { 'Retry-After': String(seconds) });
    }
    for (const b of buckets) b.tokens -= 1;
  }

  reset(): void {
    this.buckets.clear();
  }
}

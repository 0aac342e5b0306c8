// Status classification and retry waits: network errors, 408, 429 and 5xx wait (the whole endpoint), honouring
// Retry-After; a 429 without a readable one waits at least 2 s, doubling. Pure, so the tests pin every branch.

import { statusClass, type StatusClass } from '../shared/klaviyo-status.js';

export type Outcome = StatusClass;
export const classify = statusClass;

const MAX_WAIT = 3e5;

/** `Retry-After` as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return;
  const ms = +header >= 0 ? +header * 1e3 : Date.parse(header) - now;
  return ms >= 0 ? Math.min(ms, 36e5) : ms === ms ? 0 : undefined;
}

/**
 * How long the whole destination waits after its `failures`-th consecutive failure.
 * Readable Retry-After wins. A 429 without one waits ≥ 2 s, doubling, plus jitter; anything else gets
 * exponential backoff with full jitter (base 1 s, capped at 5 min).
 */
export function retryDelay(failures: number, status: number, retryAfter?: string | null, random = Math.random): number {
  const told = parseRetryAfter(retryAfter);
  if (told !== undefined) return told;
  const base = Math.min(MAX_WAIT, (status == 429 ? 1e3 : 5e2) * 2 ** Math.max(1, failures));
  return status == 429 ? base + random() * base : random() * base;
}

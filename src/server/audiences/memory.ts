// Keeps a big sync inside its memory budget (≤ 256 MB peak RSS for a 1M-member audience). Each import job
// leaves megabytes of short-lived garbage (the 5 MB request body, its buffer, the job's member list); V8 lets
// that pile up in old space long before it collects, so the process balloons although the live set stays
// ~25 MB. A full collection after each confirmed job (one every ≥ 10,000 members) costs a few milliseconds
// and keeps the peak flat.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null | undefined;

function collector(): (() => void) | null {
  if (collect !== undefined) return collect;
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return (collect = existing);
  try {
    // Exposes V8's gc() to a fresh context only; the process's own globals are untouched.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  } catch {
    collect = null;
  }
  return collect;
}

let last = 0;

/** Collect garbage now, at most every `minIntervalMs`. */
export function releaseMemory(minIntervalMs = 250): void {
  const now = Date.now();
  if (now - last < minIntervalMs) return;
  last = now;
  collector()?.();
}

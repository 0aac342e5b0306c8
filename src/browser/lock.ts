// Only one tab flushes at a time. Web Locks where available; otherwise a lease in IndexedDB, taken with an atomic
// read-modify-write and expiring on its own if its tab dies mid-flush. The lease is not dead weight: `navigator.locks`
// exists only in secure contexts (a shop on plain http has none) and from Safari 15.4 and Firefox 96, while the
// snippet runs from Safari 14 and Firefox 79.
import type { KV } from './storage.js';

const NAME = 'klaviyo-relay-flush';
export const LEASE_MS = 3e4;

interface Lease {
  owner: string;
  until: number;
}

/** Runs `fn` if this tab gets the flush lock now; resolves at once, without running it, when another tab holds it. */
export function withFlushLock(kv: KV, tab: string, fn: () => Promise<void>): Promise<unknown> {
  const locks = navigator.locks;
  if (locks) return locks.request(NAME, { ifAvailable: true }, (lock) => lock && fn());
  return withLease(kv, tab, fn);
}

export async function withLease(kv: KV, tab: string, fn: () => Promise<void>): Promise<void> {
  // Taking, renewing and releasing are one rule: a lease that is free, expired or already ours becomes ours until
  // `until` (released without one); another tab's live lease is left alone.
  const claim = (until?: number) =>
    kv.update<Lease>(NAME, (l) => (!l || l.until < Date.now() || l.owner == tab ? until ? { owner: tab, until } : undefined : l));
  if ((await claim(Date.now() + LEASE_MS))?.owner != tab) return;
  // A long flush (a big outbox on a slow network) renews its lease so no other tab starts sending the same events.
  const renew = setInterval(() => claim(Date.now() + LEASE_MS), LEASE_MS / 3);
  try {
    await fn();
  } finally {
    clearInterval(renew);
    await claim();
  }
}

// @vitest-environment happy-dom
// The lease fallback used where Web Locks is missing (happy-dom has none, like some embedded webviews).
import { describe, it, expect, vi } from 'vitest';
import { freshBrowser } from './helpers.js';
import { openKV } from '../../src/browser/storage.js';
import { withFlushLock, withLease, LEASE_MS } from '../../src/browser/lock.js';
import { eventually } from '../support/wait-for.js';

/** Whether `take` ran its flush (it resolves either way). */
const ranFlush = async (take: (fn: () => Promise<void>) => Promise<unknown>) => {
  let ran = false;
  await take(async () => void (ran = true));
  return ran;
};

describe('flush lease (no Web Locks)', () => {
  it('only one tab holds it at a time; the other is turned away at once, and gets it after release', async () => {
    freshBrowser();
    expect((navigator as any).locks).toBeFalsy();
    const [tabA, tabB] = [openKV('klaviyo-relay', () => {}), openKV('klaviyo-relay', () => {})];
    let release!: () => void;
    const held = new Promise<void>((ok) => (release = ok));
    const order: string[] = [];
    const a = withFlushLock(tabA, 'A', async () => {
      order.push('A in');
      await held;
      order.push('A out');
    });
    await eventually(() => expect(order).toEqual(['A in']));
    await withFlushLock(tabB, 'B', async () => void order.push('B in'));
    expect(order).toEqual(['A in']);
    release();
    await a;
    await withFlushLock(tabB, 'B', async () => void order.push('B in'));
    expect(order).toEqual(['A in', 'A out', 'B in']);
  });

  it('a lease left by a tab that died expires', async () => {
    freshBrowser();
    const kv = openKV('klaviyo-relay', () => {});
    await kv.update('klaviyo-relay-flush', () => ({ owner: 'dead tab', until: Date.now() + LEASE_MS }));
    expect(await ranFlush((fn) => withLease(kv, 'B', fn))).toBe(false);
    await kv.update('klaviyo-relay-flush', () => ({ owner: 'dead tab', until: Date.now() - 1 }));
    expect(await ranFlush((fn) => withLease(kv, 'B', fn))).toBe(true);
    expect(await kv.get('klaviyo-relay-flush')).toBeUndefined();
  });

  it('uses Web Locks when the browser has them', async () => {
    freshBrowser();
    const request = vi.fn((_name: string, _opts: unknown, cb: (lock: unknown) => unknown) => Promise.resolve(cb({ name: 'x' })));
    vi.stubGlobal('navigator', { ...navigator, locks: { request } });
    const ran = vi.fn(async () => {});
    await withFlushLock(openKV('klaviyo-relay', () => {}), 'A', ran);
    expect(request).toHaveBeenCalledWith('klaviyo-relay-flush', { ifAvailable: true }, expect.any(Function));
    expect(ran).toHaveBeenCalledOnce();
    vi.unstubAllGlobals();
  });
});

describe('lease renewal', () => {
  it('a flush longer than the lease keeps renewing it, so another tab stays out', async () => {
    freshBrowser();
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const [tabA, tabB] = [openKV('klaviyo-relay', () => {}), openKV('klaviyo-relay', () => {})];
      let release!: () => void;
      const a = withLease(tabA, 'A', () => new Promise<void>((ok) => (release = ok)));
      await eventually(() => expect(release).toBeTypeOf('function'));
      for (let i = 0; i < 6; i++) {
        vi.advanceTimersByTime(LEASE_MS / 3); // 2 × LEASE_MS in all
        await eventually(async () => expect((await tabB.get<{ until: number }>('klaviyo-relay-flush'))!.until).toBeGreaterThan(Date.now()));
      }
      expect(await ranFlush((fn) => withLease(tabB, 'B', fn))).toBe(false);
      release();
      await a;
      expect(await ranFlush((fn) => withLease(tabB, 'B', fn))).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a tab whose lease another tab has taken over neither renews nor releases it', async () => {
    freshBrowser();
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const kv = openKV('klaviyo-relay', () => {});
      const lease = () => kv.get<{ owner: string; until: number }>('klaviyo-relay-flush');
      let release!: () => void;
      const a = withLease(kv, 'A', () => new Promise<void>((ok) => (release = ok)));
      await eventually(() => expect(release).toBeTypeOf('function'));
      // A stalled past its lease and B took it over.
      const taken = { owner: 'B', until: Date.now() + 10 * LEASE_MS };
      await kv.update('klaviyo-relay-flush', () => taken);
      vi.advanceTimersByTime(LEASE_MS / 3); // A's renewal tick
      await kv.update('klaviyo-relay-flush', (l) => l); // after A's renewal has committed
      expect(await lease()).toEqual(taken);
      release();
      await a;
      expect(await lease()).toEqual(taken);
    } finally {
      vi.useRealTimers();
    }
  });
});

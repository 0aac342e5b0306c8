import { describe, expect, it } from 'vitest';
import { createRateWindow } from '../../src/server/rate-window.js';
import { retryDelayMs } from '../../src/server/forwarder.js';

describe('client-side rate window', () => {
  it('lets the burst through, then waits for the one-second window to slide', async () => {
    const window = createRateWindow({ burst: 2, steady: 100 });
    const t0 = Date.now();
    await window.acquire();
    await window.acquire();
    expect(Date.now() - t0).toBeLessThan(100);
    await window.acquire();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
  });

  it('holds requests beyond the per-minute steady limit, and an abort releases the waiter', async () => {
    const window = createRateWindow({ burst: 10, steady: 2 });
    await window.acquire();
    await window.acquire();
    const abort = new AbortController();
    const waiting = window.acquire(abort.signal);
    setTimeout(() => abort.abort(new Error('stopped')), 50);
    await expect(waiting).rejects.toThrow('stopped');
  });
});

describe('retry delay', () => {
  it('doubles per attempt with jitter in [d/2, d) and never waits zero', () => {
    expect(retryDelayMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(retryDelayMs(3, 1000, 60_000, () => 0.999)).toBeLessThan(4000);
    expect(retryDelayMs(3, 1000, 60_000, () => 0)).toBe(2000);
    expect(retryDelayMs(20, 1000, 60_000, () => 0)).toBe(30_000);
  });
});

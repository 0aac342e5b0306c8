import { describe, it, expect } from 'vitest';
import { createRateLimiter } from '../../src/server/audiences/rate-limiter.js';

function fakeClock() {
  let t = 0;
  const sleeps: number[] = [];
  return { now: () => t, sleep: async (ms: number) => { sleeps.push(ms); t += ms; }, sleeps, get t() { return t; } };
}

describe('client-side rate limiter', () => {
  it('holds bulk imports to 10 per second and 150 per minute', async () => {
    const clock = fakeClock();
    const before = createRateLimiter(undefined, clock);
    const times: number[] = [];
    for (let i = 0; i < 160; i++) {
      await before('POST', '/api/profile-bulk-import-jobs');
      times.push(clock.t);
    }
    for (let i = 10; i < times.length; i++) expect(times[i] - times[i - 10]).toBeGreaterThanOrEqual(1000);
    for (let i = 150; i < times.length; i++) expect(times[i] - times[i - 150]).toBeGreaterThanOrEqual(60_000);
    expect(times[9]).toBe(0); // a burst of 10 goes at once
    expect(times[150]).toBe(60_000);
  });

  it('keeps endpoints apart and leaves unknown paths alone', async () => {
    const clock = fakeClock();
    const before = createRateLimiter(undefined, clock);
    for (let i = 0; i < 10; i++) await before('POST', '/api/profile-bulk-import-jobs');
    await before('GET', '/api/profile-bulk-import-jobs/01JOB'); // another endpoint, its own window
    await before('GET', '/api/something-else');
    expect(clock.t).toBe(0);
    await before('POST', '/api/profile-bulk-import-jobs');
    expect(clock.t).toBe(1000);
  });

  it('serialises concurrent callers of one endpoint', async () => {
    const clock = fakeClock();
    const before = createRateLimiter([{ operationId: 'x', method: 'GET', path: '/api/x/{id}', burst: 2, steady: 100 }], clock);
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => before('GET', `/api/x/${i}`).then(() => order.push(clock.t))));
    expect(order).toEqual([0, 0, 1000, 1000]);
  });
});

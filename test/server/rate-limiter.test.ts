// The client-side limiter on a clock the test moves. Klaviyo counts each operation per account in fixed 1 s and
// 60 s windows (https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling); counting each request from
// its send until its answer, in sliding windows, keeps every fixed window, wherever its boundary falls, within the
// limit. Answers come back at once here (`send`), unless a test holds one in flight.
import { describe, expect, it } from 'vitest';
import { createRateLimiter, systemClock } from '../../src/server/rate-limiter.js';
import { fakeClock } from '../support/fake-clock.js';

/** Acquire and answer at once: a request whose round trip takes no time. */
const send = async (limiter: ReturnType<typeof createRateLimiter>, operation: string | undefined) => (await limiter.acquire(operation))();

/** The most sends inside any window of `ms` starting at a send (what any fixed window of that length could see). */
function busiestWindow(times: number[], ms: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('client-side rate limiter', () => {
  it('keeps bulk_import_profiles within 10 per second and 150 per minute, in any window', async () => {
    const clock = fakeClock(0);
    const limiter = createRateLimiter(undefined, clock);
    const times: number[] = [];
    for (let i = 0; i < 320; i++) {
      await send(limiter, 'bulk_import_profiles');
      times.push(clock.now());
    }
    expect(times.slice(0, 10)).toEqual(Array(10).fill(0)); // a burst goes at once
    expect(busiestWindow(times, 1_000)).toBe(10);
    expect(busiestWindow(times, 60_000)).toBe(150);
    expect(times[150]).toBeGreaterThanOrEqual(60_000);
  });

  it('respects a daily cap where Klaviyo sets one (create_list: 150 a day)', async () => {
    const clock = fakeClock(0);
    const limiter = createRateLimiter({ create_list: { burst: 10, steady: 150, daily: 150 } }, clock);
    for (let i = 0; i < 150; i++) await send(limiter, 'create_list');
    const before = clock.now();
    await send(limiter, 'create_list');
    expect(clock.now()).toBeGreaterThanOrEqual(86_400_000);
    expect(before).toBeLessThan(86_400_000);
  });

  it('keeps operations apart and lets an operation it does not know pass', async () => {
    const clock = fakeClock(0);
    const limiter = createRateLimiter(undefined, clock);
    for (let i = 0; i < 10; i++) await send(limiter, 'bulk_create_events');
    await send(limiter, 'get_bulk_import_profiles_job');
    await send(limiter, undefined);
    await send(limiter, 'not_an_operation');
    expect(clock.now()).toBe(0);
    await send(limiter, 'bulk_create_events');
    expect(clock.now()).toBeGreaterThanOrEqual(1_000);
  });

  it('serves concurrent callers of one operation in turn', async () => {
    const clock = fakeClock(0);
    const limiter = createRateLimiter({ op: { burst: 2, steady: 100 } }, clock);
    const at: number[] = [];
    await Promise.all([0, 1, 2, 3].map(() => limiter.acquire('op').then((answered) => (at.push(clock.now()), answered()))));
    expect(at.slice(0, 2)).toEqual([0, 0]);
    expect(at[2]).toBeGreaterThanOrEqual(1_000);
    expect(at[3]).toBe(at[2]);
  });

  it('counts a slow request until its answer is back: Klaviyo may have counted it late', async () => {
    const clock = fakeClock(0);
    const limiter = createRateLimiter({ op: { burst: 1, steady: 100 } }, clock);
    const first = await limiter.acquire('op');
    let sentAt: number | undefined;
    const second = limiter.acquire('op').then((answered) => ((sentAt = clock.now()), answered));
    await Promise.resolve();
    clock.advance(4_000);
    await new Promise((r) => setImmediate(r));
    expect(sentAt).toBeUndefined(); // the first is still in flight
    first();
    (await second)();
    expect(sentAt).toBe(4_000 + 1_000 + 50);
  });

  it('holds an operation while it is paused (a 429 or RateLimit-Remaining: 0), and only that one', async () => {
    const clock = fakeClock(0);
    const limiter = createRateLimiter(undefined, clock);
    limiter.pause('create_event', 5_000);
    expect(limiter.pausedUntil('create_event')).toBe(5_000);
    await send(limiter, 'bulk_create_events');
    expect(clock.now()).toBe(0);
    await send(limiter, 'create_event');
    expect(clock.now()).toBe(5_000);
  });

  it('an abort releases a waiting caller with the reason, and the next caller still gets its turn', async () => {
    const limiter = createRateLimiter({ op: { burst: 1, steady: 1 } }, systemClock);
    await send(limiter, 'op');
    const abort = new AbortController();
    const waiting = limiter.acquire('op', abort.signal);
    abort.abort(new Error('stopped'));
    await expect(waiting).rejects.toThrow('stopped');
  });
});

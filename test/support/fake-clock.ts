// A clock the test moves: `now` reads virtual time and `sleep` advances it at once, so code that waits (a rate
// limiter, a retry backoff) runs instantly and every wait it asked for is recorded. Never the real clock.
import type { Clock } from '../../src/server/rate-limiter.js';

export interface FakeClock extends Clock {
  /** Every wait asked for, in order. */
  readonly sleeps: number[];
  set(t: number): void;
  advance(ms: number): void;
}

export function fakeClock(start = 1_800_000_000_000): FakeClock {
  let t = start;
  const sleeps: number[] = [];
  return {
    now: () => t,
    async sleep(ms, signal) {
      signal?.throwIfAborted();
      sleeps.push(ms);
      // Like a real timer, let everything already runnable run before time moves on.
      await new Promise((resolve) => setImmediate(resolve));
      t += ms;
    },
    sleeps,
    set: (at) => void (t = at),
    advance: (ms) => void (t += ms),
  };
}

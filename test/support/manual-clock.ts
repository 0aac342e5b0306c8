// A clock that moves only when a test advances it: timers fire in due order as time passes them.
import type { SchedulerClock } from '../../src/server/audiences/index.js';

export interface ManualClock extends SchedulerClock {
  /** Move time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void;
  /** Timers set and not yet fired or cancelled. */
  pending(): number;
  /** When the earliest pending timer falls due. */
  nextAt(): number | undefined;
}

export function manualClock(start: number): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock: ManualClock = {
    now: () => now,
    setTimer(fn, ms) {
      const id = seq++;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return () => void timers.delete(id);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
        if (!due) break;
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
      }
      now = until;
    },
    pending: () => timers.size,
    nextAt: () => Math.min(...[...timers.values()].map((t) => t.at)) || undefined,
  };
  return clock;
}

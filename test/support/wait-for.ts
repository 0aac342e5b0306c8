// The one way tests wait: poll an observable condition until it holds, never a bare sleep.
// Polling only decides how soon a test notices; a condition that never holds fails with what it waited for. The
// deadline is kept on the monotonic clock, which a test that fakes Date (an injected clock) does not move.
import { setTimeout as sleep } from 'node:timers/promises';

export async function waitFor<T>(check: () => Promise<T | undefined | false | null> | T | undefined | false | null, options: { timeoutMs?: number; what?: string; everyMs?: number } = {}): Promise<T> {
  const { timeoutMs = 15_000, what = 'condition', everyMs = 20 } = options;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

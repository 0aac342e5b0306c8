// The one way tests wait: poll an observable condition until it holds (waitFor), or an assertion until it passes
// (eventually), never a bare sleep.
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

/**
 * Polls an assertion (e.g. `() => expect(sent).toHaveLength(2)`) until it passes. At the deadline its last failure
 * is thrown, so the test reports the assertion's own diff rather than a timeout.
 */
export async function eventually(assertion: () => unknown, options: { timeoutMs?: number; what?: string; everyMs?: number } = {}): Promise<void> {
  let lastFailure: unknown;
  const passes = async () => {
    try {
      await assertion();
      return true;
    } catch (failure) {
      lastFailure = failure;
      return false;
    }
  };
  try {
    await waitFor(passes, { what: 'an assertion to pass', ...options });
  } catch (timeout) {
    throw lastFailure ?? timeout;
  }
}

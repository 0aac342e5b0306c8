// A client-side limiter that keeps our own requests inside Klaviyo's published per-endpoint limits (a burst per
// second and a steady rate per minute), so the forwarder seldom meets a 429 at all. Sliding windows: any fixed
// window Klaviyo counts in is then within the limit too. A small margin absorbs clock and network skew.
export interface WindowLimit {
  /** Requests per second. */
  burst: number;
  /** Requests per minute. */
  steady: number;
}

const MARGIN_MS = 100;

export function createRateWindow(limit: WindowLimit, now = () => Date.now()) {
  const sent: number[] = []; // request times within the last minute, oldest first
  let queue: Promise<void> = Promise.resolve();

  /** How long until one more request fits both windows (0: now). */
  function waitMs(): number {
    const t = now();
    while (sent.length && sent[0]! <= t - 60_000 - MARGIN_MS) sent.shift();
    let wait = 0;
    if (sent.length >= limit.steady) wait = sent[sent.length - limit.steady]! + 60_000 + MARGIN_MS - t;
    if (sent.length >= limit.burst) wait = Math.max(wait, sent[sent.length - limit.burst]! + 1_000 + MARGIN_MS - t);
    return Math.max(0, wait);
  }

  /** Resolve when a request may be sent; callers are served in order. Rejects when `signal` aborts. */
  function acquire(signal?: AbortSignal): Promise<void> {
    const turn = queue.then(async () => {
      for (let w = waitMs(); w > 0; w = waitMs()) await sleep(w, signal);
      sent.push(now());
    });
    queue = turn.catch(() => {});
    return turn;
  }

  return { acquire };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// Client-side rate limiter for the Klaviyo endpoints a sync calls, from Klaviyo's published per-endpoint limits
// (x-klaviyo-ratelimit in the OpenAPI spec; test/audiences/rate-limiter.test.ts checks them against it). Staying
// under them keeps a big sync from living on 429s; a 429 that still happens is honoured by the client.

export interface EndpointLimit {
  operationId: string;
  method: string;
  /** Path template as in the spec, e.g. `/api/lists/{id}`. */
  path: string;
  /** Requests per second and per minute. */
  burst: number;
  steady: number;
}

export const SYNC_ENDPOINT_LIMITS: EndpointLimit[] = [
  { operationId: 'get_lists', method: 'GET', path: '/api/lists', burst: 75, steady: 750 },
  { operationId: 'create_list', method: 'POST', path: '/api/lists', burst: 10, steady: 150 },
  { operationId: 'get_list', method: 'GET', path: '/api/lists/{id}', burst: 75, steady: 750 },
  { operationId: 'remove_profiles_from_list', method: 'DELETE', path: '/api/lists/{id}/relationships/profiles', burst: 10, steady: 150 },
  { operationId: 'get_profiles', method: 'GET', path: '/api/profiles', burst: 75, steady: 750 },
  { operationId: 'bulk_import_profiles', method: 'POST', path: '/api/profile-bulk-import-jobs', burst: 10, steady: 150 },
  { operationId: 'get_bulk_import_profiles_job', method: 'GET', path: '/api/profile-bulk-import-jobs/{job_id}', burst: 10, steady: 150 },
  { operationId: 'get_errors_for_bulk_import_profiles_job', method: 'GET', path: '/api/profile-bulk-import-jobs/{id}/import-errors', burst: 10, steady: 150 },
  { operationId: 'bulk_subscribe_profiles', method: 'POST', path: '/api/profile-subscription-bulk-create-jobs', burst: 75, steady: 750 },
  { operationId: 'bulk_unsubscribe_profiles', method: 'POST', path: '/api/profile-subscription-bulk-delete-jobs', burst: 75, steady: 750 },
];

const templateRegex = (path: string) => new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`);

/** Sliding-window log per endpoint: at most `burst` requests in any 1 s and `steady` in any 60 s. */
export function createRateLimiter(
  limits: EndpointLimit[] = SYNC_ENDPOINT_LIMITS,
  clock: { now(): number; sleep(ms: number): Promise<void> } = { now: Date.now, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
) {
  const matchers = limits.map((l) => ({ limit: l, re: templateRegex(l.path), sent: [] as number[], queue: Promise.resolve() }));

  /** Milliseconds until one more request fits, given the send times of the last minute. */
  function waitFor(sent: number[], limit: EndpointLimit, now: number): number {
    while (sent.length && sent[0] <= now - 60_000) sent.shift();
    let wait = 0;
    if (sent.length >= limit.steady) wait = sent[sent.length - limit.steady] + 60_000 - now;
    if (sent.length >= limit.burst) wait = Math.max(wait, sent[sent.length - limit.burst] + 1_000 - now);
    return wait;
  }

  async function take(m: (typeof matchers)[number]) {
    for (;;) {
      const wait = waitFor(m.sent, m.limit, clock.now());
      if (wait <= 0) break;
      await clock.sleep(wait);
    }
    m.sent.push(clock.now());
  }

  return function beforeRequest(method: string, path: string): Promise<void> {
    const m = matchers.find((x) => x.limit.method === method && x.re.test(path));
    if (!m) return Promise.resolve();
    // Serialise callers of one endpoint so concurrent requests take turns through the window.
    const turn = m.queue.then(() => take(m));
    m.queue = turn.catch(() => {});
    return turn;
  };
}

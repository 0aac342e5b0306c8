// The one way the server talks to Klaviyo's server API (`/api/*`), used by forwarding, audience syncs and the CLI.
// Every attempt passes the per-operation limiter first; an answer is classified (retry on a network error,
// timeout, 408, 429 or 5xx; any other 4xx is final); a retry waits for Retry-After when Klaviyo gives one, else an
// exponential backoff with full jitter, never less than a floor. The private key never reaches an error or a log.
import { KLAVIYO_REVISION, DEFAULT_KLAVIYO_URL } from '../shared/revision.js';
import { KLAVIYO_OPERATIONS } from '../shared/klaviyo-limits.js';
import { statusClass } from '../shared/klaviyo-status.js';
import { createRateLimiter, systemClock, type Clock, type RateLimiter } from './rate-limiter.js';

export interface KlaviyoErrorItem {
  id?: string;
  status?: number | string;
  code?: string;
  title?: string;
  detail?: string;
  source?: { pointer?: string; parameter?: string };
  meta?: Record<string, unknown>;
}

export class KlaviyoError extends Error {
  constructor(
    readonly status: number,
    readonly errors: KlaviyoErrorItem[],
    readonly retryAfterMs?: number,
  ) {
    super(`Klaviyo answered ${status}${errors[0]?.detail ? `: ${errors[0].detail}` : status ? '' : ' (network error or timeout)'}`);
    this.name = 'KlaviyoError';
  }
  /** A network error or timeout (status 0), 408, 429 or 5xx: worth another attempt. Other 4xx are final. */
  get retryable(): boolean {
    return statusClass(this.status) === 'retry';
  }
  /** 401/403: the key is wrong or lacks a scope. Nothing about the request itself is wrong. */
  get keyProblem(): boolean {
    return this.status === 401 || this.status === 403;
  }
  /**
   * The profile Klaviyo names when an identify's identifiers sit on two profiles: 409 `duplicate_profile` with
   * `errors[0].meta.duplicate_profile_id` (https://github.com/klaviyo/klaviyo-api-node/issues/75).
   */
  get duplicateProfileId(): string | undefined {
    const id = this.errors.find((e) => e.code === 'duplicate_profile')?.meta?.duplicate_profile_id;
    return this.status === 409 && typeof id === 'string' ? id : undefined;
  }
  get detail(): string {
    return this.errors.map((e) => e.detail || e.title || e.code).filter(Boolean).join('; ') || this.message;
  }
}

/** One policy for every retry the server makes, in a request loop or by rescheduling a durable item. */
export interface RetryPolicy {
  /** Attempts of one request, the first included (request loops only; the outbox retries durably). */
  maxAttempts: number;
  /** Backoff ceiling before jitter for the first retry; doubles per attempt up to capMs. */
  baseMs: number;
  capMs: number;
  /** No retry comes sooner, so `Retry-After: 0` or an unlucky jitter cannot turn into a tight loop. */
  floorMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 6, baseMs: 1_000, capMs: 5 * 60_000, floorMs: 250 };

/** A Retry-After beyond this is treated as this: an HTTP date far ahead must not park work for days. */
const MAX_RETRY_AFTER_MS = 60 * 60_000;

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - now;
  return Number.isNaN(ms) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/**
 * How long to wait before attempt `attempt + 1` after `attempt` failed attempts ended with `error`: Klaviyo's
 * Retry-After when given, else full jitter, a random wait in [0, min(cap, base·2^(attempt-1))), and never below
 * the floor.
 */
export function retryWaitMs(attempt: number, error: { retryAfterMs?: number }, policy: RetryPolicy = DEFAULT_RETRY_POLICY, random = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(policy.floorMs, Math.round(error.retryAfterMs ?? random() * ceiling));
}

const operations = Object.entries(KLAVIYO_OPERATIONS).map(([id, op]) => ({
  id,
  method: op.method as string,
  pattern: new RegExp(`^${op.path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
}));

/** The operationId of a request, from its method and path (undefined for a path the table does not know). */
export function operationOf(method: string, path: string): string | undefined {
  const bare = path.split('?')[0]!;
  return operations.find((o) => o.method === method && o.pattern.test(bare))?.id;
}

export interface KlaviyoClientOptions {
  privateKey: string;
  baseUrl?: string;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Shared by everything that uses this client: Klaviyo's limits are per account. */
  limiter?: RateLimiter;
  clock?: Clock;
  random?: () => number;
  onRetry?: (info: { method: string; path: string; attempt: number; waitMs: number; error: KlaviyoError }) => void;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Overrides the policy's maxAttempts for this call (1: the caller retries, e.g. the durable outbox). */
  maxAttempts?: number;
  signal?: AbortSignal;
}

export type KlaviyoClient = ReturnType<typeof createKlaviyoClient>;

export function createKlaviyoClient(options: KlaviyoClientOptions) {
  const baseUrl = (options.baseUrl || DEFAULT_KLAVIYO_URL).replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const limiter = options.limiter ?? createRateLimiter(undefined, clock);
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function attempt(method: string, path: string, operation: string | undefined, opts: RequestOptions): Promise<any> {
    const url = new URL(baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      Authorization: `Klaviyo-API-Key ${options.privateKey}`,
      revision: KLAVIYO_REVISION,
      accept: 'application/vnd.api+json',
    };
    if (opts.body !== undefined) headers['content-type'] = 'application/vnd.api+json';
    const signals = [AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])];
    let res: Response;
    try {
      res = await doFetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      // Never echo the underlying error object: some fetch errors carry the request, headers included.
      throw new KlaviyoError(0, [{ title: 'network', detail: `request failed: ${(err as Error)?.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : 'connection error'}` }]);
    }
    const text = await res.text();
    let json: any = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (res.ok) {
      // The steady window is spent (another process may share the account): wait for its reset.
      // https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling ("RateLimit-Remaining")
      const reset = Number(res.headers.get('ratelimit-reset'));
      if (res.headers.get('ratelimit-remaining') === '0' && reset > 0) limiter.pause(operation, clock.now() + reset * 1000);
      return json;
    }
    throw new KlaviyoError(res.status, Array.isArray(json?.errors) ? json.errors : [{ detail: text.slice(0, 500) || res.statusText }], parseRetryAfter(res.headers.get('retry-after'), clock.now()));
  }

  async function request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const maxAttempts = opts.maxAttempts ?? policy.maxAttempts;
    const operation = operationOf(method, path);
    for (let n = 1; ; n++) {
      const answered = await limiter.acquire(operation, opts.signal);
      try {
        const body = await attempt(method, path, operation, opts);
        answered();
        return body;
      } catch (err) {
        answered();
        if (!(err instanceof KlaviyoError) || !err.retryable) throw err;
        const waitMs = retryWaitMs(n, err, policy, random);
        // A 429 speaks for the operation's shared window, not just this request.
        if (err.status === 429) limiter.pause(operation, clock.now() + waitMs);
        if (n >= maxAttempts) throw err;
        options.onRetry?.({ method, path, attempt: n, waitMs, error: err });
        await clock.sleep(waitMs, opts.signal);
      }
    }
  }

  return {
    baseUrl,
    limiter,
    clock,
    /** The wait before the next attempt under this client's policy (for callers that retry on their own). */
    retryWaitMs: (attempt: number, error: { retryAfterMs?: number }) => retryWaitMs(attempt, error, policy, random),
    request,
    get: <T = any>(path: string, query?: RequestOptions['query'], opts?: RequestOptions) => request<T>('GET', path, { ...opts, query }),
    post: <T = any>(path: string, body: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, body }),
    patch: <T = any>(path: string, body: unknown, opts?: RequestOptions) => request<T>('PATCH', path, { ...opts, body }),
    delete: <T = any>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('DELETE', path, { ...opts, body }),
  };
}

// A small typed fetch client for Klaviyo's server API (`/api/*`). It adds auth and the revision, retries what is
// retryable (429 honouring Retry-After, 5xx, timeouts, network errors) and never lets the private key escape
// into an error message or log line.
import { KLAVIYO_REVISION, DEFAULT_KLAVIYO_URL } from '../shared/revision.js';

export interface KlaviyoErrorItem {
  id?: string;
  status?: number | string;
  code?: string;
  title?: string;
  detail?: string;
  source?: { pointer?: string; parameter?: string };
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
  /** 408, 429, 5xx and network failures (status 0) are worth retrying; other 4xx are final. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
  get detail(): string {
    return this.errors.map((e) => e.detail || e.title || e.code).filter(Boolean).join('; ') || this.message;
  }
}

export interface KlaviyoClientOptions {
  privateKey: string;
  baseUrl?: string;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  /** Attempts for retryable failures, the first included. 1 disables retries. */
  maxAttempts?: number;
  /** Cap on one backoff wait. */
  maxBackoffMs?: number;
  /** Waits before each request, e.g. a client-side rate limiter keyed by operation. */
  beforeRequest?: (method: string, path: string) => Promise<void> | void;
  onRetry?: (info: { method: string; path: string; attempt: number; waitMs: number; error: KlaviyoError }) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Overrides the client's maxAttempts for this call. */
  maxAttempts?: number;
  signal?: AbortSignal;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Exponential backoff with full jitter: a random wait in [0, min(cap, base·2^attempt)). */
export function backoffMs(attempt: number, baseMs = 500, capMs = 30_000, random = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

export type KlaviyoClient = ReturnType<typeof createKlaviyoClient>;

export function createKlaviyoClient(options: KlaviyoClientOptions) {
  const baseUrl = (options.baseUrl || DEFAULT_KLAVIYO_URL).replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? defaultSleep;
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function attempt(method: string, path: string, opts: RequestOptions): Promise<any> {
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
    if (res.ok) return json;
    throw new KlaviyoError(res.status, Array.isArray(json?.errors) ? json.errors : [{ detail: text.slice(0, 500) || res.statusText }], parseRetryAfter(res.headers.get('retry-after')));
  }

  async function request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const maxAttempts = opts.maxAttempts ?? options.maxAttempts ?? 6;
    for (let n = 0; ; n++) {
      await options.beforeRequest?.(method, path);
      try {
        return await attempt(method, path, opts);
      } catch (err) {
        if (!(err instanceof KlaviyoError) || !err.retryable || n + 1 >= maxAttempts) throw err;
        const waitMs = Math.min(options.maxBackoffMs ?? 60_000, err.retryAfterMs ?? backoffMs(n));
        options.onRetry?.({ method, path, attempt: n + 1, waitMs, error: err });
        await sleep(waitMs);
      }
    }
  }

  return {
    baseUrl,
    request,
    get: <T = any>(path: string, query?: RequestOptions['query'], opts?: RequestOptions) => request<T>('GET', path, { ...opts, query }),
    post: <T = any>(path: string, body: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, body }),
    delete: <T = any>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('DELETE', path, { ...opts, body }),
  };
}

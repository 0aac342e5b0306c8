// The one Klaviyo transport, over real HTTP on loopback against a server that answers from a script, on a clock
// the test moves. Classes follow https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling: 429 with
// Retry-After (seconds), 5xx and timeouts are retried; other 4xx are final; RateLimit-* headers on 2xx answers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createKlaviyoClient, DEFAULT_RETRY_POLICY, KlaviyoError, parseRetryAfter, retryWaitMs } from '../../src/server/klaviyo-client.js';
import { createRateLimiter } from '../../src/server/rate-limiter.js';
import { fakeClock } from '../support/fake-clock.js';

type Answer = { status: number; headers?: Record<string, string>; body?: unknown } | 'drop';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A loopback server answering each request with the next scripted answer (then 200 {}), recording requests. */
async function scripted(answers: Answer[]) {
  const seen: { method: string; url: string }[] = [];
  server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url! });
    req.resume();
    const a = answers.shift() ?? { status: 200, body: { data: [] } };
    if (a === 'drop') return req.socket.destroy();
    res.writeHead(a.status, { 'content-type': 'application/vnd.api+json', ...a.headers });
    res.end(JSON.stringify(a.body ?? (a.status < 300 ? { data: [] } : { errors: [{ status: a.status, code: 'x', detail: `answer ${a.status}` }] })));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, seen };
}

const KEY = 'pk_transportTestKey0123456789';

describe('retry policy', () => {
  it('waits Retry-After when Klaviyo gives one, else full jitter under a doubling ceiling, never below the floor', () => {
    const p = DEFAULT_RETRY_POLICY;
    expect(retryWaitMs(1, { retryAfterMs: 3_000 }, p, () => 0.5)).toBe(3_000);
    expect(retryWaitMs(1, { retryAfterMs: 0 }, p)).toBe(250);
    expect(retryWaitMs(1, {}, p, () => 0)).toBe(250);
    expect(retryWaitMs(1, {}, p, () => 0.999)).toBe(999);
    expect(retryWaitMs(3, {}, p, () => 0.999)).toBe(3_996);
    expect(retryWaitMs(3, {}, p, () => 0.5)).toBe(2_000);
    expect(retryWaitMs(30, {}, p, () => 0.999)).toBe(299_700);
  });

  it('reads Retry-After as seconds or an HTTP date, and ignores what it cannot read', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2_000);
    expect(parseRetryAfter('Tue, 01 Dec 2026 10:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('Tue, 01 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('999999', now)).toBe(3_600_000);
  });
});

describe('Klaviyo transport', () => {
  it('retries a network error, 408, 429 (after its Retry-After) and 5xx, then returns the answer', async () => {
    const { url, seen } = await scripted(['drop', { status: 408 }, { status: 429, headers: { 'retry-after': '7' } }, { status: 503 }, { status: 200, body: { data: { id: 'E1' } } }]);
    const clock = fakeClock(0);
    const client = createKlaviyoClient({ privateKey: KEY, baseUrl: url, clock, random: () => 0 });
    expect(await client.post('/api/events', { data: {} })).toEqual({ data: { id: 'E1' } });
    expect(seen).toHaveLength(5);
    expect(clock.sleeps).toEqual([250, 250, 7_000, 250]);
  });

  it('treats other 4xx as final: one attempt, the error carries Klaviyo detail and never the key', async () => {
    const { url, seen } = await scripted([{ status: 400, body: { errors: [{ code: 'invalid', detail: 'bad metric' }] } }]);
    const client = createKlaviyoClient({ privateKey: KEY, baseUrl: url, clock: fakeClock(0) });
    const err = await client.post('/api/events', {}).catch((e) => e);
    expect(err).toBeInstanceOf(KlaviyoError);
    expect(err).toMatchObject({ status: 400, retryable: false, detail: 'bad metric' });
    expect(String(err.message) + JSON.stringify(err)).not.toContain(KEY);
    expect(seen).toHaveLength(1);
  });

  it('gives up after the policy\'s attempts with the last error', async () => {
    const { url, seen } = await scripted(Array(10).fill({ status: 502 }));
    const client = createKlaviyoClient({ privateKey: KEY, baseUrl: url, clock: fakeClock(0), retry: { maxAttempts: 3 } });
    await expect(client.get('/api/lists')).rejects.toMatchObject({ status: 502 });
    expect(seen).toHaveLength(3);
  });

  it('passes the limiter on EVERY attempt, retries included', async () => {
    const { url } = await scripted([{ status: 503 }, { status: 200 }]);
    const clock = fakeClock(0);
    const limiter = createRateLimiter({ create_event: { burst: 1, steady: 100 } }, clock);
    const client = createKlaviyoClient({ privateKey: KEY, baseUrl: url, clock, limiter, random: () => 0 });
    await client.post('/api/events', {});
    // 250 ms backoff, then the limiter holds the retry until a second has passed since the first attempt.
    expect(clock.sleeps).toEqual([250, 800]);
    expect(clock.now()).toBe(1_050);
  });

  it('a 429 pauses the whole operation, and RateLimit-Remaining: 0 holds it until RateLimit-Reset', async () => {
    const { url } = await scripted([
      { status: 429, headers: { 'retry-after': '3' } },
      { status: 200, headers: { 'ratelimit-limit': '150', 'ratelimit-remaining': '0', 'ratelimit-reset': '40' } },
    ]);
    const clock = fakeClock(0);
    const client = createKlaviyoClient({ privateKey: KEY, baseUrl: url, clock, retry: { maxAttempts: 1 } });
    await expect(client.post('/api/event-bulk-create-jobs', {})).rejects.toMatchObject({ status: 429, retryAfterMs: 3_000 });
    expect(client.limiter.pausedUntil('bulk_create_events')).toBe(3_000);
    clock.set(3_000);
    await client.post('/api/event-bulk-create-jobs', {});
    expect(client.limiter.pausedUntil('bulk_create_events')).toBe(43_000);
    expect(client.limiter.pausedUntil('create_event')).toBe(0);
  });

  it('an abort during a backoff rejects with the caller\'s reason', async () => {
    const { url } = await scripted([{ status: 503 }]);
    const abort = new AbortController();
    const client = createKlaviyoClient({
      privateKey: KEY, baseUrl: url,
      onRetry: () => abort.abort(new Error('interrupted; the next run resumes')),
    });
    await expect(client.get('/api/lists', undefined, { signal: abort.signal })).rejects.toThrow('interrupted; the next run resumes');
  });

  it('401 and 403 are key problems, not request problems', () => {
    expect(new KlaviyoError(401, []).keyProblem).toBe(true);
    expect(new KlaviyoError(403, []).keyProblem).toBe(true);
    expect(new KlaviyoError(400, []).keyProblem).toBe(false);
  });
});

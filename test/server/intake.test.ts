import { afterEach, describe, expect, it } from 'vitest';
import type { RelayServer } from '../../src/server/index.js';
import { ADMIN_TOKEN, PRIVATE_KEY, PUBLIC_KEY, SHOP, batch, postEvents, startServer, wireEvent } from './helpers.js';

let server: RelayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(...args: Parameters<typeof startServer>) {
  const started = await startServer(...args);
  server = started.server;
  return started.url;
}

const eventCount = async () => (await server!.store.counts()).events;

describe('POST /v1/events', () => {
  it('stores a valid batch before answering 202 and echoes the allowed origin', async () => {
    const url = await start();
    const res = await postEvents(url, batch([wireEvent(), wireEvent({ route: 'client', name: 'Viewed Product' })]), { origin: SHOP });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 2, rejected: [] });
    expect(res.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(res.headers.get('access-control-expose-headers')).toMatch(/retry-after/i);
    expect(await eventCount()).toBe(2);
    // Only the server-routed event waits in the forwarding outbox.
    expect((await server!.store.counts()).outbox.pending + (await server!.store.counts()).outbox.inflight).toBe(1);
  });

  it('accepts text/plain carrying JSON (no preflight needed)', async () => {
    const url = await start();
    const res = await postEvents(url, batch([wireEvent()]), { 'content-type': 'text/plain;charset=UTF-8', origin: SHOP });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 1, rejected: [] });
  });

  it('rejects the bad events of a batch by index and keeps the good ones', async () => {
    const url = await start();
    const events = [
      wireEvent(),
      wireEvent({ profile: { email: 'not-an-email' } }),
      wireEvent({ name: 'x'.repeat(129) }),
      { ...wireEvent(), unique_id: undefined },
      wireEvent({ profile: {} }),
      wireEvent({ time: 'yesterday' }),
      wireEvent({ type: 'identify', name: undefined, profile: { anonymous_id: 'a-2', email: 'b@example.com', first_name: 'Bo' } }),
    ];
    const res = await postEvents(url, batch(events));
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body.accepted).toBe(2);
    expect(body.rejected.map((r: any) => r.index)).toEqual([1, 2, 3, 4, 5]);
    expect(body.rejected[0].error).toMatch(/profile\.email/);
    expect(body.rejected[1].error).toMatch(/name: must be at most 128/);
    expect(body.rejected[2].error).toMatch(/unique_id/);
    expect(body.rejected[3].error).toMatch(/profile: needs at least one identifier/);
    expect(body.rejected[4].error).toMatch(/time/);
    expect(await eventCount()).toBe(2);
  });

  it('ignores a resent unique_id but still counts it accepted', async () => {
    const url = await start();
    const ev = wireEvent();
    expect(await (await postEvents(url, batch([ev, ev]))).json()).toEqual({ accepted: 2, rejected: [] });
    expect(await (await postEvents(url, batch([ev]))).json()).toEqual({ accepted: 1, rejected: [] });
    expect(await eventCount()).toBe(1);
    expect((await server!.store.listOutbox()).length).toBe(1);
  });

  it('answers 400 with a JSON error for malformed JSON, writing nothing', async () => {
    const url = await start();
    for (const type of ['application/json', 'text/plain']) {
      const res = await postEvents(url, '{"public_key": "Ab12Cd", "events": [', { 'content-type': type });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatch(/malformed JSON/);
    }
    const res = await postEvents(url, { events: 'nope' });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/public_key/);
    expect(await eventCount()).toBe(0);
  });

  it('answers 413 for a body over 1 MiB and for more than 100 events, writing nothing', async () => {
    const url = await start();
    const big = wireEvent({ properties: { blob: 'x'.repeat(1_048_576) } });
    const tooBig = await postEvents(url, batch([wireEvent(), big]));
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json()).error).toMatch(/1 MiB/);

    const tooMany = await postEvents(url, batch(Array.from({ length: 101 }, () => wireEvent())));
    expect(tooMany.status).toBe(413);
    expect((await tooMany.json()).error).toMatch(/at most 100/);
    expect(await eventCount()).toBe(0);

    const hundred = await postEvents(url, batch(Array.from({ length: 100 }, () => wireEvent())));
    expect(hundred.status).toBe(202);
  });

  it('answers 403 for an unknown origin and for another public key, writing nothing', async () => {
    const url = await start();
    const res = await postEvents(url, batch([wireEvent()]), { origin: 'https://evil.example' });
    expect(res.status).toBe(403);
    expect((await res.json()).error).toMatch(/allowedOrigins/);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();

    const wrongKey = await postEvents(url, { public_key: 'OTHER', events: [wireEvent()] }, { origin: SHOP });
    expect(wrongKey.status).toBe(403);
    expect(await eventCount()).toBe(0);
  });

  it('rate-limits per IP with 429, Retry-After and CORS headers the snippet can read', async () => {
    const url = await start({ rateLimit: { max: 3, windowMs: 60_000 } });
    for (let i = 0; i < 3; i++) expect((await postEvents(url, batch([wireEvent()]), { origin: SHOP })).status).toBe(202);
    const limited = await postEvents(url, batch([wireEvent()]), { origin: SHOP });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect((await limited.json()).error).toMatch(/too many requests/);
    expect(await eventCount()).toBe(3);
  });

  it('behind a trusted proxy, limits each client address (X-Forwarded-For) separately', async () => {
    const url = await start({ rateLimit: { max: 1, windowMs: 60_000 } }, { trustProxy: true });
    const from = (ip: string) => postEvents(url, batch([wireEvent()]), { 'x-forwarded-for': ip });
    expect((await from('203.0.113.1')).status).toBe(202);
    expect((await from('203.0.113.2')).status).toBe(202);
    expect((await from('203.0.113.1')).status).toBe(429);
  });
});

describe('CORS preflight', () => {
  const preflight = (url: string, origin: string) =>
    fetch(`${url}/v1/events`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });

  it('allows an allowlisted origin by echoing it, never *', async () => {
    const url = await start();
    const res = await preflight(url, SHOP);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/content-type/i);
    expect(res.headers.get('vary')).toMatch(/origin/i);
  });

  it('denies another origin with a JSON 403', async () => {
    const url = await start();
    const res = await preflight(url, 'https://shop.example.evil.com');
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect((await res.json()).error).toMatch(/not allowed/);
  });
});

describe('GET /v1/config', () => {
  it('returns the workflow with an ETag, 304 on If-None-Match, and never a secret', async () => {
    const url = await start();
    const res = await fetch(`${url}/v1/config?key=${PUBLIC_KEY}`, { headers: { origin: SHOP } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(SHOP);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ workflow: { default: 'client', events: { 'Placed Order': 'server', 'Viewed Product': 'client' } } });
    expect(text).not.toContain(PRIVATE_KEY);
    expect(text).not.toContain(ADMIN_TOKEN);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^".+"$/);

    const again = await fetch(`${url}/v1/config?key=${PUBLIC_KEY}`, { headers: { 'if-none-match': `W/${etag}` } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    const changed = await fetch(`${url}/v1/config?key=${PUBLIC_KEY}`, { headers: { 'if-none-match': '"stale"' } });
    expect(changed.status).toBe(200);
  });

  it('answers 404 for an unknown key and 400 without one', async () => {
    const url = await start();
    const res = await fetch(`${url}/v1/config?key=NOPE`);
    expect(res.status).toBe(404);
    expect((await res.json()).error).toMatch(/NOPE/);
    expect((await fetch(`${url}/v1/config`)).status).toBe(400);
  });
});

describe('admin scope and health', () => {
  it('answers 401 without or with a wrong Bearer token', async () => {
    const url = await start();
    expect((await fetch(`${url}/v1/admin/audiences`)).status).toBe(401);
    const wrong = await fetch(`${url}/v1/admin/audiences`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    const right = await fetch(`${url}/v1/admin/audiences`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(right.status).not.toBe(401);
  });

  it('says RELAY_ADMIN_TOKEN is unset when no token is configured', async () => {
    const url = await start({}, { adminToken: '' });
    const res = await fetch(`${url}/v1/admin/audiences`, { headers: { authorization: 'Bearer anything' } });
    expect(res.status).toBe(401);
    expect((await res.json()).error).toMatch(/RELAY_ADMIN_TOKEN is unset/);
  });

  it('GET /healthz answers ok from any origin', async () => {
    const url = await start();
    const res = await fetch(`${url}/healthz`, { headers: { origin: 'https://monitor.example' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', store: 'ok', forwarding: 'on' });
  });
});

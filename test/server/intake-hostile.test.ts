// Hostile or broken input at intake costs only itself: prototype keys, absurd nesting, Klaviyo's ingestion
// limits, and a failing store that /healthz must report.
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import type { RelayServer } from '../../src/server/index.js';
import Fastify from 'fastify';
import { parseConfig } from '../../src/server/config.js';
import { registerPublicRoutes, STORE_FAILURE_REPORTED_MS } from '../../src/server/routes/public.js';
import { openDatabase } from '../../src/server/store/db.js';
import { createSqliteStore } from '../../src/server/store/sqlite.js';
import { SHOP, baseConfig, batch, postEvents, startServer, wireEvent } from './helpers.js';
import { createTestDatabase } from '../support/postgres.js';

let server: RelayServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start() {
  const started = await startServer();
  server = started.server;
  return started.url;
}

const storedProperties = () =>
  (server!.db!.prepare('SELECT properties FROM events ORDER BY id').pluck().all() as string[]).map((p) => JSON.parse(p));

/** A batch as raw JSON text, with the good event first and `badEvent` (already JSON) second. */
const rawBatch = (badEvent: string) => `{"public_key":"Ab12Cd","events":[${JSON.stringify(wireEvent())},${badEvent}]}`;

describe('prototype keys in an event', () => {
  const poisoned = [
    ['__proto__ in properties', '{"__proto__":{"polluted":true},"ok":1}'],
    ['constructor.prototype deep inside properties', '{"a":{"b":[{"constructor":{"prototype":{"polluted":true}}}]},"ok":1}'],
    ['a unicode-escaped __proto__', '{"\\u005f_proto__":{"polluted":true},"ok":1}'],
  ];

  for (const [what, properties] of poisoned) {
    for (const type of ['application/json', 'text/plain;charset=UTF-8']) {
      it(`strips ${what} (${type}) and keeps the whole batch`, async () => {
        const url = await start();
        const ev = JSON.stringify(wireEvent()).replace(/"properties":\{[^}]*\}/, `"properties":${properties}`);
        const res = await postEvents(url, rawBatch(ev), { 'content-type': type, origin: SHOP });
        expect(res.status).toBe(202);
        expect(await res.json()).toEqual({ accepted: 2, rejected: [] });
        const stored = storedProperties()[1];
        expect(stored.ok).toBe(1);
        expect(JSON.stringify(stored)).not.toContain('polluted');
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      });
    }
  }

  it('strips a __proto__ in the profile too', async () => {
    const url = await start();
    const ev = wireEvent();
    const text = JSON.stringify(ev).replace('"profile":{', '"profile":{"__proto__":{"email":"evil@example.com"},');
    const res = await postEvents(url, `{"public_key":"Ab12Cd","events":[${text}]}`);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 1, rejected: [] });
    expect(server!.db!.prepare('SELECT email FROM profiles').pluck().all()).toEqual([ev.profile.email]);
  });
});

describe('absurd nesting', () => {
  it('rejects only the deeply nested event by index, never a 503', async () => {
    const url = await start();
    const depth = 5000;
    const deep = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const ev = JSON.stringify(wireEvent()).replace(/"properties":\{[^}]*\}/, `"properties":${deep}`);
    for (const type of ['application/json', 'text/plain']) {
      const res = await postEvents(url, rawBatch(ev), { 'content-type': type });
      expect(res.status).toBe(202);
      const body = await res.json();
      expect(body.accepted).toBe(1);
      expect(body.rejected).toEqual([{ index: 1, error: expect.stringMatching(/properties: .*nested more than 10 levels/) }]);
    }
    expect(storedProperties()).toHaveLength(2);
  });

  it('rejects deep nesting in profile properties the same way', async () => {
    const url = await start();
    let deep: unknown = 'x';
    for (let i = 0; i < 3000; i++) deep = [deep];
    const res = await postEvents(url, batch([wireEvent(), wireEvent({ profile: { email: 'a@example.com', properties: { deep } } })]));
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body.accepted).toBe(1);
    expect(body.rejected).toEqual([{ index: 1, error: expect.stringMatching(/profile\.properties: .*nested more than 10 levels/) }]);
  });
});

// Klaviyo's ingestion limits: https://developers.klaviyo.com/en/docs/rate-limits-and-error-handling ("Ingestion limits").
describe("Klaviyo's ingestion limits, per event at intake", () => {
  const year = 365 * 24 * 3600 * 1000;
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['301 properties', { properties: Object.fromEntries(Array.from({ length: 301 }, (_, i) => [`p${i}`, i])) }, /properties: more than 300 properties/],
    ['a 100 kB+ field', { properties: { note: 'x'.repeat(100_001) } }, /properties: a field is larger than 100000 bytes/],
    ['an array of 4,001 items', { properties: { items: Array.from({ length: 4001 }, (_, i) => i) } }, /properties: an array has more than 4000 items/],
    ['11 levels of nesting', { properties: { a: { b: { c: { d: { e: { f: { g: { h: { i: { j: { k: 1 } } } } } } } } } } } }, /properties: .*nested more than 10 levels/],
    ['a time before 2000', { time: '1999-12-31T23:59:59.000Z' }, /time: the event time is before 2000-01-01/],
    ['a time more than a year ahead', { time: new Date(Date.now() + 2 * year).toISOString() }, /time: the event time is more than one year ahead/],
    ['a 100 kB+ profile trait', { profile: { email: 'a@example.com', properties: { bio: 'é'.repeat(50_001) } } }, /profile\.properties: a field is larger than 100000 bytes/],
  ];

  it('rejects each event past a limit by index, naming the limit, and keeps the rest', async () => {
    const url = await start();
    const events = [wireEvent(), ...cases.map(([, overrides]) => wireEvent(overrides)), wireEvent()];
    const res = await postEvents(url, batch(events));
    expect(res.status).toBe(202);
    const body = await res.json();
    expect(body.accepted).toBe(2);
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual(cases.map((_, i) => i + 1));
    cases.forEach(([what, , error], i) => expect(body.rejected[i].error, what).toMatch(error));
  });

  it('accepts an event exactly at every limit', async () => {
    const url = await start();
    let nested: unknown = 1;
    for (let i = 0; i < 9; i++) nested = { n: nested };
    const properties = {
      ...Object.fromEntries(Array.from({ length: 297 }, (_, i) => [`p${i}`, i])),
      note: 'x'.repeat(100_000),
      items: Array.from({ length: 4000 }, (_, i) => i),
      nested,
    };
    const res = await postEvents(url, batch([wireEvent({ properties, time: '2000-01-01T00:00:00.000Z' })]));
    expect(await res.json()).toEqual({ accepted: 1, rejected: [] });
  });
});

describe('a failing store', () => {
  it('answers intake 503 with Retry-After and /healthz 503 with the reason, then recovers', async () => {
    const url = await start();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // Disk full, as SQLite reports it: no page can be added to the database.
    const pages = server!.db!.pragma('page_count', { simple: true }) as number;
    server!.db!.pragma(`max_page_count = ${pages}`);
    const big = { properties: { note: 'x'.repeat(90_000) } };
    const res = await postEvents(url, batch([wireEvent(big), wireEvent(big)]));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    const body = await health.json();
    expect(body.status).toBe('error');
    expect(body.store).toMatch(/full/);

    server!.db!.pragma('max_page_count = 1073741823');
    expect((await postEvents(url, batch([wireEvent()]))).status).toBe(202);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});

describe('a store failure nobody retries', () => {
  it('is reported by /healthz for 30 s after the last failed write, so a balancer that stopped routing can retry', async () => {
    const db = openDatabase(':memory:');
    const app = Fastify();
    let clock = 1_000_000;
    await registerPublicRoutes(app, { config: parseConfig(baseConfig), store: createSqliteStore(db), onQueued: () => {}, forwarding: () => ({ state: 'on' }), now: () => clock });
    try {
      db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true })}`);
      const events = [wireEvent({ properties: { note: 'x'.repeat(90_000) } }), wireEvent({ properties: { note: 'y'.repeat(90_000) } })];
      const intake = await app.inject({ method: 'POST', url: '/v1/events', payload: batch(events) });
      expect(intake.statusCode).toBe(503);
      clock += STORE_FAILURE_REPORTED_MS - 1;
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(503);
      clock += 1;
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
      db.close();
    }
  });
});

describe('slow or oversized requests', () => {
  it('a request trickling its body has a deadline (Fastify disables Node\'s by default)', async () => {
    await start();
    expect(server!.app.server.requestTimeout).toBe(60_000);
  });

  it('thousands of headers are refused with 431 before any route runs', async () => {
    const url = await start();
    const { port } = new URL(url);
    const status = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        const headers = Array.from({ length: 5000 }, (_, i) => `X-Header-${i}: v\r\n`).join('');
        socket.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${headers}\r\n`);
      });
      let answer = '';
      socket.on('data', (d) => (answer += d));
      socket.on('close', () => resolve(answer.split('\r\n')[0]!));
      socket.on('error', reject);
    });
    expect(status).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });
});

describe('a PostgreSQL database that stops answering', () => {
  it('is reported by /healthz of an idle instance, with the reason, and health returns once it answers again', async () => {
    const database = await createTestDatabase();
    const { name } = database;
    try {
      const started = await startServer({}, { databaseUrl: database.url });
      server = started.server;
      expect(await (await fetch(`${started.url}/healthz`)).json()).toMatchObject({ status: 'ok', store: 'ok' });

      // No intake happens, so no failed write could tell: only asking the database does.
      await database.admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await database.admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
      const down = await fetch(`${started.url}/healthz`);
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await down.json()).toMatchObject({ status: 'error', store: expect.stringMatching(/^failing: ./) });

      await database.admin(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      expect((await fetch(`${started.url}/healthz`)).status).toBe(200);
    } finally {
      await server?.close();
      server = undefined;
      await database.drop();
    }
  });
});

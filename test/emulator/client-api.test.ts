import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { call, clientEvent, PRIVATE_KEY, start } from './helpers.js';

let em: Emulator;
beforeAll(async () => {
  em = await start({ rateLimits: false });
});
afterAll(() => em.close());
beforeEach(() => em.reset());

describe('POST /client/events', () => {
  it('accepts a valid event with 202 and stores it under its metric and profile', async () => {
    const res = await call(em, 'POST', '/client/events', { body: clientEvent('Viewed Product', { anonymous_id: 'anon-1', email: 'Ada@Example.com' }, { value: 9.5, time: '2026-11-28T10:00:00Z' }) });
    expect(res.status).toBe(202);
    const [ev] = em.state.events({ metric: 'Viewed Product' });
    expect(ev).toMatchObject({ metric: 'Viewed Product', properties: { sku: 'HAT-1' }, value: 9.5, time: '2026-11-28T10:00:00.000Z' });
    const [profile] = em.state.profiles();
    expect(profile).toMatchObject({ id: ev.profileId, email: 'ada@example.com', anonymous_id: 'anon-1' });
    expect(profile.subscriptions.email.marketing.consent).toBe('NEVER_SUBSCRIBED');
  });

  it('sets CORS headers and exposes Retry-After; answers the preflight', async () => {
    const pre = await fetch(`${em.url}/client/events?company_id=ABC123`, {
      method: 'OPTIONS',
      headers: { origin: 'http://shop.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,revision' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toContain('revision');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    const res = await call(em, 'POST', '/client/events', { body: clientEvent('X', { anonymous_id: 'a' }) });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toContain('Retry-After');
  });

  it('keeps only the first event for a repeated unique_id on the same profile and metric', async () => {
    for (const value of [1, 2, 3]) {
      expect((await call(em, 'POST', '/client/events', { body: clientEvent('Placed Order', { email: 'a@b.co' }, { unique_id: 'order-1', value }) })).status).toBe(202);
    }
    await call(em, 'POST', '/client/events', { body: clientEvent('Placed Order', { email: 'a@b.co' }, { unique_id: 'order-2', value: 4 }) });
    await call(em, 'POST', '/client/events', { body: clientEvent('Placed Order', { email: 'c@d.co' }, { unique_id: 'order-1', value: 5 }) });
    expect(em.state.events({ metric: 'Placed Order' }).map((e) => e.value)).toEqual([1, 4, 5]);
  });

  it('without unique_id keeps one event per profile and metric per second', async () => {
    const send = (time: string) => call(em, 'POST', '/client/events', { body: clientEvent('Viewed Product', { email: 'a@b.co' }, { time }) });
    await send('2026-11-28T10:00:00.100Z');
    await send('2026-11-28T10:00:00.900Z');
    await send('2026-11-28T10:00:01.000Z');
    expect(em.state.events().map((e) => e.time)).toEqual(['2026-11-28T10:00:00.100Z', '2026-11-28T10:00:01.000Z']);
  });

  it('rejects a missing revision header', async () => {
    const res = await call(em, 'POST', '/client/events', { body: clientEvent('X', { email: 'a@b.co' }), headers: { revision: undefined } });
    expect(res.status).toBe(400);
    expect(res.json.errors[0]).toMatchObject({ status: 400, code: 'invalid', source: { parameter: 'revision' } });
    expect(res.json.errors[0].id).toBeTruthy();
    expect(res.json.errors[0].title).toBeTruthy();
    expect(em.requests.at(-1)).toMatchObject({ status: 400, operationId: 'create_client_event' });
    expect(em.requests.at(-1)!.error).toContain('revision');
  });

  it('rejects a missing company_id, a wrong public key and always a private key', async () => {
    const body = clientEvent('X', { email: 'a@b.co' });
    const missing = await call(em, 'POST', '/client/events', { body, query: { company_id: '' } });
    expect(missing.status).toBe(400);
    expect(missing.json.errors[0].source).toEqual({ parameter: 'company_id' });
    expect((await call(em, 'POST', '/client/events', { body, query: { company_id: 'XYZ999' } })).status).toBe(403);
    const priv = await call(em, 'POST', '/client/events', { body, query: { company_id: PRIVATE_KEY } });
    expect(priv.status).toBe(403);
    expect(JSON.stringify(priv.json)).not.toContain(PRIVATE_KEY);
    expect(em.state.events()).toHaveLength(0);
  });

  it('rejects a wrong content type with 415 and accepts application/json', async () => {
    const body = clientEvent('X', { email: 'a@b.co' });
    expect((await call(em, 'POST', '/client/events', { body, headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await call(em, 'POST', '/client/events', { body, headers: { 'content-type': 'application/json' } })).status).toBe(202);
  });

  it('rejects schema violations with a pointer to the field: wrong enum, missing metric, unknown attribute', async () => {
    const wrongType = clientEvent('X', { email: 'a@b.co' }) as any;
    wrongType.data.type = 'events';
    const r1 = await call(em, 'POST', '/client/events', { body: wrongType });
    expect(r1.status).toBe(400);
    expect(r1.json.errors[0].source.pointer).toBe('/data/type');

    const noMetric = clientEvent('X', { email: 'a@b.co' }) as any;
    delete noMetric.data.attributes.metric;
    const r2 = await call(em, 'POST', '/client/events', { body: noMetric });
    expect(r2.status).toBe(400);
    expect(r2.json.errors[0].detail).toContain('metric');

    const unknown = clientEvent('X', { email: 'a@b.co', favourite_colour: 'red' });
    const r3 = await call(em, 'POST', '/client/events', { body: unknown });
    expect(r3.status).toBe(400);
    expect(r3.json.errors[0].source.pointer).toBe('/data/attributes/profile/data/attributes/favourite_colour');
    expect(em.state.events()).toHaveLength(0);
  });

  it('rejects a profile without identifiers, a bad email and a non-E.164 phone', async () => {
    expect((await call(em, 'POST', '/client/events', { body: clientEvent('X', { first_name: 'Ada' }) })).status).toBe(400);
    const email = await call(em, 'POST', '/client/events', { body: clientEvent('X', { email: 'not-an-email' }) });
    expect(email.json.errors[0].source.pointer).toBe('/data/attributes/profile/data/attributes/email');
    const phone = await call(em, 'POST', '/client/events', { body: clientEvent('X', { phone_number: '555-1234' }) });
    expect(phone.status).toBe(400);
    expect(phone.json.errors[0].detail).toContain('phone');
  });

  it('rejects malformed JSON and a payload over 5 MB', async () => {
    const bad = await call(em, 'POST', '/client/events', { raw: '{"data":' });
    expect(bad.status).toBe(400);
    const huge = clientEvent('X', { email: 'a@b.co' }, { properties: { blob: 'x'.repeat(5 * 1024 * 1024 + 10) } });
    const res = await call(em, 'POST', '/client/events', { body: huge });
    expect(res.status).toBe(413);
    expect(res.json.errors[0].detail).toContain('5 MB');
  });

  it('accepts a trailing slash and answers 404/405 for unknown routes and methods', async () => {
    expect((await call(em, 'POST', '/client/events/', { body: clientEvent('X', { email: 'a@b.co' }) })).status).toBe(202);
    expect((await call(em, 'POST', '/client/nothing', { body: {} })).status).toBe(404);
    expect((await call(em, 'GET', '/client/events')).status).toBe(405);
  });
});

describe('POST /client/profiles, /client/subscriptions, /client/event-bulk-create', () => {
  it('creates and then updates a profile by identity', async () => {
    const body = (attrs: Record<string, unknown>) => ({ data: { type: 'profile', attributes: attrs } });
    expect((await call(em, 'POST', '/client/profiles', { body: body({ anonymous_id: 'anon-9', first_name: 'Ada', properties: { plan: 'gold' } }) })).status).toBe(202);
    expect((await call(em, 'POST', '/client/profiles', { body: body({ anonymous_id: 'anon-9', email: 'ada@b.co', properties: { size: 'M' } }) })).status).toBe(202);
    const profiles = em.state.profiles();
    expect(profiles).toHaveLength(1);
    expect(profiles[0]).toMatchObject({ anonymous_id: 'anon-9', email: 'ada@b.co', first_name: 'Ada', properties: { plan: 'gold', size: 'M' } });
  });

  it('subscribes to a single opt-in list at once, and only records a pending confirmation on a double opt-in list', async () => {
    const single = em.internals.state.lists.create('Newsletter', 'single_opt_in');
    const double = em.internals.state.lists.create('VIP');
    const sub = (email: string, listId: string) => ({
      data: {
        type: 'subscription',
        attributes: { profile: { data: { type: 'profile', attributes: { email, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } } } } },
        relationships: { list: { data: { type: 'list', id: listId } } },
      },
    });
    expect((await call(em, 'POST', '/client/subscriptions', { body: sub('a@b.co', single.id) })).status).toBe(202);
    expect((await call(em, 'POST', '/client/subscriptions', { body: sub('c@d.co', double.id) })).status).toBe(202);
    const byEmail = Object.fromEntries(em.state.profiles().map((p) => [p.email, p]));
    expect(byEmail['a@b.co'].subscriptions.email.marketing.consent).toBe('SUBSCRIBED');
    expect(byEmail['c@d.co'].subscriptions.email.marketing.consent).toBe('NEVER_SUBSCRIBED');
    expect(em.state.listMembers(single.id).map((p) => p.email)).toEqual(['a@b.co']);
    const vip = em.state.lists().find((l) => l.id === double.id)!;
    expect(vip.profileIds).toEqual([]);
    expect(vip.pendingProfileIds).toEqual([byEmail['c@d.co'].id]);
    expect(em.state.confirmOptIn(byEmail['c@d.co'].id as string, double.id)).toBe(true);
    expect(em.state.listMembers(double.id).map((p) => p.email)).toEqual(['c@d.co']);
    expect(em.state.profiles().find((p) => p.email === 'c@d.co')!.subscriptions.email.marketing.consent).toBe('SUBSCRIBED');
    const missing = await call(em, 'POST', '/client/subscriptions', { body: sub('e@f.co', 'NOPE00') });
    expect(missing.status).toBe(404);
  });

  it('bulk-creates one profile’s events and enforces 1,000 events per request', async () => {
    const events = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'event', attributes: { properties: { i }, metric: { data: { type: 'metric', attributes: { name: 'Viewed Page' } } }, unique_id: `u-${i}` } }));
    const body = (n: number) => ({ data: { type: 'event-bulk-create', attributes: { profile: { data: { type: 'profile', attributes: { anonymous_id: 'anon-2' } } }, events: { data: events(n) } } } });
    expect((await call(em, 'POST', '/client/event-bulk-create', { body: body(3) })).status).toBe(202);
    expect(em.state.events({ metric: 'Viewed Page' })).toHaveLength(3);
    const over = await call(em, 'POST', '/client/event-bulk-create', { body: body(1001) });
    expect(over.status).toBe(400);
    expect(over.json.errors[0].source.pointer).toBe('/data/attributes/events/data');
    expect(em.state.events()).toHaveLength(3);
  });
});

describe('event time', () => {
  it('accepts ISO 8601 with or without an offset (naive = UTC) and rejects a non-date', async () => {
    expect((await call(em, 'POST', '/client/events', { body: clientEvent('T', { email: 'a@b.co' }, { time: '2026-11-28T10:00:00+02:00' }) })).status).toBe(202);
    expect((await call(em, 'POST', '/client/events', { body: clientEvent('T', { email: 'a@b.co' }, { time: '2026-11-28T11:00:00' }) })).status).toBe(202);
    expect(em.state.events().map((e) => e.time)).toEqual(['2026-11-28T08:00:00.000Z', '2026-11-28T11:00:00.000Z']);
    const bad = await call(em, 'POST', '/client/events', { body: clientEvent('T', { email: 'a@b.co' }, { time: 'yesterday' }) });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].source.pointer).toBe('/data/attributes/time');
  });
});

// The sandbox answers as Klaviyo does where a kinder answer would let the product look right locally and fail in
// production. Each test names the Klaviyo document or issue it follows.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { INGESTION_LIMITS } from '../../src/shared/ingestion-limits.js';
import { KLAVIYO_REVISION } from '../../src/shared/revision.js';
import { call, clientEvent, PRIVATE_KEY, start } from './helpers.js';
import { waitFor } from '../support/wait-for.js';

let em: Emulator;
beforeAll(async () => {
  em = await start({ rateLimits: false });
});
afterAll(() => em.close());
beforeEach(() => em.reset());

const importProfile = (attributes: Record<string, unknown>) => call(em, 'POST', '/api/profile-import', { body: { data: { type: 'profile', attributes } } });
const jobsDone = () => em.state.jobs().every((j) => j.status === 'complete');

describe('every error carries source', () => {
  // https://community.klaviyo.com/marketing-30/authentication-problem-for-new-api-i-am-using-correct-api-7403 (a 401
  // with `source`) and https://github.com/klaviyo/klaviyo-api-python/issues/15 (a 429 with source.pointer "/data/").
  it('401, 403, 404, 405, 415, 400 parse errors, 413, 429 and injected faults all point somewhere', async () => {
    const limited = await start({ clock: () => 0 });
    try {
      const answers = [
        await call(em, 'GET', '/api/accounts', { headers: { authorization: undefined } }),
        await call(em, 'GET', '/api/accounts', { headers: { authorization: 'Bearer nope' } }),
        await call(em, 'GET', '/api/accounts', { headers: { authorization: 'Klaviyo-API-Key pk_wrongwrongwrongwrongwrong' } }),
        await call(em, 'GET', '/api/nothing-here'),
        await call(em, 'PUT', '/api/events'),
        await call(em, 'POST', '/api/events', { raw: '{}', headers: { 'content-type': 'text/plain' } }),
        await call(em, 'POST', '/api/events', { raw: '{not json' }),
        await call(em, 'POST', '/api/events', { raw: `{"x":"${'a'.repeat(5 * 1024 * 1024)}"}` }),
        await call(limited, 'GET', '/api/accounts').then(() => call(limited, 'GET', '/api/accounts')),
      ];
      em.faults.add({ path: '/api/events', status: 503, count: 1 });
      answers.push(await call(em, 'POST', '/api/events', { body: {} }));
      expect(answers.map((a) => a.status)).toEqual([401, 401, 403, 404, 405, 415, 400, 413, 429, 503]);
      for (const a of answers) {
        expect(a.json.errors[0], `${a.status}`).toMatchObject({ id: expect.any(String), status: a.status, code: expect.any(String), title: expect.any(String), detail: expect.any(String) });
        expect(a.json.errors[0].source, `${a.status} without source`).toEqual(expect.objectContaining({ pointer: expect.any(String) }));
      }
      expect(answers[0].json.errors[0].source).toEqual({ pointer: '/data/' });
    } finally {
      await limited.close();
    }
  });
});

describe('409 duplicate_profile', () => {
  // https://github.com/klaviyo/klaviyo-api-node/issues/75: profile-import whose identifiers sit on two profiles.
  it('POST /api/profile-import answers 409 with errors[0].meta.duplicate_profile_id and changes nothing', async () => {
    const byEmail = (await importProfile({ email: 'ada@example.com' })).json.data.id;
    const byPhone = (await importProfile({ phone_number: '+14155550100' })).json.data.id;
    const res = await importProfile({ email: 'ada@example.com', phone_number: '+14155550100', first_name: 'Ada' });
    expect(res.status).toBe(409);
    expect(res.json.errors[0]).toMatchObject({ status: 409, code: 'duplicate_profile', title: 'Conflict.', source: { pointer: '/data/attributes' }, meta: { duplicate_profile_id: byPhone } });
    const ada = em.state.profiles().find((p) => p.id === byEmail)!;
    expect(ada.phone_number).toBeUndefined();
    expect(ada.first_name).toBeUndefined();
  });

  // https://github.com/klaviyo/klaviyo-api-node/issues/74: the same conflict on PATCH /api/profiles/{id}.
  it('PATCH /api/profiles/{id} answers 409 naming the profile that holds the identifier, and changes nothing', async () => {
    const ada = (await importProfile({ email: 'ada@example.com' })).json.data.id;
    const other = (await importProfile({ external_id: 'C-42' })).json.data.id;
    const patch = (attributes: Record<string, unknown>) => call(em, 'PATCH', `/api/profiles/${ada}`, { body: { data: { type: 'profile', id: ada, attributes } } });
    const res = await patch({ external_id: 'C-42', first_name: 'Ada' });
    expect(res.status).toBe(409);
    expect(res.json.errors[0]).toMatchObject({ code: 'duplicate_profile', meta: { duplicate_profile_id: other } });
    expect(em.state.profiles().find((p) => p.id === ada)).not.toHaveProperty('first_name');
    // Without the conflicting identifier the same update goes through.
    expect((await patch({ first_name: 'Ada' })).status).toBe(200);
  });
});

describe('one profile is at most 100 KB', () => {
  // https://developers.klaviyo.com/en/reference/create_or_update_profile and .../update_profile: "The maximum allowed
  // payload size is 100KB."
  it('profile-import and PATCH refuse a larger profile with a 400 pointing at /data', async () => {
    const big = { notes: 'x'.repeat(100 * 1024) };
    const res = await importProfile({ email: 'big@example.com', properties: big });
    expect(res.status).toBe(400);
    expect(res.json.errors[0]).toMatchObject({ code: 'invalid', source: { pointer: '/data' }, detail: expect.stringMatching(/100 KB/) });
    const id = (await importProfile({ email: 'big@example.com' })).json.data.id;
    const patch = await call(em, 'PATCH', `/api/profiles/${id}`, { body: { data: { type: 'profile', id, attributes: { properties: big } } } });
    expect(patch.status).toBe(400);
    expect(em.state.profiles()[0].properties).toEqual({});
  });
});

describe('the client API never changes an existing identifier', () => {
  // https://developers.klaviyo.com/en/reference/create_client_profile: "Attempts to do so via client-side endpoints
  // will return a 202, however the identifier field(s) will not be updated."
  it('/client/profiles and /client/events answer 202 and keep the email the profile already has', async () => {
    const body = (attributes: Record<string, unknown>) => ({ data: { type: 'profile', attributes } });
    expect((await call(em, 'POST', '/client/profiles', { body: body({ anonymous_id: 'device-1', email: 'a@example.com' }) })).status).toBe(202);
    expect((await call(em, 'POST', '/client/profiles', { body: body({ anonymous_id: 'device-1', email: 'b@example.com', first_name: 'Bea' }) })).status).toBe(202);
    expect((await call(em, 'POST', '/client/events', { body: clientEvent('Viewed Product', { anonymous_id: 'device-1', email: 'c@example.com' }) })).status).toBe(202);
    const [profile] = em.state.profiles();
    expect(em.state.profiles()).toHaveLength(1);
    expect(profile).toMatchObject({ anonymous_id: 'device-1', email: 'a@example.com', first_name: 'Bea' });
    // An identifier the profile lacks is added (that is how an anonymous visitor becomes known).
    await call(em, 'POST', '/client/profiles', { body: body({ anonymous_id: 'device-1', phone_number: '+14155550100' }) });
    expect(em.state.profiles()[0].phone_number).toBe('+14155550100');
    // The server API does change it.
    await call(em, 'PATCH', `/api/profiles/${profile.id}`, { body: { data: { type: 'profile', id: profile.id, attributes: { email: 'b@example.com' } } } });
    expect(em.state.profiles()[0].email).toBe('b@example.com');
  });
});

describe('unsubscribe scope', () => {
  const list = async (name: string) => (await call(em, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name, opt_in_process: 'single_opt_in' } } } })).json.data.id as string;
  const job = (type: string, email: string, consent: string, listId?: string) => ({
    data: {
      type,
      attributes: { profiles: { data: [{ type: 'profile', attributes: { email, subscriptions: { email: { marketing: { consent } } } } }] } },
      ...(listId ? { relationships: { list: { data: { type: 'list', id: listId } } } } : {}),
    },
  });
  const subscribe = (email: string, listId: string) => call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: job('profile-subscription-bulk-create-job', email, 'SUBSCRIBED', listId) });
  const unsubscribe = (email: string, listId?: string) => call(em, 'POST', '/api/profile-subscription-bulk-delete-jobs', { body: job('profile-subscription-bulk-delete-job', email, 'UNSUBSCRIBED', listId) });
  const subscriptions = async (email: string) =>
    (await call(em, 'GET', '/api/profiles', { query: { filter: `equals(email,"${email}")`, 'additional-fields[profile]': 'subscriptions' } })).json.data[0].attributes.subscriptions.email.marketing;

  // https://developers.klaviyo.com/en/reference/bulk_unsubscribe_profiles: with a list the profile is on, a list-level
  // unsubscribe; "Profiles not in the specified list will be globally unsubscribed".
  it('with a list: off that list only, account-level consent kept; without a list: unsubscribed account-wide', async () => {
    const news = await list('Newsletter');
    const vip = await list('VIP');
    for (const l of [news, vip]) await subscribe('m@example.com', l);
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect((await unsubscribe('m@example.com', news)).status).toBe(202);
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect(em.state.listMembers(news)).toHaveLength(0);
    expect(em.state.listMembers(vip).map((p) => p.email)).toEqual(['m@example.com']);
    expect(await subscriptions('m@example.com')).toMatchObject({ consent: 'SUBSCRIBED', can_receive_email_marketing: true, list_suppressions: [{ list_id: news, reason: 'USER_SUPPRESSED' }] });

    expect((await unsubscribe('m@example.com')).status).toBe(202);
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect(await subscriptions('m@example.com')).toMatchObject({ consent: 'UNSUBSCRIBED', can_receive_email_marketing: false, suppression: [{ reason: 'UNSUBSCRIBE' }] });
  });
});

describe('NEVER_SUBSCRIBED can receive email marketing', () => {
  // https://developers.klaviyo.com/en/reference/get_profiles (subscriptions.email.marketing.can_receive_email_marketing:
  // "implicit consent … True if [the] profile does not have any global suppressions"; SMS needs a subscription).
  it('a profile that never subscribed has can_receive_email_marketing true and can_receive_sms_marketing false', async () => {
    await importProfile({ email: 'new@example.com', phone_number: '+14155550100' });
    const res = await call(em, 'GET', '/api/profiles', { query: { 'additional-fields[profile]': 'subscriptions' } });
    const subs = res.json.data[0].attributes.subscriptions;
    expect(subs.email.marketing).toMatchObject({ consent: 'NEVER_SUBSCRIBED', can_receive_email_marketing: true });
    expect(subs.sms.marketing).toMatchObject({ consent: 'NEVER_SUBSCRIBED', can_receive_sms_marketing: false });
  });
});

describe('ingestion limits answer 400 on every event endpoint', () => {
  // https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling, "Ingestion limits": 300 properties,
  // 100 kB per field, 4,000 array items, 10 levels of nesting, a time between 2000 and now + 1 year.
  const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
  let clocked: Emulator;
  beforeAll(async () => {
    clocked = await start({ rateLimits: false, clock: () => NOW });
  });
  afterAll(() => clocked.close());

  const nested = (depth: number): Record<string, unknown> => (depth <= 1 ? { leaf: 1 } : { child: nested(depth - 1) });
  const breaches: Array<[string, { properties?: Record<string, unknown>; time?: string }, RegExp]> = [
    ['301 properties', { properties: Object.fromEntries(Array.from({ length: INGESTION_LIMITS.properties + 1 }, (_, i) => [`p${i}`, i])) }, /more than 300 properties/],
    ['a field over 100 kB', { properties: { note: 'x'.repeat(INGESTION_LIMITS.fieldBytes + 1) } }, /larger than 100000 bytes/],
    ['an array of 4,001 items', { properties: { skus: Array.from({ length: INGESTION_LIMITS.arrayItems + 1 }, (_, i) => i) } }, /more than 4000 items/],
    ['11 levels of nesting', { properties: nested(11) }, /nested more than 10 levels/],
    ['a time before 2000', { time: '1999-12-31T23:59:59Z' }, /before 2000/],
    ['a time more than a year ahead', { time: new Date(NOW + INGESTION_LIMITS.futureMs + 1000).toISOString() }, /more than one year ahead/],
  ];
  const attrs = (extra: { properties?: Record<string, unknown>; time?: string }) => ({
    properties: extra.properties ?? { ok: true },
    ...(extra.time ? { time: extra.time } : {}),
    metric: { data: { type: 'metric', attributes: { name: 'Placed Order' } } },
  });
  const profile = { data: { type: 'profile', attributes: { email: 'a@example.com' } } };
  const endpoints: Array<[string, (extra: { properties?: Record<string, unknown>; time?: string }) => unknown, string]> = [
    ['/client/events', (x) => ({ data: { type: 'event', attributes: { ...attrs(x), profile } } }), '/data/attributes'],
    ['/api/events', (x) => ({ data: { type: 'event', attributes: { ...attrs(x), profile } } }), '/data/attributes'],
    ['/client/event-bulk-create', (x) => ({ data: { type: 'event-bulk-create', attributes: { profile, events: { data: [{ type: 'event', attributes: attrs(x) }] } } } }), '/data/attributes/events/data/0/attributes'],
    [
      '/api/event-bulk-create-jobs',
      (x) => ({ data: { type: 'event-bulk-create-job', attributes: { 'events-bulk-create': { data: [{ type: 'event-bulk-create', attributes: { profile, events: { data: [{ type: 'event', attributes: attrs(x) }] } } }] } } } }),
      '/data/attributes/events-bulk-create/data/0/attributes/events/data/0/attributes',
    ],
  ];

  for (const [path, body, pointer] of endpoints) {
    it(`${path}: each limit is refused with 400 in Klaviyo's error shape, naming the limit; within them, 202`, async () => {
      for (const [what, extra, detail] of breaches) {
        const res = await call(clocked, 'POST', path, { body: body(extra) });
        expect(res.status, `${path} with ${what}`).toBe(400);
        expect(res.json.errors[0]).toMatchObject({ status: 400, code: 'invalid', detail: expect.stringMatching(detail), source: { pointer: `${pointer}/${extra.time ? 'time' : 'properties'}` } });
      }
      const atTheLimit = { properties: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`p${i}`, i])), time: new Date(NOW + INGESTION_LIMITS.futureMs - 1000).toISOString() };
      expect((await call(clocked, 'POST', path, { body: body(atTheLimit) })).status).toBe(202);
    });
  }
});

describe('rate limits: RateLimit-* headers, per account, fixed 1 s and 60 s windows', () => {
  // https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling: "rate limited on a per-account basis, and
  // use a fixed-window rate limiting algorithm with two distinct windows: burst (1-second window) and steady (1-minute
  // window)"; "All non-rate-limited (i.e., non 429) responses will contain" RateLimit-Limit, -Remaining and -Reset
  // for the steady window. GET /api/accounts is published as burst 1/s, steady 15/m.
  const MINUTE = Date.UTC(2026, 10, 28, 10, 0, 0);
  let now = MINUTE;
  let limited: Emulator;
  beforeAll(async () => {
    // No key configured: any well-formed key is this one account's.
    limited = await start({ privateKey: undefined, clock: () => now });
  });
  afterAll(() => limited.close());

  const keyA = `Klaviyo-API-Key ${PRIVATE_KEY}`;
  const keyB = 'Klaviyo-API-Key pk_anotherKeyOfTheSameAccount1';
  const accounts = (authorization = keyA) => call(limited, 'GET', '/api/accounts', { headers: { authorization } });
  /** A request on a fresh connection, so nothing per connection can carry the count. */
  const freshConnection = async (authorization: string) => {
    const res = await fetch(`${limited.url}/api/accounts`, { headers: { authorization, revision: KLAVIYO_REVISION, connection: 'close' } });
    await res.arrayBuffer();
    return res.status;
  };

  it('2xx /api/* answers carry the steady window state', async () => {
    now = MINUTE + 500;
    const res = await accounts();
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit-limit')).toBe('15');
    expect(res.headers.get('ratelimit-remaining')).toBe('14');
    expect(res.headers.get('ratelimit-reset')).toBe('60');
  });

  it('counts every key and connection of the account together; the burst window turns over exactly on the second', async () => {
    now = MINUTE + 999;
    const second = await accounts(keyB);
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(second.headers.get('ratelimit-limit')).toBeNull();
    expect(await freshConnection(keyA)).toBe(429);
    now = MINUTE + 1000;
    const next = await accounts(keyB);
    expect(next.status).toBe(200);
    expect(next.headers.get('ratelimit-remaining')).toBe('13');
    expect(next.headers.get('ratelimit-reset')).toBe('59');
  });

  it('the steady window is fixed: once 15 are used, nothing passes until the minute turns over', async () => {
    for (let s = 2; s < 15; s++) {
      now = MINUTE + s * 1000;
      expect((await accounts()).status, `request in second ${s}`).toBe(200);
    }
    // A sliding or token-bucket limit would have let a request through by now (15/m refills one every 4 s).
    now = MINUTE + 45_000;
    const refused = await accounts();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('15');
    expect(refused.json.errors[0].detail).toMatch(/steady 15\/m/);
    now = MINUTE + 59_999;
    expect((await accounts()).status).toBe(429);
    now = MINUTE + 60_000;
    const fresh = await accounts();
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('ratelimit-remaining')).toBe('14');
  });
});

// @vitest-environment happy-dom
// Consent gating, identity, the bad-input table and workflow config loading (parallel fetch, cache, invalid configs).
import { describe, it, expect, vi, afterEach } from 'vitest';
import Cookies from 'js-cookie';
import { freshBrowser, isReady, json, recordHooks } from './helpers.js';
import { waitFor, eventually } from '../support/wait-for.js';
import { createRelay } from '../../src/browser/index.js';
import { uuid } from '../../src/browser/identity.js';
import type { RelayOptions } from '../../src/browser/types.js';

const base: RelayOptions = { publicKey: 'ABC123', klaviyoUrl: 'https://k.test', autoPage: false };
/** The snippet's IndexedDB keys; [] while the database does not exist (opening it here would create it store-less). */
const idbKeys = async (): Promise<IDBValidKey[]> =>
  !(await indexedDB.databases()).some((d) => d.name == 'klaviyo-relay') ? [] : new Promise((ok) => {
    indexedDB.open('klaviyo-relay').onsuccess = (ev: any) => {
      const db = ev.target.result;
      if (!db.objectStoreNames.contains('kv')) return ok([]);
      const req = db.transaction('kv').objectStore('kv').getAllKeys();
      req.onsuccess = () => ok(req.result);
    };
  });

afterEach(() => vi.restoreAllMocks());

describe('consent gating', () => {
  it('requireConsent: nothing stored, sent or cookied until granted; then everything goes, in order', async () => {
    const { sent } = freshBrowser();
    const api = createRelay({ ...base, requireConsent: true });
    const hooks = recordHooks(api);
    api.track('Before 1');
    api.identify({ email: 'ada@example.com' });
    api.track('Before 2');
    await isReady(api);
    await api.flush();
    expect(sent).toEqual([]);
    expect(Cookies.get()).toEqual({});
    expect((await indexedDB.databases()).map((d) => d.name)).not.toContain('klaviyo-relay');
    expect((await api.pending()).map((p) => [p.name ?? p.type, p.error])).toEqual([
      ['Before 1', 'waiting for consent'], ['identify', 'waiting for consent'], ['Before 2', 'waiting for consent'],
    ]);
    expect(hooks.queued).toEqual([]);

    api.consent({ granted: true });
    await eventually(() => expect(hooks.queued).toHaveLength(3));
    await api.flush();
    expect(sent.map((r) => r.url.split('?')[0].split('/').pop())).toEqual(['events', 'profiles', 'events']);
    expect(sent[2].body.data.attributes.profile.data.attributes.email).toBe('ada@example.com');
    expect(Cookies.get('klaviyo_relay_id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(Cookies.get('klaviyo_relay_consent')).toBe('1');
  });

  it('denial clears the outbox, the id cookie and its IndexedDB mirror; consent is checked again at flush time', async () => {
    const { sent } = freshBrowser(() => 'network-error');
    const api = createRelay(base);
    const hooks = recordHooks(api);
    await isReady(api);
    api.track('Queued then denied');
    await eventually(() => expect(hooks.queued).toHaveLength(1));
    expect(Cookies.get('klaviyo_relay_id')).toBeTruthy();
    const before = sent.length;
    api.consent({ granted: false });
    await api.flush();
    expect(sent.length).toBe(before);
    await eventually(async () => expect(await api.pending()).toEqual([]));
    expect(Cookies.get('klaviyo_relay_id')).toBeUndefined();
    expect(Cookies.get('klaviyo_relay_consent')).toBe('0');
    await eventually(async () => expect(await idbKeys()).toEqual([]));
    expect(hooks.dropped).toMatchObject([{ reason: 'consent' }]);
    api.track('After denial');
    await api.flush();
    expect(sent.length).toBe(before);
  });
});

describe('identity', () => {
  it('the anonymous id is restored from IndexedDB when the cookie was cleared', async () => {
    freshBrowser();
    const first = createRelay(base);
    await isReady(first);
    const id = Cookies.get('klaviyo_relay_id');
    await first.flush();
    Cookies.remove('klaviyo_relay_id');
    const second = createRelay(base);
    const hooks = recordHooks(second);
    await isReady(second);
    second.track('Back again');
    await eventually(() => expect(hooks.queued).toHaveLength(1));
    expect(hooks.queued[0].event.profile.anonymous_id).toBe(id);
    expect(Cookies.get('klaviyo_relay_id')).toBe(id);
  });

  it('identify merges traits; every later event carries email, phone, external_id, anonymous_id and _kx', async () => {
    freshBrowser();
    history.replaceState(null, '', '/landing?_kx=KX-TOKEN');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const api = createRelay(base);
    const hooks = recordHooks(api);
    api.identify({ email: 'ada@example.com', first_name: 'Ada' });
    api.identify({ phone_number: '+1 (500) 555-0006', external_id: 'cust-7', plan: 'gold' });
    api.identify({ phone_number: '555-0006', email: 'not-an-email' });
    api.track('Checkout');
    await eventually(() => expect(hooks.queued).toHaveLength(4));
    expect(hooks.queued[3].event.profile).toEqual({
      email: 'ada@example.com', phone_number: '+15005550006', external_id: 'cust-7', anonymous_id: expect.any(String), _kx: 'KX-TOKEN',
    });
    expect(hooks.queued[1].event.profile).toMatchObject({ first_name: 'Ada', properties: { plan: 'gold' } });
    expect(warn.mock.calls.map((c) => c[0]).join('\n')).toMatch(/phone_number "555-0006".*\n.*email "not-an-email"/);
    history.replaceState(null, '', '/');
  });

  it('ids are UUIDs on plain http too, where crypto.randomUUID is missing (not a secure context)', async () => {
    const real = crypto.randomUUID;
    Object.defineProperty(crypto, 'randomUUID', { value: undefined, configurable: true });
    try {
      const ids = new Set(Array.from({ length: 50 }, () => uuid()));
      expect(ids.size).toBe(50);
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      Object.defineProperty(crypto, 'randomUUID', { value: real, configurable: true });
    }
  });

  // Klaviyo's Client API never changes an existing profile's identifiers ("Create or update a profile" from the
  // browser ignores them: https://developers.klaviyo.com/en/reference/create_client_profile), so a second person
  // merged into the first here could never be separated again.
  it('one device, two people: identify() naming a different email, phone or external id starts a new person', async () => {
    freshBrowser();
    const api = createRelay(base);
    const hooks = recordHooks(api);
    api.identify({ email: 'a@example.com', first_name: 'Ann', plan: 'gold' });
    api.track('Placed Order');
    api.identify({ email: 'b@example.com' });
    api.track('Subscribed to Newsletter');
    await eventually(() => expect(hooks.queued).toHaveLength(4));
    const [identifyA, orderA, identifyB, newsletterB] = hooks.queued.map((q) => q.event.profile);
    // What was queued for a keeps a's identifiers.
    expect(orderA).toEqual({ email: 'a@example.com', anonymous_id: identifyA.anonymous_id });
    // b is a new person: a new anonymous id, none of a's traits.
    expect(identifyB).toEqual({ email: 'b@example.com', anonymous_id: expect.any(String) });
    expect(identifyB.anonymous_id).not.toBe(identifyA.anonymous_id);
    expect(newsletterB).toEqual({ email: 'b@example.com', anonymous_id: identifyB.anonymous_id });
    expect(Cookies.get('klaviyo_relay_id')).toBe(identifyB.anonymous_id);
  });

  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['phone number', { phone_number: '+15005550006' }, { phone_number: '+15005550007' }],
    ['external id', { external_id: 'cust-1' }, { external_id: 'cust-2' }],
  ])('a different %s is another person too', async (_label, first, second) => {
    freshBrowser();
    const api = createRelay(base);
    const hooks = recordHooks(api);
    api.identify({ ...first, first_name: 'Ann' });
    api.identify(second);
    await eventually(() => expect(hooks.queued).toHaveLength(2));
    const [one, two] = hooks.queued.map((q) => q.event.profile);
    expect(two.anonymous_id).not.toBe(one.anonymous_id);
    expect(two.first_name).toBeUndefined();
  });

  it('the same person identified again, or with a new kind of identifier, stays one person', async () => {
    freshBrowser();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const api = createRelay(base);
    const hooks = recordHooks(api);
    api.identify({ email: 'Ada@Example.com', phone_number: '+1 (500) 555-0006', first_name: 'Ada' });
    api.identify({ email: 'ada@example.com', phone_number: '+15005550006', last_name: 'Lovelace' });
    api.identify({ external_id: 'cust-7' });
    api.identify({ email: 'not-an-email' }); // malformed: left out with a warning, so it names nobody
    await eventually(() => expect(hooks.queued).toHaveLength(4));
    const profiles = hooks.queued.map((q) => q.event.profile);
    expect(new Set(profiles.map((p) => p.anonymous_id)).size).toBe(1);
    expect(profiles[3]).toMatchObject({ first_name: 'Ada', last_name: 'Lovelace', external_id: 'cust-7', phone_number: '+15005550006' });
    expect(warn.mock.calls.map((c) => c[0])).toEqual([expect.stringMatching(/email "not-an-email" is not an email address/)]);
  });

  it('reset() starts a new anonymous id and forgets the traits', async () => {
    freshBrowser();
    const api = createRelay(base);
    const hooks = recordHooks(api);
    api.identify({ email: 'ada@example.com' });
    api.track('Before');
    api.reset();
    api.track('After');
    await eventually(() => expect(hooks.queued).toHaveLength(3));
    const [before, after] = [hooks.queued[1].event.profile, hooks.queued[2].event.profile];
    expect(after.email).toBeUndefined();
    expect(after.anonymous_id).not.toBe(before.anonymous_id);
    expect(Cookies.get('klaviyo_relay_id')).toBe(after.anonymous_id);
  });
});

describe('bad input: ignored with one console warning, never thrown', () => {
  const cyclic: any = { a: 1 };
  cyclic.self = cyclic;
  it.each<[string, (api: ReturnType<typeof createRelay>) => void, RegExp?]>([
    ['non-string name', (a) => a.track(42 as any)],
    ['empty name', (a) => a.track('  ')],
    ['129-character name', (a) => a.track('x'.repeat(129))],
    ['cyclic properties', (a) => a.track('Cyclic', cyclic)],
    ['huge properties overall', (a) => a.track('Huge', Object.fromEntries(Array.from({ length: 10 }, (_, i) => ['s' + i, 'x'.repeat(90_000)])))],
    ['properties that are not an object', (a) => a.track('Arr', [1, 2] as any)],
    ['a BigInt property', (a) => a.track('Big', { n: 10n })],
    ['identify without traits', (a) => a.identify(undefined as any)],
    ['consent without a boolean', (a) => a.consent({} as any)],
    ['push with an unknown method', (a) => a.push(['explode'])],
    // Each is an array-like or a prototype name that used to throw into the page (`t.slice is not a function`).
    ['push with an array-like object', (a) => a.push({ 0: 'track', 1: 'x' } as any), /not an array/],
    ['push with null', (a) => a.push(null as any), /not an array/],
    ['push with a string', (a) => a.push('track' as any), /not an array/],
    ['push with a number', (a) => a.push(42 as any), /not an array/],
    ['push naming constructor', (a) => a.push(['constructor', 'x']), /unknown method "constructor"/],
    ['push naming __proto__', (a) => a.push(['__proto__', {}]), /unknown method "__proto__"/],
  ])('%s', async (_label, call, message) => {
    freshBrowser();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error');
    const api = createRelay(base);
    const hooks = recordHooks(api);
    await isReady(api);
    expect(() => call(api)).not.toThrow();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(/^klaviyo-relay: /);
    if (message) expect(warn.mock.calls[0][0]).toMatch(message);
    expect(error).not.toHaveBeenCalled();
    api.track('Still works');
    await eventually(() => expect(hooks.queued.map((q) => q.event.name)).toEqual(['Still works']));
  });

  it('push() after a bad call still runs the good calls of the same push, in order', async () => {
    freshBrowser();
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    const api = createRelay(base);
    const hooks = recordHooks(api);
    expect(api.push(['track', 'One'], { 0: 'track', 1: 'x' } as any, ['track', 'Two'])).toBe(3);
    await eventually(() => expect(hooks.queued.map((q) => q.event.name)).toEqual(['One', 'Two']));
  });

  // Klaviyo's ingestion limits, the same cases as the shared table's own test:
  // https://developers.klaviyo.com/en/docs/rate-limits-and-error-handling ("Ingestion limits").
  describe("Klaviyo's ingestion limits: not queued, one warning naming the limit", () => {
    const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, i]));
    const nested = (levels: number): Record<string, unknown> => {
      let value: Record<string, unknown> = {};
      for (let i = 1; i < levels; i++) value = { child: value };
      return value;
    };
    const now = Date.now();
    const YEAR = 365 * 24 * 3600 * 1000;
    it.each<[string, (api: ReturnType<typeof createRelay>) => void, RegExp]>([
      ['301 properties', (a) => a.track('Many', props(301)), /300 properties/],
      ['a field over 100 kB', (a) => a.track('Huge', { a: 'x'.repeat(100_001) }), /100000 bytes/],
      ['a field over 100 kB in UTF-8 bytes, not characters', (a) => a.track('Huge', { a: 'é'.repeat(50_001) }), /100000 bytes/],
      ['a field over 100 kB deep in an array', (a) => a.track('Huge', { a: [{ b: 'x'.repeat(100_001) }] }), /100000 bytes/],
      ['an array of 4,001 items', (a) => a.track('Cart', { Items: new Array(4001).fill(1) }), /4000 items/],
      ['an array of 4,001 items, nested', (a) => a.track('Cart', { a: { b: new Array(4001).fill(1) } }), /4000 items/],
      ['11 levels of nesting', (a) => a.track('Deep', nested(11)), /10 levels/],
      ['5,000 levels of nesting', (a) => a.track('Deep', nested(5000)), /10 levels/],
      ['a cycle', (a) => a.track('Cyclic', cyclic), /10 levels/],
      ['a time before 2000', (a) => a.track('Old', {}, { time: '1999-12-31T23:59:59Z' }), /before 2000/],
      ['a time more than a year ahead', (a) => a.track('Future', {}, { time: now + YEAR + 60_000 }), /one year/],
      ['a time that is not a date', (a) => a.track('Garbled', {}, { time: 'not a date' }), /before 2000/],
      ['page() properties over a limit', (a) => a.page(props(301)), /300 properties/],
      ['identify() traits over a limit', (a) => a.identify({ email: 'ada@example.com', ...props(301) }), /300 properties/],
    ])('%s', async (_label, call, limit) => {
      freshBrowser();
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const api = createRelay(base);
      const hooks = recordHooks(api);
      await isReady(api);
      call(api);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0][0]).toMatch(/^klaviyo-relay: .*ignored: /);
      expect(warn.mock.calls[0][0]).toMatch(limit);
      api.track('Still works');
      await eventually(() => expect(hooks.queued.map((q) => q.event.name ?? q.event.type)).toEqual(['Still works']));
    });

    it('everything at the limits is queued', async () => {
      freshBrowser();
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const api = createRelay(base);
      const hooks = recordHooks(api);
      api.track('300 properties', props(300));
      api.track('4,000 items', { Items: new Array(4000).fill(1) });
      api.track('10 levels', nested(10));
      api.track('From 2000', {}, { time: '2000-01-01T00:00:00Z' });
      api.track('Up to a year ahead', {}, { time: Date.now() + YEAR - 60_000 });
      await eventually(() => expect(hooks.queued).toHaveLength(5));
      expect(hooks.queued[3].event.time).toBe('2000-01-01T00:00:00.000Z');
      expect(warn).not.toHaveBeenCalled();
    });
  });

  it('a 128-character name and a 100 KB string are accepted', async () => {
    freshBrowser();
    const api = createRelay(base);
    const hooks = recordHooks(api);
    api.track('x'.repeat(128), { s: 'y'.repeat(100_000) });
    await eventually(() => expect(hooks.queued).toHaveLength(1));
  });

  it('a throwing hook callback or a failing method reaches console.error, not the page', async () => {
    freshBrowser();
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const api = createRelay(base);
    api.on('queued', () => {
      throw new Error('panel bug');
    });
    api.track('Fine');
    await isReady(api);
    await eventually(() => expect(error.mock.calls.some((c) => /on\(queued\) callback threw/.test(c[0]))).toBe(true));
    expect(() => api.on(undefined as any, undefined as any)).not.toThrow();
    expect(() => api.ready(() => { throw new Error('ready bug'); })).not.toThrow();
    expect(error.mock.calls.some((c) => /ready\(\) failed/.test(c[0]))).toBe(true);
    await expect(api.flush()).resolves.toBeUndefined();
  });
});

describe('workflow config', () => {
  const endpoint = 'https://shop.test/relay';
  it('is requested at once, before storage is read; cached in IndexedDB, a returning visitor routes by it while /v1/config hangs', async () => {
    let configUp = true;
    const { sent } = freshBrowser((r) =>
      r.url.includes('/v1/config')
        ? configUp ? json({ workflow: { events: { 'Viewed Product': 'client' } } }, 200, { etag: '"v1"' }) : new Promise<Response>(() => {})
        : new Response(null, { status: 202 }),
    );
    const first = createRelay({ ...base, endpoint });
    const h1 = recordHooks(first);
    first.track('Viewed Product');
    // The request left before the first IndexedDB read had a chance to finish: no await between them.
    await Promise.resolve();
    await Promise.resolve();
    expect(sent.map((r) => r.url)).toEqual(['https://shop.test/relay/v1/config?key=ABC123']);
    await eventually(() => expect(h1.queued).toHaveLength(1));
    expect(h1.queued[0].event.route).toBe('client');
    await eventually(async () => expect((await idbKeys()).filter((k) => String(k).startsWith('w:'))).toHaveLength(1));

    // Revalidation is the browser HTTP cache's job (ETag + Cache-Control: no-cache); meanwhile the cached copy routes.
    configUp = false;
    const second = createRelay({ ...base, endpoint });
    const h2 = recordHooks(second);
    second.track('Viewed Product');
    await isReady(second);
    await eventually(() => expect(h2.queued).toHaveLength(1));
    expect(h2.queued[0].event.route).toBe('client');
  });

  it('an invalid config is rejected whole, naming the entry; the last good config stays', async () => {
    freshBrowser();
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const api = createRelay({ ...base, workflow: { events: { Signup: 'server', Search: 'off' } }, endpoint });
    const hooks = recordHooks(api);
    api.init({ workflow: { events: { Signup: 'client', 'Placed Order': { client: true, server: true } } } as any });
    api.init({ workflow: { events: { Search: 'sideways' } } as any });
    api.track('Signup');
    api.track('Search');
    await eventually(() => expect(hooks.queued).toHaveLength(2));
    expect(hooks.queued.map((q) => q.event.route)).toEqual(['server', 'off']);
    expect(error.mock.calls.map((c) => c[0])).toEqual([
      expect.stringMatching(/workflow config rejected: event "Placed Order" is enabled both/),
      expect.stringMatching(/workflow config rejected: event "Search" has an unknown mode/),
    ]);
  });

  it('a hanging /v1/config delays readiness by the first-visit wait (3 s unless configWaitMs), then the built-in default routes', async () => {
    freshBrowser((r) => (r.url.includes('/v1/config') ? new Promise<Response>(() => {}) : new Response(null, { status: 202 })));
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    // An injected clock: only timers are faked, so IndexedDB and promises run for real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let ready = false;
      const api = createRelay({ ...base, endpoint });
      const hooks = recordHooks(api);
      api.ready(() => (ready = true));
      api.track('Early');
      // Storage opens and the event is stored (unrouted) while the config is awaited. (vi.waitFor would advance the
      // fake clock; the shared waitFor sleeps on node's own timers.)
      await waitFor(async () => (await idbKeys()).some((k) => String(k).startsWith('e:')), { what: 'the event stored' });
      await vi.advanceTimersByTimeAsync(2999);
      expect(ready).toBe(false);
      expect(hooks.queued).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      await waitFor(() => ready, { what: 'ready' });
      await waitFor(() => hooks.queued.length, { what: 'queued' });
      expect(hooks.queued.map((q) => q.event.route)).toEqual(['server']);

      const quick = createRelay({ ...base, endpoint, configWaitMs: 50 });
      let quickReady = false;
      quick.ready(() => (quickReady = true));
      quick.track('Quick');
      const quickHooks = recordHooks(quick);
      await waitFor(async () => (await quick.pending()).length, { what: 'the event stored' });
      await vi.advanceTimersByTimeAsync(49);
      expect(quickReady).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await waitFor(() => quickReady, { what: 'ready after 50 ms' });
      await waitFor(() => quickHooks.queued.length, { what: 'queued' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('events tracked before the config arrives are in IndexedDB at once; a page closed then is delivered by the next load, once', async () => {
    let configUp = false;
    const { sent } = freshBrowser((r) =>
      r.url.includes('/v1/config')
        ? configUp ? json({ workflow: { events: { 'Viewed Product': 'client' } } }) : new Promise<Response>(() => {})
        : r.url.includes('/v1/events') ? json({ accepted: r.body.events.length, rejected: [] }, 202) : new Response(null, { status: 202 }),
    );
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    const first = createRelay({ ...base, endpoint, configWaitMs: 60_000 });
    first.track('Viewed Product', { n: 1 });
    first.identify({ email: 'ada@example.com' });
    first.track('Signed Up');
    // Committed long before the first visit's 3 s wait for the config ends; nothing sent yet.
    await eventually(async () => expect((await idbKeys()).filter((k) => String(k).startsWith('e:'))).toHaveLength(3));
    expect(sent.filter((r) => !r.url.includes('/v1/config')).map((r) => r.url)).toEqual([]);

    // The tab is closed here (its memory is gone); the next page load gets the config and delivers.
    configUp = true;
    const second = createRelay({ ...base, endpoint });
    await isReady(second);
    await second.flush();
    await eventually(async () => expect(await second.pending()).toEqual([]));
    const delivered = () => ({
      klaviyo: sent.filter((r) => r.url.startsWith('https://k.test/')).map((r) => r.body.data.attributes.metric.data.attributes.name),
      relay: sent.filter((r) => r.url.endsWith('/v1/events')).flatMap((r) => r.body.events.map((e: any) => `${e.name ?? e.type}:${e.route}`)),
    });
    const expected = { klaviyo: ['Viewed Product'], relay: ['Viewed Product:client', 'identify:server', 'Signed Up:server'] };
    expect(delivered()).toEqual(expected);

    // Had the first page lived on, it finds nothing left to send, even once its config arrives.
    await first.flush();
    expect(delivered()).toEqual(expected);
  });

  it('the first flush does not wait for the config: what an earlier page left routed goes while this one awaits it', async () => {
    const { sent } = freshBrowser((r) =>
      r.url.includes('/v1/config')
        ? new Promise<Response>(() => {})
        : r.url.startsWith('https://unreachable.test/') ? 'network-error' : json({ accepted: 1, rejected: [] }, 202),
    );
    vi.spyOn(console, 'warn').mockImplementation(() => {});
    // An earlier page routed its event by an inline workflow and could not reach Klaviyo (here: a host that never
    // answers, so only the new page can deliver it).
    const earlier = createRelay({ ...base, klaviyoUrl: 'https://unreachable.test', endpoint, workflow: { default: 'client' } });
    const h1 = recordHooks(earlier);
    earlier.track('Left Behind');
    await eventually(() => expect(h1.queued).toHaveLength(1));
    // This page has no inline workflow: it waits (a minute here) for a /v1/config that never answers.
    const page = createRelay({ ...base, endpoint, configWaitMs: 60_000 });
    let ready = false;
    page.ready(() => (ready = true));
    await eventually(() => expect(sent.some((r) => r.url.startsWith('https://k.test/') && r.body.data.attributes.metric.data.attributes.name == 'Left Behind')).toBe(true));
    await page.flush();
    expect(ready).toBe(false);
  });

  it('an invalid config from the server is not cached and the built-in default applies', async () => {
    freshBrowser((r) => (r.url.includes('/v1/config') ? json({ workflow: { events: { X: 'both' } } }, 200, { etag: '"bad"' }) : new Response(null, { status: 202 })));
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const api = createRelay({ ...base, endpoint });
    const hooks = recordHooks(api);
    api.track('X');
    await eventually(() => expect(hooks.queued).toHaveLength(1));
    expect(hooks.queued[0].event.route).toBe('server');
    expect(error.mock.calls[0][0]).toMatch(/event "X"/);
    expect((await idbKeys()).filter((k) => String(k).startsWith('c:'))).toEqual([]);
  });
});

describe('consent across tabs (the shared marker cookie)', () => {
  it('a denial made in another tab stops this tab at its next flush; a grant there releases held events here', async () => {
    const { sent } = freshBrowser(() => 'network-error');
    const api = createRelay({ ...base, requireConsent: true });
    const hooks = recordHooks(api);
    api.track('Held');
    await isReady(api);
    Cookies.set('klaviyo_relay_consent', '1'); // the other tab's consent({granted: true})
    await api.flush();
    await eventually(() => expect(hooks.queued.map((q) => q.event.name)).toEqual(['Held']));
    const attempts = sent.length;
    expect(attempts).toBeGreaterThan(0);

    Cookies.set('klaviyo_relay_consent', '0'); // the other tab's consent({granted: false})
    api.track('After denial');
    await api.flush();
    expect(sent.length).toBe(attempts);
    await eventually(async () => expect(await idbKeys()).toEqual([]));
    expect(Cookies.get('klaviyo_relay_id')).toBeUndefined();
  });
});

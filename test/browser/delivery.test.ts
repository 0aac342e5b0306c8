// @vitest-environment happy-dom
// Routing by toggles and per-destination delivery, against a recording fetch double.
import { describe, it, expect, vi } from 'vitest';
import { advanceUntil, freshBrowser, injectClock, isReady, json, recordHooks } from './helpers.js';
import { createRelay } from '../../src/browser/index.js';
import type { RelayOptions } from '../../src/browser/types.js';
import { eventually } from '../support/wait-for.js';

const base: RelayOptions = { publicKey: 'ABC123', klaviyoUrl: 'https://k.test/', autoPage: false };
const withEndpoint: RelayOptions = { ...base, endpoint: 'https://shop.test/relay' };
const isKlaviyo = (url: string) => url.startsWith('https://k.test/client/');
const isRelay = (url: string) => url == 'https://shop.test/relay/v1/events';
const names = (body: any) => body.events.map((e: any) => `${e.name}:${e.route}`);

async function started(options: RelayOptions, respond?: Parameters<typeof freshBrowser>[0]) {
  const browser = freshBrowser(respond);
  const api = createRelay(options);
  const hooks = recordHooks(api);
  await isReady(api);
  return { ...browser, api, hooks };
}

describe('routing by the workflow toggles', () => {
  it('client → Klaviyo and a store copy; server → relay only; off → relay only', async () => {
    const { api, sent } = await started({ ...withEndpoint, workflow: { events: { C: 'client', S: 'server', O: 'off' } } });
    api.track('C');
    api.track('S');
    api.track('O');
    await api.flush();
    expect(sent.filter((r) => isKlaviyo(r.url)).map((r) => r.body.data.attributes.metric.data.attributes.name)).toEqual(['C']);
    const batches = sent.filter((r) => isRelay(r.url));
    expect(batches).toHaveLength(1);
    expect(names(batches[0].body)).toEqual(['C:client', 'S:server', 'O:off']);
    expect(await api.pending()).toEqual([]);
  });

  it('without an endpoint: off goes nowhere, server is dropped and reported, client goes to Klaviyo', async () => {
    const { api, sent, hooks } = await started({ ...base, workflow: { events: { O: 'off', S: 'server' } } });
    api.track('O');
    api.track('S');
    api.track('Default');
    await api.flush();
    expect(sent.map((r) => r.url)).toEqual(['https://k.test/client/events?company_id=ABC123']);
    expect(hooks.dropped).toMatchObject([{ event: { name: 'S' }, reason: expect.stringMatching(/endpoint/) }]);
  });

  it('identify routes by "$identify": client → POST /client/profiles', async () => {
    const { api, sent } = await started(base);
    api.identify({ email: 'ada@example.com', plan: 'gold' });
    await api.flush();
    expect(sent[0].url).toBe('https://k.test/client/profiles?company_id=ABC123');
    expect(sent[0].body.data.attributes).toMatchObject({ email: 'ada@example.com', properties: { plan: 'gold' } });
  });
});

describe('per-destination delivery', () => {
  it('a client event delivered to Klaviyo is never resent while only its store copy is pending', async () => {
    injectClock();
    let relayUp = false;
    const { api, sent, hooks } = await started({ ...withEndpoint, workflow: { default: 'client' } }, (r) =>
      isRelay(r.url) && !relayUp ? new Response('down', { status: 503 }) : new Response(null, { status: 202 }),
    );
    // Relays from earlier tests in this file still listen for `online` and share the fetch double: count only
    // requests that carry this test's own event.
    const name = 'Viewed Product (store copy pending)';
    const ours = (r: { url: string; body: any }) => JSON.stringify(r.body).includes(name);
    api.track(name);
    await api.flush();
    expect((await api.pending())[0]).toMatchObject({ destinations: { klaviyo: 'sent', relay: 'pending' }, attempts: 2 });
    expect(hooks.retry).toMatchObject([{ destination: 'relay', status: 503 }]);
    relayUp = true;
    window.dispatchEvent(new Event('online')); // a network-error block would lift; a 503 wait must still hold
    await api.flush();
    expect(sent.filter((r) => isRelay(r.url) && ours(r))).toHaveLength(1);
    await advanceUntil(async () => (await api.pending()).length == 0, 'the store copy sent after its wait');
    expect(sent.filter((r) => isKlaviyo(r.url) && ours(r))).toHaveLength(1);
    expect(sent.filter((r) => isRelay(r.url) && ours(r))).toHaveLength(2);
  });

  it('a 4xx drops the event with Klaviyo\'s error detail; no retry', async () => {
    const { api, sent, hooks } = await started(base, () =>
      json({ errors: [{ status: 400, code: 'invalid', title: 'Invalid input.', detail: 'metric name is too long' }] }, 400),
    );
    api.track('Bad');
    await api.flush();
    await api.flush();
    expect(sent).toHaveLength(1);
    expect(hooks.dropped).toMatchObject([{ event: { name: 'Bad' }, status: 400, reason: 'metric name is too long' }]);
    expect(await api.pending()).toEqual([]);
  });

  it('a batch answer rejecting one index drops only that event', async () => {
    const { api, hooks } = await started({ ...withEndpoint, workflow: { default: 'server' } }, () =>
      json({ accepted: 2, rejected: [{ index: 1, error: 'events[1].name is required' }] }, 202),
    );
    api.track('A');
    api.track('B');
    api.track('C');
    await api.flush();
    expect(hooks.dropped).toMatchObject([{ event: { name: 'B' }, reason: 'events[1].name is required' }]);
    expect(hooks.sent.map((s) => s.event.name)).toEqual(['A', 'C']);
  });

  it('429 with Retry-After pauses the whole Klaviyo endpoint, then delivers everything once', async () => {
    injectClock();
    let limited = true;
    const { api, sent, hooks } = await started(base, () =>
      limited ? json({ errors: [{ detail: 'throttled' }] }, 429, { 'retry-after': '1' }) : new Response(null, { status: 202 }),
    );
    for (let i = 0; i < 6; i++) api.track('E' + i);
    await api.flush();
    const duringLimit = sent.length;
    expect(duringLimit).toBeLessThanOrEqual(4); // the lanes in flight when the 429 came; nothing new started after it
    expect(hooks.retry[0]).toMatchObject({ destination: 'klaviyo', status: 429, waitMs: 1000 });
    await api.flush();
    expect(sent.length).toBe(duringLimit); // still inside the Retry-After window
    limited = false;
    await vi.advanceTimersByTimeAsync(999);
    expect(sent.length).toBe(duringLimit); // not a millisecond early
    await advanceUntil(async () => (await api.pending()).length == 0, 'everything delivered after the Retry-After');
    const delivered = hooks.sent.map((s) => s.event.name).sort();
    expect(delivered).toEqual(['E0', 'E1', 'E2', 'E3', 'E4', 'E5']);
  });

  it('store copies leave as one batch of ≤ 100 events, within 2 s of track without an explicit flush', async () => {
    const { api, sent } = await started({ ...withEndpoint, workflow: { default: 'server' } });
    for (let i = 0; i < 150; i++) api.track('Bulk');
    await eventually(() => expect(sent.filter((r) => isRelay(r.url)).map((r) => r.body.events.length)).toEqual([100, 50]));
  });

  it('pagehide sends owed events with keepalive, within the 64 KB budget', async () => {
    const { api, sent, state } = await started(base, () => 'network-error');
    await api.flush();
    api.track('Small', { note: 'x' });
    api.track('Big', { blob: 'y'.repeat(70_000) });
    await eventually(async () => expect(await api.pending()).toHaveLength(2));
    state.respond = () => new Response(null, { status: 202 });
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    window.dispatchEvent(new Event('online'));
    window.dispatchEvent(new Event('pagehide'));
    const keepalive = sent.filter((r) => r.keepalive);
    expect(keepalive.map((r) => r.body.data.attributes.metric.data.attributes.name)).toContain('Small');
    expect(keepalive.map((r) => r.body.data.attributes.metric.data.attributes.name)).not.toContain('Big');
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
  });

  it('pagehide starts every owed request at once, more than the lanes a visible page uses', async () => {
    const { api, sent, state } = await started(base, () => 'network-error');
    await api.flush();
    const names = ['A', 'B', 'C', 'D', 'E', 'F', 'G'];
    for (const name of names) api.track(name);
    await eventually(async () => expect(await api.pending()).toHaveLength(names.length));
    state.respond = () => new Response(null, { status: 202 });
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    window.dispatchEvent(new Event('online'));
    window.dispatchEvent(new Event('pagehide'));
    // No await since the event: an unloading page would never resume one.
    const keepalive = sent.filter((r) => r.keepalive).map((r) => r.body.data.attributes.metric.data.attributes.name);
    expect(keepalive.sort()).toEqual(names);
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
  });
});

/** unique_ids a request carried to Klaviyo: one for a single event, many for a bulk request. */
const klaviyoIds = (r: { url: string; body: any }) =>
  r.url.includes('/client/event-bulk-create') ? r.body.data.attributes.events.data.map((e: any) => e.attributes.unique_id) : [r.body.data.attributes.unique_id];

describe('batching a backlog (Klaviyo: /client/events 350/s, 3,500/min; /client/event-bulk-create 10/s, 150/min)', () => {
  // https://developers.klaviyo.com/en/reference/bulk_create_client_events
  it('100 events queued offline go in one bulk request once back online; each unique_id once on the wire', async () => {
    const { api, sent, state, hooks } = await started(base, () => 'network-error');
    await api.flush();
    const before = sent.length;
    for (let i = 0; i < 100; i++) api.track('Backlog', { i });
    await eventually(() => expect(hooks.queued).toHaveLength(100));
    state.respond = () => new Response(null, { status: 202 });
    window.dispatchEvent(new Event('online'));
    await eventually(async () => expect(await api.pending()).toEqual([]));
    // Relays of earlier tests hear `online` too and share the fetch double: count only requests carrying our events.
    const ours = new Set(hooks.queued.map((q) => q.event.unique_id));
    const afterOnline = sent.slice(before).filter((r) => isKlaviyo(r.url) && klaviyoIds(r).some((id: string) => ours.has(id)));
    const accepted = afterOnline.slice(-1);
    expect(accepted.map((r) => r.url)).toEqual(['https://k.test/client/event-bulk-create?company_id=ABC123']);
    expect(klaviyoIds(accepted[0]).sort()).toEqual(hooks.queued.map((q) => q.event.unique_id).sort());
    // Offline attempts and the delivery together: at most 3 requests for the 100 events.
    expect(afterOnline.length).toBeLessThanOrEqual(3);
    expect(hooks.sent).toHaveLength(100);
  });

  it('a refused bulk request is split until the refusal names single events: only the bad one is dropped, with the detail', async () => {
    let bad = '';
    const { api, sent, hooks, state } = await started(base, () => 'network-error');
    await api.flush();
    for (let i = 0; i < 30; i++) api.track('Split', { i });
    await eventually(() => expect(hooks.queued).toHaveLength(30));
    bad = hooks.queued[17].event.unique_id;
    const from = sent.length;
    // https://developers.klaviyo.com/en/docs/rate-limits-and-error-handling: a 4xx names what is wrong in `detail`.
    state.respond = (r) =>
      klaviyoIds(r).includes(bad)
        ? json({ errors: [{ status: 400, code: 'invalid', title: 'Invalid input.', detail: 'event 17 is invalid', source: { pointer: '/data' } }] }, 400)
        : new Response(null, { status: 202 });
    window.dispatchEvent(new Event('online'));
    await eventually(async () => expect(await api.pending()).toEqual([]));
    expect(hooks.dropped).toMatchObject([{ event: { unique_id: bad }, status: 400, reason: 'event 17 is invalid' }]);
    expect(hooks.sent.map((s) => s.event.unique_id).sort()).toEqual(hooks.queued.map((q) => q.event.unique_id).filter((id) => id != bad).sort());
    // 30 → 15 + 15 → … : a handful of requests, not 30 singles.
    const requests = sent.slice(from).filter((r) => isKlaviyo(r.url));
    expect(requests.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(30)) + 1);
    expect(requests[0].url).toContain('/client/event-bulk-create');
  });

  it('a 429 from the bulk endpoint waits its Retry-After like any other', async () => {
    injectClock();
    const { api, sent, hooks, state } = await started(base, () => 'network-error');
    await api.flush();
    for (let i = 0; i < 40; i++) api.track('Limited');
    await eventually(() => expect(hooks.queued).toHaveLength(40));
    state.respond = () => json({ errors: [{ detail: 'throttled' }] }, 429, { 'retry-after': '1' });
    const from = sent.length;
    window.dispatchEvent(new Event('online'));
    await eventually(() => expect(hooks.retry.filter((r) => r.status == 429)).toHaveLength(1));
    expect(hooks.retry.at(-1)).toMatchObject({ destination: 'klaviyo', status: 429, waitMs: 1000 });
    await api.flush();
    expect(sent.slice(from).filter((r) => isKlaviyo(r.url))).toHaveLength(1); // still inside the wait
    state.respond = () => new Response(null, { status: 202 });
    await vi.advanceTimersByTimeAsync(999);
    expect(sent.slice(from).filter((r) => isKlaviyo(r.url))).toHaveLength(1); // not a millisecond early
    await advanceUntil(async () => (await api.pending()).length == 0, 'the backlog delivered after the Retry-After');
    expect(sent.slice(from).filter((r) => isKlaviyo(r.url)).map((r) => r.url.split('?')[0].split('/').pop())).toEqual(['event-bulk-create', 'event-bulk-create']);
  });

  it('a 400 on a whole companion batch is no verdict on each event: the batch is split and only the bad event dropped', async () => {
    const { api, hooks, sent } = await started({ ...withEndpoint, workflow: { default: 'server' } }, (r) =>
      isRelay(r.url) && r.body.events.some((e: any) => e.name == 'Poison')
        ? json({ error: r.body.events.length > 1 ? 'invalid batch: Body is not valid JSON' : 'events[0] is not valid' }, 400)
        : json({ accepted: r.body.events?.length, rejected: [] }, 202),
    );
    for (const name of ['A', 'B', 'Poison', 'C', 'D']) api.track(name);
    await eventually(async () => expect(await api.pending()).toEqual([]));
    expect(hooks.dropped).toMatchObject([{ event: { name: 'Poison' }, destination: 'relay', status: 400, reason: 'events[0] is not valid' }]);
    expect(hooks.sent.map((s) => s.event.name).sort()).toEqual(['A', 'B', 'C', 'D']);
    expect(sent.filter((r) => isRelay(r.url) && r.body.events.some((e: any) => e.name == 'Poison')).length).toBeGreaterThan(1);
  });
});

describe('online', () => {
  it('lifts a wait caused by a network error at once (a wait told by the server still holds)', async () => {
    const { api, sent, hooks, state } = await started(base, () => 'network-error');
    // An injected clock: frozen, so the backoff never runs out on its own during the test.
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now);
    try {
      api.track('Back online');
      await eventually(() => expect(hooks.retry).toHaveLength(1));
      const attempts = sent.filter((r) => isKlaviyo(r.url)).length;
      state.respond = () => new Response(null, { status: 202 });
      await api.flush();
      expect(sent.filter((r) => isKlaviyo(r.url))).toHaveLength(attempts); // still waiting out the backoff
      window.dispatchEvent(new Event('online'));
      await api.flush();
      expect(hooks.sent.map((s) => s.event.name)).toContain('Back online');
    } finally {
      vi.mocked(Date.now).mockRestore();
    }
  });
});

describe('first-party fallback (relayFallback)', () => {
  const blocked = (r: { url: string }) => isKlaviyo(r.url);
  it('Klaviyo unreachable 3 times while the companion answers: client events go to the companion as "server", same unique_id', async () => {
    injectClock();
    const { api, sent, hooks } = await started({ ...withEndpoint, relayFallback: true, workflow: { default: 'client' } }, (r) =>
      blocked(r) ? 'network-error' : json({ accepted: r.body.events?.length, rejected: [] }, 202),
    );
    api.track('Blocked 1');
    api.track('Blocked 2');
    await advanceUntil(() => hooks.retry.some((r) => r.fallback), 'the switch to the companion');
    const switched = hooks.retry.find((r) => r.fallback);
    expect(switched).toMatchObject({ destination: 'klaviyo', status: 0 });
    expect(hooks.retry.filter((r) => r.destination == 'klaviyo' && r.status == 0).length).toBeGreaterThanOrEqual(3);
    await advanceUntil(async () => (await api.pending()).length == 0, 'the handed-over events delivered');
    const handed = sent.filter((r) => isRelay(r.url)).flatMap((r) => r.body.events).filter((e: any) => e.route == 'server');
    expect(handed.map((e: any) => e.name).sort()).toEqual(['Blocked 1', 'Blocked 2']);
    const ids = hooks.queued.map((q) => q.event.unique_id).sort();
    expect(handed.map((e: any) => e.unique_id).sort()).toEqual(ids);
    // After the switch the browser stops trying Klaviyo, also for new events.
    const klaviyoTries = sent.filter(blocked).length;
    api.track('After the switch');
    await advanceUntil(async () => (await api.pending()).length == 0, 'the later event delivered');
    expect(sent.filter(blocked)).toHaveLength(klaviyoTries);
    expect(sent.filter((r) => isRelay(r.url)).flatMap((r) => r.body.events).filter((e: any) => e.name == 'After the switch').map((e: any) => e.route)).toContain('server');
  });

  it('is opt-in, and never switches on HTTP errors (a 503 is an answer)', async () => {
    injectClock();
    const { api, hooks } = await started({ ...withEndpoint, workflow: { default: 'client' } }, (r) =>
      blocked(r) ? 'network-error' : json({ accepted: r.body.events?.length, rejected: [] }, 202),
    );
    const five = await started({ ...withEndpoint, relayFallback: true, workflow: { default: 'client' } }, (r) =>
      blocked(r) ? new Response('down', { status: 503 }) : json({ accepted: r.body.events?.length, rejected: [] }, 202),
    );
    api.track('Not opted in');
    five.api.track('Klaviyo 503');
    await advanceUntil(() => hooks.retry.filter((r) => r.destination == 'klaviyo').length >= 3, 'three failed tries without the option');
    await advanceUntil(() => five.hooks.retry.filter((r) => r.destination == 'klaviyo').length >= 3, 'three 503s with the option');
    expect([...hooks.retry, ...five.hooks.retry].some((r) => r.fallback)).toBe(false);
    expect((await api.pending())[0]).toMatchObject({ route: 'client', destinations: { klaviyo: 'pending' } });
  });
});

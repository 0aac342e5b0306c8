// @vitest-environment happy-dom
// Routing by toggles and per-destination delivery, against a recording fetch double.
import { describe, it, expect, vi } from 'vitest';
import { freshBrowser, isReady, json, recordHooks } from './helpers.js';
import { createRelay } from '../../src/browser/index.js';
import type { RelayOptions } from '../../src/browser/types.js';

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
    await vi.waitFor(async () => expect(await api.pending()).toEqual([]), { timeout: 5000 });
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
    await vi.waitFor(async () => expect(await api.pending()).toEqual([]), { timeout: 5000 });
    const delivered = hooks.sent.map((s) => s.event.name).sort();
    expect(delivered).toEqual(['E0', 'E1', 'E2', 'E3', 'E4', 'E5']);
  });

  it('store copies leave as one batch of ≤ 100 events, within 2 s of track without an explicit flush', async () => {
    const { api, sent } = await started({ ...withEndpoint, workflow: { default: 'server' } });
    for (let i = 0; i < 150; i++) api.track('Bulk');
    await vi.waitFor(() => expect(sent.filter((r) => isRelay(r.url)).map((r) => r.body.events.length)).toEqual([100, 50]), { timeout: 2000 });
  });

  it('pagehide sends owed events with keepalive, within the 64 KB budget', async () => {
    const { api, sent, state } = await started(base, () => 'network-error');
    await api.flush();
    api.track('Small', { note: 'x' });
    api.track('Big', { blob: 'y'.repeat(70_000) });
    await vi.waitFor(async () => expect(await api.pending()).toHaveLength(2));
    state.respond = () => new Response(null, { status: 202 });
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    window.dispatchEvent(new Event('online'));
    window.dispatchEvent(new Event('pagehide'));
    const keepalive = sent.filter((r) => r.keepalive);
    expect(keepalive.map((r) => r.body.data.attributes.metric.data.attributes.name)).toContain('Small');
    expect(keepalive.map((r) => r.body.data.attributes.metric.data.attributes.name)).not.toContain('Big');
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
  });
});

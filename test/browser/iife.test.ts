// @vitest-environment happy-dom
// The <script>/GTM entry: data-* attributes, the stub queue replayed in order with original times, push after load.
import { describe, it, expect, vi, beforeEach, onTestFinished } from 'vitest';
import { readFileSync } from 'node:fs';
import { freshBrowser, isReady, recordHooks } from './helpers.js';
import { waitFor, eventually } from '../support/wait-for.js';
import { optionsFromDataset } from '../../src/browser/iife.js';
import type { RelayApi } from '../../src/browser/types.js';

const stubSource = readFileSync('src/browser/stub.html', 'utf8').match(/<script>([\s\S]*?)<\/script>/)![1];
const w = window as any;

/** Runs the IIFE entry as if loaded by `<script data-…>`. */
async function loadSnippet(attributes: Record<string, string>) {
  const script = document.createElement('script');
  for (const [k, v] of Object.entries(attributes)) script.setAttribute(k, v);
  Object.defineProperty(document, 'currentScript', { value: script, configurable: true });
  vi.resetModules();
  await import('../../src/browser/iife.js');
  Object.defineProperty(document, 'currentScript', { value: null, configurable: true });
  return w.klaviyoRelay as RelayApi;
}

let injected: HTMLScriptElement[] = [];
beforeEach(() => {
  delete w.klaviyoRelay;
  // Keep the stub's <script src> out of the DOM: happy-dom would try (and fail) to download it.
  injected = [];
  vi.spyOn(document.head, 'appendChild').mockImplementation((node: any) => (injected.push(node), node));
});

describe('data-* attributes', () => {
  it('map to init options by the dataset convention; present and not "false" is on', () => {
    const script = document.createElement('script');
    script.setAttribute('data-public-key', 'ABC123');
    script.setAttribute('data-endpoint', 'https://shop.test/relay');
    script.setAttribute('data-klaviyo-url', 'https://k.test');
    script.setAttribute('data-require-consent', '');
    script.setAttribute('data-data-layer', 'true');
    script.setAttribute('data-auto-page', 'false');
    script.setAttribute('data-cookie-domain', '.shop.test');
    expect(optionsFromDataset(script.dataset)).toEqual({
      publicKey: 'ABC123', endpoint: 'https://shop.test/relay', klaviyoUrl: 'https://k.test', cookieDomain: '.shop.test',
      requireConsent: true, dataLayer: true, autoPage: false, debug: undefined,
    });
  });
});

describe('the stub', () => {
  it('is a few hundred bytes and injects the script tag', () => {
    expect(stubSource.replace(/\n/g, '').length).toBeLessThan(600);
    new Function(stubSource)();
    expect(injected.map((s) => [s.src, s.async, s.getAttribute('data-public-key')])).toEqual([['https://cdn.example.com/klaviyo-relay.min.js', true, 'ABC123']]);
  });

  it('queued calls replay in order with their original timestamps; push keeps working after load', async () => {
    freshBrowser();
    // An injected clock: the calls are made at t0 and the script loads a minute later, exactly.
    const t0 = Date.now();
    let now = t0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => now);
    onTestFinished(() => clock.mockRestore());
    new Function(stubSource)();
    w.klaviyoRelay.track('First', { n: 1 });
    w.klaviyoRelay.push(['identify', { email: 'ada@example.com' }]);
    w.klaviyoRelay.push(['track', 'Second', { n: 2 }]);
    const stamped = w.klaviyoRelay.map((c: any) => c.t);
    w.klaviyoRelay.push(['track', 'Third', {}, { time: '2026-01-01T00:00:00.000Z' }]);
    w.klaviyoRelay.push(['init', { workflow: { default: 'client' } }]);
    now = t0 + 60_000; // the script loads later than the calls
    const api = await loadSnippet({ 'data-public-key': 'ABC123', 'data-klaviyo-url': 'https://k.test', 'data-auto-page': 'false' });
    expect(Array.isArray(api)).toBe(false);
    const hooks = recordHooks(api);
    api.push(['track', 'After load']);
    await isReady(api);
    await eventually(() => expect(hooks.queued).toHaveLength(5));
    const events = hooks.queued.map((q) => q.event);
    expect(events.map((e) => e.name || e.type)).toEqual(['First', 'identify', 'Second', 'Third', 'After load']);
    expect(stamped).toEqual([t0, t0, t0]);
    expect(events.map((e) => Date.parse(e.time))).toEqual([t0, t0, t0, Date.parse('2026-01-01T00:00:00.000Z'), t0 + 60_000]);
    expect(events[2].profile.email).toBe('ada@example.com');
  });

  it('auto page view on load (unless data-auto-page="false") and on SPA navigation', async () => {
    freshBrowser();
    const api = await loadSnippet({ 'data-public-key': 'ABC123', 'data-klaviyo-url': 'https://k.test' });
    const hooks = recordHooks(api);
    await isReady(api);
    history.pushState(null, '', '/products/hat');
    history.replaceState(null, '', '/products/hat#reviews');
    await eventually(() => expect(hooks.queued).toHaveLength(2));
    expect(hooks.queued.map((q) => q.event.name)).toEqual(['Viewed Page', 'Viewed Page']);
    expect(hooks.queued[1].event.properties.Path).toBe('/products/hat');
    history.replaceState(null, '', '/');
  });

  it('a second copy of the script merges its attributes into the running snippet', async () => {
    const { sent } = freshBrowser();
    const debug = vi.spyOn(console, 'debug').mockImplementation(() => {});
    // The first tag has no key (say, a template's placeholder tag): nothing can leave the page yet.
    const first = await loadSnippet({ 'data-auto-page': 'false' });
    first.track('Before the key');
    const second = await loadSnippet({ 'data-public-key': 'ABC123', 'data-klaviyo-url': 'https://k.test', 'data-debug': '' });
    expect(second).toBe(first);
    // The second tag's key and Klaviyo URL are in force: the snippet boots and delivers there, with debug logging on.
    let ready = false;
    first.ready(() => (ready = true));
    await waitFor(() => ready, { timeoutMs: 5000, what: "the second tag's key to boot the snippet" });
    await first.flush();
    expect(sent.map((r) => [r.url, r.body.data.attributes.metric?.data.attributes.name])).toEqual([
      ['https://k.test/client/events?company_id=ABC123', 'Before the key'],
    ]);
    expect(debug).toHaveBeenCalledWith('klaviyo-relay', 'queued', expect.anything());
    debug.mockRestore();
  });
});

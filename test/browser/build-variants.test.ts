// @vitest-environment happy-dom
// The core <script> build (klaviyo-relay.min.js) has no GA4 dataLayer bridge: rollup.config.mjs builds it with
// WITH_DATA_LAYER = false, as simulated here. Asking it for the bridge must say which build has it, once, instead of
// silently doing nothing. The built files themselves are checked in real Chromium by e2e/build-variants.spec.ts.
import { describe, it, expect, vi, afterEach } from 'vitest';
import { freshBrowser, isReady, recordHooks } from './helpers.js';
import { createRelay } from '../../src/browser/relay.js';
import { eventually } from '../support/wait-for.js';

vi.mock('../../src/browser/build-flags.js', () => ({ WITH_DATA_LAYER: false }));
afterEach(() => {
  vi.restoreAllMocks();
  delete (window as any).dataLayer;
});

describe('the core build asked for the dataLayer bridge', () => {
  it('warns once that the gtm build is needed, leaves window.dataLayer alone and keeps working', async () => {
    freshBrowser();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const layer: unknown[] = [{ event: 'view_item', ecommerce: { items: [{ item_id: 'H1', item_name: 'Hat', price: 10 }] } }];
    const push = layer.push;
    (window as any).dataLayer = layer;
    const api = createRelay({ publicKey: 'ABC123', klaviyoUrl: 'https://k.test', autoPage: false, dataLayer: true });
    const hooks = recordHooks(api);
    await isReady(api);
    api.init({ dataLayer: true }); // asked again: still one warning
    expect(warn.mock.calls.map((c) => c[0])).toEqual([
      'klaviyo-relay: dataLayer needs klaviyo-relay.gtm.min.js; this build has no dataLayer bridge',
    ]);
    expect(layer.push).toBe(push);
    api.track('Still works');
    await eventually(() => expect(hooks.queued.map((q) => q.event.name)).toEqual(['Still works']));
  });
});

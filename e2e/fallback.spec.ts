// First-party fallback in real Chromium: the shopper's browser blocks Klaviyo's host (as an ad blocker does, with
// `blockedbyclient`), the companion server answers. With `data-relay-fallback`, the snippet hands its client events
// to the companion as route "server" with the same unique_id; the companion forwards them, so Klaviyo gets each
// event once, and the browser stops sending to Klaviyo itself.
import { test, expect } from '@playwright/test';
import { acceptedUniqueIds, snippetReady, startStack, storedEvents, trackAll, type Stack } from './support/stack.js';

let stack: Stack;
test.beforeAll(async () => {
  stack = await startStack({ workflow: { default: 'client' }, attributes: { 'relay-fallback': '' } });
});
test.afterAll(() => stack?.close());

test('Klaviyo blocked in the browser: client events reach Klaviyo through the companion, each once', async ({ page }) => {
  const { emulator, relay } = stack;
  const blocked: string[] = [];
  await page.route(emulator.url + '/client/**', (route) => {
    blocked.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  await page.goto(stack.siteUrl);
  await snippetReady(page);
  const switches = await page.evaluateHandle(() => {
    const seen: any[] = [];
    (window as any).klaviyoRelay.on('retry', (info: any) => info.fallback && seen.push(info));
    return seen;
  });

  const ids = await trackAll(page, ['Viewed Product', 'Added to Cart', 'Newsletter Signup'], { e2e: 'fallback' });
  // The sandbox stores each event once, sent by the companion's forwarder with the private key.
  await expect.poll(() => emulator.state.events().map((e) => e.unique_id).sort(), { timeout: 30_000 }).toEqual(Object.values(ids).sort());
  expect(emulator.state.events().every((e) => e.source == 'server')).toBe(true);
  expect(acceptedUniqueIds(emulator, '/client/')).toEqual([]);
  expect(acceptedUniqueIds(emulator, '/api/').sort()).toEqual(Object.values(ids).sort());
  expect(storedEvents(relay!).filter((e) => Object.values(ids).includes(e.unique_id)).map((e) => e.route)).toEqual(['server', 'server', 'server']);

  // The switch was reported once on the retry hook, after a few requests that got no answer at all.
  const seen = await switches.jsonValue();
  expect(seen).toHaveLength(1);
  expect(seen[0]).toMatchObject({ destination: 'klaviyo', status: 0, fallback: true });
  const triesBeforeSwitch = blocked.length;
  expect(triesBeforeSwitch).toBeGreaterThanOrEqual(3);

  // Later client events go straight to the companion: the browser no longer tries Klaviyo.
  const later = await trackAll(page, ['Viewed Collection'], { e2e: 'fallback' });
  await expect.poll(() => emulator.state.events().map((e) => e.unique_id), { timeout: 30_000 }).toContain(later['Viewed Collection']);
  await expect.poll(() => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length))).toBe(0);
  expect(blocked).toHaveLength(triesBeforeSwitch);
  for (const m of emulator.internals.state.events.metrics.values()) expect(m.duplicates, m.name).toBe(0);
});

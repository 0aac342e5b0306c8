// The sandbox answers 429 (with Retry-After) and 5xx, to the browser and to the companion server's forwarder, then
// recovers: every event arrives, none twice, and the snippet reported the waits it honoured.
import { test, expect } from '@playwright/test';
import { acceptedUniqueIds, snippetReady, startStack, storedEvents, trackAll, type Stack } from './support/stack.js';

let stack: Stack;
test.beforeAll(async () => {
  stack = await startStack({ workflow: { default: 'client', events: { 'Started Checkout': 'server', 'Placed Order': 'server' } } });
});
test.afterAll(() => stack?.close());

test('429 and 5xx from the sandbox, then recovery: nothing lost, nothing doubled', async ({ page }) => {
  const { emulator, relay } = stack;
  await page.goto(stack.siteUrl);
  await snippetReady(page);
  const retries = await page.evaluateHandle(() => {
    const seen: any[] = [];
    (window as any).klaviyoRelay.on('retry', (info: any) => seen.push(info));
    return seen;
  });

  // The browser's Client API calls: two 429s telling it to wait 1 s, then two 503s.
  emulator.faults.add({ path: '/client/events', status: 429, retryAfter: 1, count: 2 });
  emulator.faults.add({ path: '/client/events', status: 503, count: 2 });
  // The forwarder's server API calls: a 503 and a 429 for whichever endpoint it uses, then a dropped connection.
  emulator.faults.add({ path: '/api/event', status: 503, count: 1 });
  emulator.faults.add({ path: '/api/event', status: 429, retryAfter: 1, count: 1 });
  emulator.faults.add({ path: '/api/event', drop: true, count: 1 });

  const names = ['Viewed Product', 'Added to Cart', 'Viewed Collection', 'Searched Site', 'Started Checkout', 'Placed Order'];
  const ids = await trackAll(page, names, { e2e: 'faults' });
  const clientIds = names.slice(0, 4).map((n) => ids[n]);
  const serverIds = names.slice(4).map((n) => ids[n]);

  await expect.poll(() => emulator.state.events().length, { timeout: 30_000 }).toBe(names.length);
  expect(emulator.faults.list()).toEqual([]); // every injected fault was hit

  // The faults were really answered: 429s and 503s on both paths, and the snippet waited on them.
  const failed = emulator.requests.filter((r) => r.status >= 400 || r.status == 0).map((r) => `${r.path.startsWith('/client') ? 'client' : 'api'} ${r.status}`);
  expect(failed.sort()).toEqual(['api 0', 'api 429', 'api 503', 'client 429', 'client 429', 'client 503', 'client 503']);
  const seen = await retries.jsonValue();
  expect(seen.map((r: any) => r.status).sort()).toEqual([429, 429, 503, 503]);
  expect(seen.filter((r: any) => r.status == 429).every((r: any) => r.waitMs == 1000)).toBe(true);

  // Recovery: each event stored once in the sandbox, accepted once per path, nothing left owed anywhere.
  expect(emulator.state.events().map((e) => e.unique_id).sort()).toEqual(Object.values(ids).sort());
  expect(acceptedUniqueIds(emulator, '/client/events').sort()).toEqual([...clientIds].sort());
  expect(acceptedUniqueIds(emulator, '/api/').sort()).toEqual([...serverIds].sort());
  for (const m of emulator.internals.state.events.metrics.values()) expect(m.duplicates, m.name).toBe(0);
  await expect.poll(() => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length))).toBe(0);
  await expect.poll(() => storedEvents(relay!).filter((e) => e.forward_status == 'sent').length).toBe(2);
  expect(storedEvents(relay!)).toHaveLength(names.length);
});

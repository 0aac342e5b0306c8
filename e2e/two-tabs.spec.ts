// Two tabs of one storefront share one IndexedDB outbox. Both come back online at the same moment and both try to
// flush it; the flush lock lets one at a time send, so no event reaches the sandbox or the companion server twice.
import { test, expect, type Page } from '@playwright/test';
import { acceptedUniqueIds, drained, snippetReady, startStack, storedEvents, type Stack } from './support/stack.js';

let stack: Stack;
test.beforeAll(async () => {
  stack = await startStack({ workflow: { default: 'client', events: { 'Started Checkout': 'server' } } });
});
test.afterAll(() => stack?.close());

/** Tracks n events tagged with the tab's name; resolves with their unique_ids once all are durably queued. */
const trackMany = (page: Page, n: number, tab: string) =>
  page.evaluate(
    ({ n, tab }) =>
      new Promise<string[]>((ok) => {
        const relay = (window as any).klaviyoRelay;
        const ids: string[] = [];
        relay.on('queued', (info: any) => info.event.properties?.tab == tab && ids.push(info.event.unique_id) == n && ok(ids));
        for (let i = 0; i < n; i++) relay.track(i % 4 == 3 ? 'Started Checkout' : 'Viewed Product', { tab, i });
      }),
    { n, tab },
  );

const pendingIn = (page: Page) => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length));

test('two tabs flushing one outbox never send an event twice', async ({ context }) => {
  const { emulator, relay } = stack;
  // Every store batch either tab sends, as the browser saw it.
  const toStore: string[] = [];
  context.on('request', (req) => {
    if (req.method() == 'POST' && req.url().startsWith(stack.relayUrl + '/v1/events'))
      toStore.push(...JSON.parse(req.postData()!).events.map((e: { unique_id: string }) => e.unique_id));
  });
  const a = await context.newPage();
  const b = await context.newPage();
  for (const tab of [a, b]) {
    await tab.goto(stack.siteUrl);
    await snippetReady(tab);
  }

  // Offline, each tab queues its own events into the shared outbox; each tab sees all of them.
  await context.setOffline(true);
  const ids = [...(await trackMany(a, 12, 'A')), ...(await trackMany(b, 12, 'B'))];
  expect(new Set(ids).size).toBe(24);
  expect(await pendingIn(a)).toBe(24);
  expect(await pendingIn(b)).toBe(24);
  expect(emulator.requests).toHaveLength(0);

  // Back online: both tabs get `online` at once, and both are also told to flush, repeatedly, at the same time.
  await context.setOffline(false);
  await Promise.all([a, b].flatMap((tab) => [1, 2, 3].map(() => tab.evaluate(() => (window as any).klaviyoRelay.flush()))));

  const clientIds = ids.filter((_, i) => i % 12 % 4 != 3);
  const serverIds = ids.filter((_, i) => i % 12 % 4 == 3);
  await expect.poll(() => emulator.state.events().length, { timeout: 20_000 }).toBe(24);
  await drained(a, b);

  // Each client event was accepted at /client/events exactly once; the store got each event exactly once.
  const sentToKlaviyo = acceptedUniqueIds(emulator, '/client/events');
  expect(sentToKlaviyo.sort()).toEqual([...clientIds].sort());
  const received = emulator.requests.filter((r) => r.path == '/client/events');
  expect(received).toHaveLength(clientIds.length); // not even a rejected or duplicate attempt
  expect(toStore.sort()).toEqual([...ids].sort());
  expect(storedEvents(relay!).map((e) => e.unique_id).sort()).toEqual([...ids].sort());
  // The forwarder sent the server ones; the sandbox dropped no duplicate anywhere.
  expect(emulator.state.events().filter((e) => e.source == 'server').map((e) => e.unique_id).sort()).toEqual([...serverIds].sort());
  expect(emulator.internals.state.events.metrics.get('Viewed Product')?.duplicates).toBe(0);
  expect(emulator.internals.state.events.metrics.get('Started Checkout')?.duplicates).toBe(0);
});

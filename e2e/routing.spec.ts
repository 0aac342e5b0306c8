// The event-workflow toggles route each event to the right place, in real Chromium: `client` events go from the
// browser to the sandbox's /client/events, `server` events reach the sandbox only through the companion server's
// forwarder (private key, /api/*), and `off` events stay in the companion server's store.
import { test, expect } from '@playwright/test';
import { acceptedUniqueIds, snippetReady, startStack, storedEvents, trackAll, type Stack } from './support/stack.js';

let stack: Stack;
test.beforeAll(async () => {
  stack = await startStack({
    workflow: {
      default: 'off',
      events: { 'Viewed Product': 'client', 'Started Checkout': 'server', 'Placed Order': { client: false, server: true }, 'Added to Cart': { client: true, server: false } },
    },
  });
});
test.afterAll(() => stack?.close());

test('client, server and off events each land where their toggle says, once', async ({ page }) => {
  const { emulator, relay } = stack;
  await page.goto(stack.siteUrl);
  await snippetReady(page);
  const ids = await trackAll(page, ['Viewed Product', 'Added to Cart', 'Started Checkout', 'Placed Order', 'Searched Site'], { Page: 'e2e' });
  const client = [ids['Viewed Product'], ids['Added to Cart']];
  const server = [ids['Started Checkout'], ids['Placed Order']];
  const off = ids['Searched Site']; // not listed: the default, `off`

  // Every event reaches the companion server's store, marked with its route.
  await expect.poll(() => storedEvents(relay!).length, { timeout: 10_000 }).toBe(5);
  const routes = Object.fromEntries(storedEvents(relay!).map((e) => [e.unique_id, e.route]));
  expect(routes).toEqual({ [client[0]]: 'client', [client[1]]: 'client', [server[0]]: 'server', [server[1]]: 'server', [off]: 'off' });

  // The sandbox ends up with the client and server events, each once, and never the off one.
  await expect.poll(() => emulator.state.events().map((e) => e.unique_id).sort(), { timeout: 15_000 }).toEqual([...client, ...server].sort());
  const source = Object.fromEntries(emulator.state.events().map((e) => [e.unique_id, e.source]));
  expect(source).toEqual({ [client[0]]: 'client', [client[1]]: 'client', [server[0]]: 'server', [server[1]]: 'server' });

  // Client events came straight from the browser with the public key; server ones only via the forwarder's /api/*.
  expect(acceptedUniqueIds(emulator, '/client/events').sort()).toEqual([...client].sort());
  expect(acceptedUniqueIds(emulator, '/api/').sort()).toEqual([...server].sort());
  // Only server items were queued for forwarding; client and off store copies are never forwarded.
  const forwarded = storedEvents(relay!).filter((e) => e.forward_status).map((e) => e.unique_id);
  expect(forwarded.sort()).toEqual([...server].sort());
  await expect.poll(() => storedEvents(relay!).filter((e) => e.forward_status == 'sent').length).toBe(2);

  // Nothing arrives twice, and nothing is left in the browser's outbox.
  expect(emulator.state.events().length).toBe(4);
  expect(emulator.requests.filter((r) => r.status >= 400)).toEqual([]);
  await expect.poll(() => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length))).toBe(0);
});

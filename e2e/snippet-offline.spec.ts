// Real Chromium, real IndexedDB, the Klaviyo sandbox: events tracked while offline survive a reload and are
// delivered exactly once when the browser comes back online.
import { test, expect } from '@playwright/test';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startEmulator, type Emulator } from '../dist/node/emulator/index.js';
import { acceptedUniqueIds, drained, outage } from './support/stack.js';

let emulator: Emulator;
let site: Server;
let siteUrl: string;

/** A storefront page on its own loopback origin that loads the built IIFE with data-* attributes. */
function startSite(klaviyoUrl: string): Promise<string> {
  const snippet = readFileSync('dist/klaviyo-relay.min.js');
  const page = `<!doctype html><title>shop</title>
<script src="/klaviyo-relay.min.js" data-public-key="ABC123" data-klaviyo-url="${klaviyoUrl}" data-auto-page="false"></script>`;
  site = createServer((req, res) => {
    const js = req.url == '/klaviyo-relay.min.js';
    res.writeHead(200, { 'content-type': js ? 'text/javascript' : 'text/html', 'cache-control': 'no-store' });
    res.end(js ? snippet : page);
  });
  return new Promise((ok) => site.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`)));
}

test.beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  siteUrl = await startSite(emulator.url);
});
test.afterAll(async () => {
  await emulator?.close();
  await new Promise((ok) => site?.close(ok));
});

test('offline → track → reload → online: every event delivered exactly once', async ({ page, context }) => {
  // Serve the storefront through the test runner so the page can reload while the browser itself is offline.
  // Chromium then treats the page as public, so it needs the local-network-access grant to reach the sandbox.
  await page.route(siteUrl + '**', async (route) => route.fulfill({ response: await route.fetch() }));
  await context.grantPermissions(['local-network-access']);
  await page.goto(siteUrl);
  await page.evaluate(() => new Promise<void>((ok) => (window as any).klaviyoRelay.ready(() => ok())));

  await outage(context, emulator, true);
  const names = ['Viewed Product', 'Added to Cart', 'Started Checkout', 'Newsletter Signup', 'Searched Site'];
  const queued = await page.evaluate(async (names) => {
    const relay = (window as any).klaviyoRelay;
    const done = new Promise<string[]>((ok) => {
      const ids: string[] = [];
      relay.on('queued', (info: any) => ids.push(info.event.unique_id) == names.length && ok(ids));
    });
    names.forEach((name, i) => relay.track(name, { step: i }));
    return done;
  }, names);
  expect(new Set(queued).size).toBe(names.length);
  expect(emulator.state.events()).toHaveLength(0);

  await page.reload();
  const waiting = await page.evaluate(async () => {
    const relay = (window as any).klaviyoRelay;
    await new Promise((ok) => relay.ready(ok));
    return (await relay.pending()).map((p: any) => p.name);
  });
  expect(waiting.sort()).toEqual([...names].sort());
  expect(emulator.state.events()).toHaveLength(0);

  await outage(context, emulator, false);
  await expect.poll(() => emulator.state.events().length, { timeout: 15_000 }).toBe(names.length);
  await expect.poll(() => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length))).toBe(0);

  const stored = emulator.state.events();
  expect(stored.map((e) => e.unique_id).sort()).toEqual([...queued].sort());
  expect(stored.map((e) => e.properties.step).sort()).toEqual([0, 1, 2, 3, 4]);
  expect(stored.every((e) => e.source == 'client')).toBe(true);
  const accepted = emulator.requests.filter((r) => r.path.startsWith('/client/events') && r.status >= 200 && r.status < 300);
  expect(accepted).toHaveLength(names.length);
  // Nothing more arrives after a further flush and another reload.
  await page.reload();
  await page.evaluate(() => (window as any).klaviyoRelay.flush());
  expect(emulator.state.events()).toHaveLength(names.length);
});

test('two tabs offline, then online: one outbox, each event delivered once (Web Locks)', async ({ context }) => {
  emulator.reset();
  await context.route(siteUrl + '**', async (route) => route.fulfill({ response: await route.fetch() }));
  await context.grantPermissions(['local-network-access']);
  const tabs = [await context.newPage(), await context.newPage()];
  for (const tab of tabs) {
    await tab.goto(siteUrl);
    await tab.evaluate(() => new Promise<void>((ok) => (window as any).klaviyoRelay.ready(() => ok())));
  }
  await outage(context, emulator, true);
  const ids = (
    await Promise.all(
      tabs.map((tab, t) =>
        tab.evaluate(async (t) => {
          const relay = (window as any).klaviyoRelay;
          const ids: string[] = [];
          const done = new Promise<string[]>((ok) => relay.on('queued', (i: any) => ids.push(i.event.unique_id) == 20 && ok(ids)));
          for (let i = 0; i < 20; i++) relay.track(`Tab ${t} Event`, { i });
          return done;
        }, t),
      ),
    )
  ).flat();
  // Each tab sees the other's events in the shared IndexedDB outbox.
  expect(await tabs[0].evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length))).toBe(40);

  await outage(context, emulator, false); // both tabs get `online` and race to flush
  await expect.poll(() => emulator.state.events().length, { timeout: 20_000 }).toBe(40);
  await drained(...tabs);
  expect(emulator.state.events().map((e) => e.unique_id).sort()).toEqual([...ids].sort());
  // 40 events of one visitor: a backlog, so they may go in bulk; either way each unique_id is accepted once.
  expect(acceptedUniqueIds(emulator, '/client/').sort()).toEqual([...ids].sort());
});

test('100 events queued offline, a reload, then online: at most 3 requests carry them, each stored once', async ({ page, context }) => {
  emulator.reset();
  await page.route(siteUrl + '**', async (route) => route.fulfill({ response: await route.fetch() }));
  await context.grantPermissions(['local-network-access']);
  await page.goto(siteUrl);
  await page.evaluate(() => new Promise<void>((ok) => (window as any).klaviyoRelay.ready(() => ok())));
  await outage(context, emulator, true);
  const ids = await page.evaluate(
    () =>
      new Promise<string[]>((ok) => {
        const relay = (window as any).klaviyoRelay;
        const ids: string[] = [];
        relay.on('queued', (info: any) => ids.push(info.event.unique_id) == 100 && ok(ids));
        for (let i = 0; i < 100; i++) relay.track('Backlog Event', { i });
      }),
  );
  await page.reload();
  await page.evaluate(() => new Promise<void>((ok) => (window as any).klaviyoRelay.ready(() => ok())));
  await outage(context, emulator, false);
  await expect.poll(() => emulator.state.events().length, { timeout: 15_000 }).toBe(100);
  await expect.poll(() => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: unknown[]) => p.length))).toBe(0);
  expect(emulator.state.events().map((e) => e.unique_id).sort()).toEqual([...ids].sort());
  const carrying = emulator.requests.filter((r) => r.path.startsWith('/client/') && JSON.stringify(r.body ?? '').includes(ids[0]));
  expect(carrying.length).toBeLessThanOrEqual(3);
  expect(carrying.every((r) => r.path.startsWith('/client/event-bulk-create'))).toBe(true);
});

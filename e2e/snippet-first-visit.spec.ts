// Real Chromium, first visit: the companion server's /v1/config has not answered yet (the snippet waits for it, 3 s
// by default; here `configWaitMs` makes the wait long enough that a loaded machine cannot end it mid-test). Events
// tracked in that window are committed to IndexedDB at once, so a tab closed before the config arrives loses
// nothing: the next page load routes them by the config and delivers each exactly once.
import { test, expect } from '@playwright/test';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startEmulator, type Emulator } from '../dist/node/emulator/index.js';
import { drained } from './support/stack.js';

let emulator: Emulator;
let site: Server;
let siteUrl: string;
/** Store copies the page posted to `/v1/events`, as `name:route`. */
const storeCopies: string[] = [];
/** Config requests held unanswered until the test lets the config "arrive". */
const heldConfig: ServerResponse[] = [];
let configUp = false;
const workflow = { default: 'server', events: { 'Viewed Product': 'client', 'Added to Cart': 'client' } };

/** A storefront whose own origin is the companion endpoint: `/v1/config` and `/v1/events` are served here. */
function startSite(klaviyoUrl: string): Promise<string> {
  const snippet = readFileSync('dist/klaviyo-relay.min.js');
  site = createServer((req, res) => {
    const path = req.url!.split('?')[0];
    if (path == '/v1/config') return void (configUp ? res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ workflow })) : heldConfig.push(res));
    if (path == '/v1/events') {
      let body = '';
      req.on('data', (c) => (body += c)).on('end', () => {
        const { events } = JSON.parse(body);
        storeCopies.push(...events.map((e: { name?: string; type?: string; route: string }) => `${e.name ?? e.type}:${e.route}`));
        res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: events.length, rejected: [] }));
      });
      return;
    }
    const js = path == '/klaviyo-relay.min.js';
    res.writeHead(200, { 'content-type': js ? 'text/javascript' : 'text/html', 'cache-control': 'no-store' });
    res.end(js ? snippet : `<!doctype html><title>shop</title>
<script>window.klaviyoRelay = [['init', { configWaitMs: 600000 }]];</script>
<script src="/klaviyo-relay.min.js" data-public-key="ABC123" data-klaviyo-url="${klaviyoUrl}" data-endpoint="http://${req.headers.host}" data-auto-page="false"></script>`);
  });
  return new Promise((ok) => site.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(site.address() as AddressInfo).port}`)));
}

test.beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  siteUrl = await startSite(emulator.url);
});
test.afterAll(async () => {
  heldConfig.forEach((res) => res.destroy());
  site?.closeAllConnections();
  await emulator?.close();
  await new Promise((ok) => site?.close(ok));
});

/** The outbox keys committed in the page's IndexedDB. */
const outboxKeys = () =>
  new Promise<string[]>((ok) => {
    indexedDB.open('klaviyo-relay').onsuccess = (ev: any) => {
      const db = ev.target.result;
      if (!db.objectStoreNames.contains('kv')) return ok([]);
      const req = db.transaction('kv').objectStore('kv').getAllKeys();
      req.onsuccess = () => ok(req.result.filter((k: string) => k.startsWith('e:')));
    };
  });

test('a tab closed before the first config arrives loses nothing; the next load delivers each event once', async ({ context }) => {
  const first = await context.newPage();
  await first.goto(siteUrl + '/');
  await first.evaluate(() => {
    const relay = (window as any).klaviyoRelay;
    relay.track('Viewed Product', { n: 1 });
    relay.track('Added to Cart', { n: 2 });
    relay.track('Newsletter Signup', { n: 3 });
  });
  await expect.poll(() => first.evaluate(outboxKeys).then((keys) => keys.length)).toBe(3);
  // Still inside the snippet's wait for the config: not ready, nothing routed.
  expect(heldConfig).toHaveLength(1);
  expect(await first.evaluate(() => new Promise((ok) => { let ready = false; (window as any).klaviyoRelay.ready(() => (ready = true)); ok(ready); }))).toBe(false);
  expect(await first.evaluate(() => (window as any).klaviyoRelay.pending().then((p: any[]) => p.map((e) => e.route ?? 'unrouted')))).toEqual(['unrouted', 'unrouted', 'unrouted']);
  await first.close(); // the tab goes away before the config ever arrived
  expect(storeCopies).toEqual([]);
  expect(emulator.state.events()).toHaveLength(0);

  configUp = true;
  const second = await context.newPage();
  await second.goto(siteUrl + '/');
  await expect.poll(() => emulator.state.events().length, { timeout: 15_000 }).toBe(2);
  await expect.poll(() => storeCopies.length, { timeout: 15_000 }).toBe(3);
  await drained(second);
  expect(emulator.state.events().map((e) => e.properties.n).sort()).toEqual([1, 2]);
  expect(emulator.requests.filter((r) => r.path.startsWith('/client/events') && r.status >= 200 && r.status < 300)).toHaveLength(2);
  expect(storeCopies.sort()).toEqual(['Added to Cart:client', 'Newsletter Signup:server', 'Viewed Product:client']);
});

// Consent gating with data-require-consent, in real Chromium: before consent nothing is stored (IndexedDB),
// sent (sandbox, companion server) or cookied; after the grant the waiting events go out; a denial clears the
// outbox and the id cookie, and later events stay home.
import { test, expect, type Page } from '@playwright/test';
import { snippetReady, startStack, storedEvents, trackAll, type Stack } from './support/stack.js';

let stack: Stack;
test.beforeAll(async () => {
  stack = await startStack({ workflow: { default: 'client', events: { 'Started Checkout': 'server' } }, attributes: { 'require-consent': '' } });
});
test.afterAll(() => stack?.close());

/** Every key in every IndexedDB object store of the page's origin. */
const idbKeys = (page: Page) =>
  page.evaluate(async () => {
    const keys: string[] = [];
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise<IDBDatabase>((ok, fail) => Object.assign(indexedDB.open(name!), { onsuccess: (e: any) => ok(e.target.result), onerror: fail }));
      for (const store of Array.from(db.objectStoreNames)) {
        const all = db.transaction(store).objectStore(store).getAllKeys();
        keys.push(...(await new Promise<IDBValidKey[]>((ok) => (all.onsuccess = () => ok(all.result)))).map(String));
      }
      db.close();
    }
    return keys;
  });

const pending = (page: Page) => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: any[]) => p.map((e) => e.name)));
const eventsSentFromBrowser = (stack: Stack) => stack.emulator.requests.filter((r) => r.path.startsWith('/client/'));

test('nothing stored, sent or cookied before consent; sent after the grant; denial clears', async ({ page, context }) => {
  const { emulator, relay } = stack;
  await page.goto(stack.siteUrl);
  await snippetReady(page);
  await page.evaluate(() => {
    const relay = (window as any).klaviyoRelay;
    relay.identify({ email: 'ada@example.com', first_name: 'Ada' });
    relay.track('Viewed Product', { ProductName: 'Hat' });
    relay.track('Started Checkout', { $value: 20 });
    // A flush returns once whatever it sent is answered: anything let out before consent is in the logs by then.
    return relay.flush();
  });

  expect(eventsSentFromBrowser(stack)).toEqual([]);
  expect(storedEvents(relay!)).toEqual([]);
  expect(await context.cookies()).toEqual([]);
  expect(await idbKeys(page)).toEqual([]);
  // Held in memory only, and shown as such.
  const held = await page.evaluate(() => (window as any).klaviyoRelay.pending());
  expect(held.map((p: any) => [p.type, p.name, p.error, p.destinations])).toEqual([
    ['identify', undefined, 'waiting for consent', {}],
    ['track', 'Viewed Product', 'waiting for consent', {}],
    ['track', 'Started Checkout', 'waiting for consent', {}],
  ]);

  // Granting consent sends what was held: the profile and both events.
  await page.evaluate(() => (window as any).klaviyoRelay.consent({ granted: true }));
  await expect.poll(() => emulator.state.events().map((e) => e.metric).sort(), { timeout: 15_000 }).toEqual(['Started Checkout', 'Viewed Product']);
  await expect.poll(() => storedEvents(relay!).map((e) => e.name ?? e.type).sort()).toEqual(['Started Checkout', 'Viewed Product', 'identify']);
  expect(emulator.state.profiles().some((p) => p.email == 'ada@example.com')).toBe(true);
  const cookies = Object.fromEntries((await context.cookies()).map((c) => [c.name, c]));
  expect(cookies.klaviyo_relay_id?.value).toMatch(/^[0-9a-f-]{36}$/);
  expect(cookies.klaviyo_relay_id.sameSite).toBe('Lax');
  expect(cookies.klaviyo_relay_id.expires * 1000 - Date.now()).toBeGreaterThan(360 * 864e5);

  // Offline, two more events wait in the outbox; then the visitor withdraws consent.
  await context.setOffline(true);
  await trackAll(page, ['Added to Cart', 'Searched Site']);
  expect((await pending(page)).sort()).toEqual(['Added to Cart', 'Searched Site']);
  await page.evaluate(() => (window as any).klaviyoRelay.consent({ granted: false }));
  await expect.poll(() => pending(page)).toEqual([]);
  expect((await idbKeys(page)).filter((k) => k.startsWith('e:') || k == 'p')).toEqual([]);
  expect((await context.cookies()).map((c) => c.name)).not.toContain('klaviyo_relay_id');

  // Back online, nothing of the cleared or later events leaves the page.
  await context.setOffline(false);
  await page.evaluate(() => {
    (window as any).klaviyoRelay.track('Viewed Product', { after: 'denial' });
    return (window as any).klaviyoRelay.flush();
  });
  expect(emulator.state.events()).toHaveLength(2);
  expect(storedEvents(relay!)).toHaveLength(3);
  expect(await page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: any[]) => p.map((e) => [e.name, e.error])))).toEqual([
    ['Viewed Product', 'waiting for consent'],
  ]);
  expect((await idbKeys(page)).filter((k) => k.startsWith('e:') || k == 'p')).toEqual([]);
  expect((await context.cookies()).map((c) => c.name)).not.toContain('klaviyo_relay_id');
});

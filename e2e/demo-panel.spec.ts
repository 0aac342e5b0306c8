// The demo storefront's QA panel against the real stack: the offline switch makes the snippet queue (and keep
// across a reload) instead of sending; switching back delivers each event once; the panel shows the outbox, each
// event's route and status, the toggles in force and the sandbox's metrics.
import { test, expect, type Page } from '@playwright/test';
import { startDemoStack, type DemoStack } from '../demo/stack.mjs';
import type { Emulator } from '../dist/node/emulator/index.js';

let demo: DemoStack;
test.beforeAll(async () => {
  demo = await startDemoStack({ dataDir: ':memory:' });
});
test.afterAll(() => demo?.close());

const panel = (page: Page) => page.locator('[data-qa-panel]');
const section = (page: Page, title: string) => panel(page).locator('.qa-section', { has: page.locator('h3', { hasText: title }) });
const received = (sandbox: Emulator, metric: string) => sandbox.state.events({ metric }).length;

test('QA panel: offline switch, outbox across a reload, routes and statuses, toggles, sandbox metrics', async ({ page }) => {
  const { sandbox, urls } = demo;
  await page.goto(`${urls.storefront}/product?id=TR-2`);
  await expect(section(page, 'Workflow toggles')).toContainText('Started Checkout');
  await expect(section(page, 'Workflow toggles').locator('tr', { hasText: 'Viewed Page' })).toContainText('off');
  await expect(section(page, 'Events').locator('tr', { hasText: 'Viewed Product' })).toContainText('Klaviyo ✓');
  await expect(section(page, 'Events').locator('tr', { hasText: 'Viewed Page' })).toContainText('store ✓');
  await expect(section(page, 'Klaviyo sandbox')).toContainText('Viewed Product');

  // Offline: the add to cart waits in the outbox, and still does after a reload.
  await panel(page).locator('.qa-switch').click();
  await expect(panel(page)).toContainText('Offline (simulated)');
  await page.click('[data-add]');
  await expect(section(page, 'Outbox').locator('tr', { hasText: 'Added to Cart' })).toContainText('Klaviyo, store');
  await page.reload();
  await expect(panel(page)).toContainText('Offline (simulated)');
  await expect(section(page, 'Outbox').locator('tr', { hasText: 'Added to Cart' })).toBeVisible();
  // Offline, this page's own view is not routed yet (routes are set when the snippet next sends), and says so.
  await expect(section(page, 'Outbox').locator('tr', { hasText: 'Viewed Product' })).toContainText('unrouted');
  expect(received(sandbox, 'Added to Cart')).toBe(0);
  expect(received(sandbox, 'Viewed Product')).toBe(1);

  // Online again: delivered, once each; the outbox empties and the sandbox section counts them.
  await panel(page).locator('.qa-switch').click();
  await expect(section(page, 'Outbox')).toContainText('Empty: everything is delivered', { timeout: 15_000 });
  expect(received(sandbox, 'Added to Cart')).toBe(1);
  expect(received(sandbox, 'Viewed Product')).toBe(2);
  await expect(section(page, 'Klaviyo sandbox').locator('tr', { hasText: 'Added to Cart' })).toContainText('1');

  // A server-routed event: stored by the companion server, then forwarded by it to Klaviyo.
  await page.goto(`${urls.storefront}/checkout`);
  await expect(section(page, 'Events').locator('tr', { hasText: 'Started Checkout' })).toContainText('server');
  await expect(section(page, 'Events').locator('tr', { hasText: 'Started Checkout' })).toContainText('→ Klaviyo ✓', { timeout: 15_000 });
  expect(sandbox.state.events({ metric: 'Started Checkout' }).map((e) => e.source)).toEqual(['server']);
  await expect(section(page, 'Companion server store')).toContainText(/off\s*[1-9]/);
  // Nothing was sent twice along the way.
  for (const m of sandbox.internals.state.events.metrics.values()) expect(m.duplicates, m.name).toBe(0);
});

test('QA panel renders only on change: a selected unique_id stays selected while the panel keeps polling', async ({ page }) => {
  const { urls } = demo;
  await page.goto(`${urls.storefront}/product?id=TR-1`);
  // Let every status settle first: from then on, polls bring nothing new to show.
  await expect(section(page, 'Outbox')).toContainText('Empty: everything is delivered', { timeout: 15_000 });
  const row = section(page, 'Events').locator('tr', { hasText: 'Viewed Product' }).first();
  await expect(row).toContainText('Klaviyo ✓');
  await expect(row).toContainText('store ✓');
  const id = row.locator('code.qa-id');
  await expect(id).toHaveText(/^[0-9a-f-]{36}$/);
  // Select the unique_id as a tester would before copying it, and keep hold of that very element.
  const selected = await id.evaluate((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    getSelection()!.removeAllRanges();
    getSelection()!.addRange(range);
    (window as any).selectedId = el;
    return getSelection()!.toString();
  });
  const renders = async () => Number(await panel(page).getAttribute('data-qa-renders'));
  const start = await renders();
  // Outbox polls (every second) and server polls (every 1.5 s) each ask the panel to render.
  await expect.poll(renders, { timeout: 15_000 }).toBeGreaterThan(start + 3);
  expect(await page.evaluate(() => (window as any).selectedId.isConnected)).toBe(true);
  expect(await page.evaluate(() => getSelection()!.toString())).toBe(selected);
});

test('dataLayer page: GA4 pushes made before and after the snippet loads become Klaviyo events', async ({ page }) => {
  const { sandbox, urls } = demo;
  const before = received(sandbox, 'Viewed Product');
  await page.goto(`${urls.storefront}/datalayer`);
  // A tag-manager page loads the build that has the bridge.
  await expect.poll(() => page.evaluate(() => [...document.scripts].map((s) => s.src).filter((src) => src.includes('klaviyo-relay')))).toEqual([
    expect.stringMatching(/\/dist\/klaviyo-relay\.gtm\.min\.js$/),
  ]);
  // The view_item pushed in <head>, before the snippet loaded.
  await expect.poll(() => received(sandbox, 'Viewed Product'), { timeout: 10_000 }).toBe(before + 1);
  const viewed = sandbox.state.events({ metric: 'Viewed Product' }).at(-1)!;
  expect(viewed.properties).toMatchObject({ ProductName: 'City Sneaker', ProductID: 'CS-1', Categories: ['Shoes', 'Lifestyle'], Brand: 'Northwind', Price: 89 });

  await page.click('[data-push=purchase]');
  const transactionId = await page.evaluate(() => (window as any).dataLayer.findLast((e: any) => e.event == 'purchase').ecommerce.transaction_id);
  await expect.poll(() => sandbox.state.events({ metric: 'Placed Order' }).map((e) => e.unique_id), { timeout: 15_000 }).toContain(transactionId);
  const order = sandbox.state.events({ metric: 'Placed Order' }).find((e) => e.unique_id == transactionId)!;
  expect(order.value).toBe(89);
  expect(order.source).toBe('server'); // Placed Order is routed server in the demo config
});

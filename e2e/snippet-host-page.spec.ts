// The snippet as a host page meets it, in real Chromium: the README's first example pasted verbatim, a page that
// pushes things that are not arrays, and the two <script> builds (the core, and the gtm build with the GA4
// dataLayer bridge). The page is served as https://shop.example, where the README puts the script and the
// companion server; Klaviyo's own host is answered by the sandbox.
import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { PUBLIC_KEY, startStack, storedEvents, type Stack } from './support/stack.js';

const SHOP = 'https://shop.example';

/** The first html block of the README's "The snippet" section, exactly as a reader would copy it. */
function readmeSnippet(): string {
  const readme = readFileSync('README.md', 'utf8');
  const block = readme.slice(readme.indexOf('## The snippet')).match(/```html\n([\s\S]*?)```/);
  if (!block) throw new Error('README.md has no html block under "## The snippet"');
  return block[1];
}

let stack: Stack;
test.beforeAll(async () => {
  stack = await startStack({ workflow: { default: 'client' }, allowedOrigins: [SHOP] });
});
test.afterAll(() => stack?.close());
test.beforeEach(() => stack.emulator.reset());
// The snippet keeps requests in flight (the store copy, the config) when a test ends; a route handler still proxying
// one must not fail the finished test when the page closes under it ("Fetch response has been disposed").
test.afterEach(({ page }) => page.unrouteAll({ behavior: 'ignoreErrors' }));

/** Serves `html` as https://shop.example/ with `script` as /klaviyo-relay.min.js; /relay/* and Klaviyo go to the stack. */
async function openShop(page: Page, html: string, script = 'dist/klaviyo-relay.min.js') {
  const problems = { errors: [] as string[], warnings: [] as string[] };
  page.on('pageerror', (e) => problems.errors.push(e.message));
  page.on('console', (m) => m.type() == 'warning' && problems.warnings.push(m.text()));
  await page.route(`${SHOP}/**`, async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname == '/') return route.fulfill({ contentType: 'text/html', body: `<!doctype html><meta charset="utf-8"><title>shop</title>\n${html}` });
    if (url.pathname == '/klaviyo-relay.min.js') return route.fulfill({ contentType: 'text/javascript', body: readFileSync(script) });
    if (url.pathname.startsWith('/relay/')) return route.fulfill({ response: await route.fetch({ url: stack.relayUrl + url.pathname.slice('/relay'.length) + url.search }) });
    return route.fulfill({ status: 404, body: 'not found' });
  });
  await page.route('https://a.klaviyo.com/**', async (route) => {
    const url = new URL(route.request().url());
    return route.fulfill({ response: await route.fetch({ url: stack.emulator.url + url.pathname + url.search }) });
  });
  await page.goto(SHOP + '/');
  return problems;
}

const ready = (page: Page) =>
  page.waitForFunction(() => (window as any).klaviyoRelay?.track).then(() =>
    page.evaluate(() => new Promise<void>((ok) => (window as any).klaviyoRelay.ready(() => ok()))),
  );
const metricsInSandbox = () => stack.emulator.state.events().map((e) => e.metric).sort();

test("the README's first example works exactly as written: no error, and its event reaches Klaviyo and the store", async ({ page }) => {
  const snippet = readmeSnippet();
  expect(snippet).toContain(`data-public-key="${PUBLIC_KEY}" data-endpoint="${SHOP}/relay"`);
  expect(snippet).toContain("klaviyoRelay.push(['track', 'Viewed Product'");
  const { errors } = await openShop(page, snippet);
  await expect.poll(() => stack.emulator.state.events({ metric: 'Viewed Product' }).map((e) => e.properties), { timeout: 15_000 }).toEqual([
    { ProductName: 'Hat', ProductID: 'H1', Price: 19.5 },
  ]);
  await expect.poll(() => storedEvents(stack.relay!).filter((e) => e.name == 'Viewed Product').map((e) => e.route)).toEqual(['client']);
  expect(errors).toEqual([]);
});

test('push() with something that is not an array warns and never throws, before the script loads or after', async ({ page }) => {
  const { errors, warnings } = await openShop(page, `<script>
  window.klaviyoRelay = window.klaviyoRelay || [];
  klaviyoRelay.push({ 0: 'track', 1: 'Array-like before load' });
  klaviyoRelay.push(['track', 'Good before load']);
</script>
<script async src="/klaviyo-relay.min.js" data-public-key="${PUBLIC_KEY}" data-endpoint="${SHOP}/relay" data-auto-page="false"></script>`);
  await ready(page);
  const outcome = await page.evaluate(() => {
    const relay = (window as any).klaviyoRelay;
    try {
      relay.push({ 0: 'track', 1: 'Array-like after load' });
      relay.push(null);
      relay.push('track');
      relay.push(['track', 'Good after load']);
      return 'no exception';
    } catch (e) {
      return 'threw: ' + e;
    }
  });
  expect(outcome).toBe('no exception');
  await expect.poll(metricsInSandbox, { timeout: 15_000 }).toEqual(['Good after load', 'Good before load']);
  expect(errors).toEqual([]);
  expect(warnings.filter((w) => w.includes('not an array'))).toHaveLength(4);
});

// Klaviyo's ingestion limits (https://developers.klaviyo.com/en/docs/rate-limits-and-error-handling, "Ingestion
// limits"): an event past one would be refused or dropped at Klaviyo, so the snippet refuses it before queueing,
// with one warning naming the limit, and the page's other events are unaffected.
test('an event past Klaviyo\'s ingestion limits is never queued: one warning naming the limit, the good events still go', async ({ page }) => {
  const { errors, warnings } = await openShop(page, `<script async src="/klaviyo-relay.min.js" data-public-key="${PUBLIC_KEY}" data-endpoint="${SHOP}/relay" data-auto-page="false"></script>`);
  await ready(page);
  const outcome = await page.evaluate(() => {
    const relay = (window as any).klaviyoRelay;
    const many: Record<string, number> = {};
    for (let i = 0; i < 301; i++) many['p' + i] = i;
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 11; i++) deep = { child: deep };
    try {
      relay.track('Too many properties', many);
      relay.track('Too deep', deep);
      relay.track('Too long an array', { Items: new Array(4001).fill(1) });
      relay.track('Too old', {}, { time: '1999-12-31T00:00:00Z' });
      relay.track('Within the limits', { Items: new Array(4000).fill(1) });
      return 'no exception';
    } catch (e) {
      return 'threw: ' + e;
    }
  });
  expect(outcome).toBe('no exception');
  await expect.poll(metricsInSandbox, { timeout: 15_000 }).toEqual(['Within the limits']);
  const mine = ['Too many properties', 'Too deep', 'Too long an array', 'Too old', 'Within the limits'];
  await expect.poll(() => storedEvents(stack.relay!).map((e) => e.name).filter((name) => mine.includes(name!))).toEqual(['Within the limits']);
  expect(warnings.filter((w) => w.includes('Too many properties'))).toEqual([expect.stringContaining('more than 300 properties')]);
  expect(warnings.filter((w) => w.includes('Too deep'))).toEqual([expect.stringContaining('nested more than 10 levels')]);
  expect(warnings.filter((w) => w.includes('Too long an array'))).toEqual([expect.stringContaining('more than 4000 items')]);
  expect(warnings.filter((w) => w.includes('Too old'))).toEqual([expect.stringContaining('before 2000')]);
  // Nothing refused waits in the outbox, and the good event leaves it once both destinations answered.
  await expect.poll(() => page.evaluate(() => (window as any).klaviyoRelay.pending().then((p: any[]) => p.map((e) => e.name)))).toEqual([]);
  expect(errors).toEqual([]);
});

test.describe('build variants with data-data-layer', () => {
  const html = `<script>
  window.dataLayer = window.dataLayer || [];
  dataLayer.push({ event: 'view_item', ecommerce: { currency: 'USD', value: 19.5, items: [{ item_id: 'H1', item_name: 'Hat', price: 19.5 }] } });
</script>
<script async src="/klaviyo-relay.min.js" data-public-key="${PUBLIC_KEY}" data-endpoint="${SHOP}/relay" data-auto-page="false" data-data-layer></script>`;
  const addToCartThenMarker = (p: Page) =>
    p.evaluate(() => {
      (window as any).dataLayer.push({ event: 'add_to_cart', ecommerce: { currency: 'USD', value: 19.5, items: [{ item_id: 'H1', item_name: 'Hat', price: 19.5 }] } });
      (window as any).klaviyoRelay.track('Marker');
    });

  test('the core build has no bridge: it warns once that the gtm build is needed, and bridges nothing', async ({ page: p }) => {
    expect(readFileSync('dist/klaviyo-relay.min.js', 'utf8')).not.toContain('AddedItem');
    const { errors, warnings } = await openShop(p, html, 'dist/klaviyo-relay.min.js');
    await ready(p);
    await addToCartThenMarker(p);
    await expect.poll(metricsInSandbox, { timeout: 15_000 }).toEqual(['Marker']);
    expect(warnings).toEqual(['klaviyo-relay: dataLayer needs klaviyo-relay.gtm.min.js; this build has no dataLayer bridge']);
    expect(errors).toEqual([]);
  });

  test('the gtm build bridges pushes made before and after it loads, with no warning', async ({ page: p }) => {
    expect(readFileSync('dist/klaviyo-relay.gtm.min.js', 'utf8')).toContain('AddedItem');
    const { errors, warnings } = await openShop(p, html, 'dist/klaviyo-relay.gtm.min.js');
    await ready(p);
    await addToCartThenMarker(p);
    await expect.poll(metricsInSandbox, { timeout: 15_000 }).toEqual(['Added to Cart', 'Marker', 'Viewed Product']);
    expect(warnings).toEqual([]);
    expect(errors).toEqual([]);
  });
});

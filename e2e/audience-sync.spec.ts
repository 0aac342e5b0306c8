// A sync from definition to list members in the sandbox: a segment fed by real storefront browsing, synced with
// Instant Sync from the operator console, and re-run after the member leaves the segment.
import { test, expect } from '@playwright/test';
import { startDemoStack, type DemoStack } from '../demo/stack.mjs';
import type { Emulator } from '../dist/node/emulator/index.js';

let demo: DemoStack;
test.beforeAll(async () => {
  demo = await startDemoStack({ dataDir: ':memory:' });
});
test.afterAll(() => demo?.close());

const members = (sandbox: Emulator, listName: string) => {
  const list = sandbox.state.lists().find((l) => l.name == listName);
  return list ? sandbox.state.listMembers(list.id).map((p) => p.email).sort() : undefined;
};

test('a segment of storefront browsing, synced from the console, puts the visitor on the sandbox list', async ({ page }) => {
  const { sandbox, relay, urls } = demo;
  const email = 'shoe.fan@example.com';

  // A visitor views a pair of shoes, signs up to the newsletter, then views another pair.
  await page.goto(`${urls.storefront}/product?id=TR-2`);
  await page.fill('[data-newsletter] input[name=email]', email);
  await page.click('[data-newsletter] button[type=submit]');
  await page.goto(`${urls.storefront}/product?id=CS-1`);
  const viewsOf = () =>
    relay.db!.prepare(`SELECT count(*) FROM events e JOIN profiles p ON p.id = e.profile_id WHERE p.email = ? AND e.name = 'Viewed Product'`).pluck().get(email);
  await expect.poll(viewsOf, { timeout: 10_000 }).toBe(2);

  // The storefront's Console link leads to the console, which asks for the admin token.
  await page.getByRole('link', { name: 'Console' }).click();
  await page.getByLabel('Admin token').fill(demo.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('navigation', { name: 'Sections' })).toBeVisible();
  await page.getByRole('link', { name: 'Audiences' }).click();

  const segment = page.getByRole('region', { name: 'viewed-shoes-twice', exact: true });
  await segment.getByRole('button', { name: 'Instant Sync' }).click();
  await expect(segment.getByRole('status')).toContainText('ended: success', { timeout: 15_000 });
  await expect(segment.getByRole('listitem').first()).toContainText('1 read · 1 imported');
  expect(members(sandbox, 'Viewed shoes twice')).toEqual([email]);

  // Nothing changed: a rerun sends nothing new and the member stays.
  await segment.getByRole('button', { name: 'Instant Sync' }).click();
  await expect(segment.getByRole('status')).toContainText('ended: success', { timeout: 15_000 });
  await expect(segment.getByRole('listitem').first()).toContainText('1 read · 1 unchanged');
  expect(members(sandbox, 'Viewed shoes twice')).toEqual([email]);
});

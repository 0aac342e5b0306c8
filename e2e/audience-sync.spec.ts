// A sync from definition to list members in the sandbox, through the demo's audience page (admin API behind the
// storefront's proxy): a segment fed by real storefront browsing, and a file sync defined in the page's form.
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

test('segment and file syncs, defined and run from the audience page, put members on sandbox lists', async ({ page }) => {
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

  // Instant Sync of the configured segment "Viewed shoes twice".
  await page.goto(`${urls.storefront}/audiences`);
  await page.click('[data-sync="viewed-shoes-twice"] [data-act=sync]');
  await expect(page.locator('[data-members]')).toContainText(`has 1 member: ${email}`, { timeout: 15_000 });
  await expect(page.locator('[data-logs] tbody tr').first()).toContainText('success');
  expect(members(sandbox, 'Viewed shoes twice')).toEqual([email]);

  // A bad definition is refused with the field named, and nothing is saved.
  await page.click('[data-new]');
  await page.fill('[name=name]', 'e2e-vip');
  await page.check('[name=channel][value=sms]');
  await page.fill('[name=list]', 'E2E VIP');
  await page.click('button[type=submit]');
  await expect(page.locator('[data-issues]')).toContainText('consent');
  await expect(page.locator('[data-issues]')).toContainText('never_subscribed is allowed for email only');
  expect((await (await page.request.get(`${urls.storefront}/admin/audiences/e2e-vip`)).status())).toBe(404);

  // Fixed: a file sync of demo/customers.csv, saved and run in one click.
  await page.uncheck('[name=channel][value=sms]');
  await page.check('[name=sourceType][value=file]');
  await page.fill('[name=path]', 'customers.csv');
  await page.selectOption('[name=consent]', 'subscribed');
  await page.fill('[name=mapping]', 'email → email\nfirst_name → first_name\nlifetime_value → properties.lifetime_value');
  await page.click('[data-save-sync]');
  await expect(page.locator('[data-log-name]')).toHaveText('e2e-vip');
  const logsOf = async (name: string) => (await (await page.request.get(`${urls.storefront}/admin/audiences/${name}/logs`)).json()).logs;
  await expect.poll(async () => (await logsOf('e2e-vip')).map((l: { status: string }) => l.status), { timeout: 15_000 }).toEqual(['success']);
  await expect(page.locator('[data-logs] tbody tr').first()).toContainText('success');
  await expect(page.locator('[data-members]')).toContainText('list “E2E VIP” (');
  await expect(page.locator('[data-members]')).toContainText('has 4 members');

  const logs = await logsOf('e2e-vip');
  expect(logs[0].counts).toMatchObject({ read: 5, imported: 4, invalid: 1, failed: 0 });
  const vip = ['ada@example.com', 'alan@example.com', 'grace@example.com', 'katherine@example.com'];
  expect(members(sandbox, 'E2E VIP')).toEqual(vip);
  expect(sandbox.state.profiles().find((p) => p.email == 'ada@example.com')?.properties?.lifetime_value).toBe(1840.5);
});

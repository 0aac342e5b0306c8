// Screenshots of every console section at desktop width and at 360 px, for looking at (not a pass/fail check):
// CONSOLE_SCREENSHOTS=screenshots npx playwright test e2e/console-screenshots.spec.ts
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { test, expect } from '@playwright/test';
import { startDemoStack } from '../demo/stack.mjs';

const dir = process.env.CONSOLE_SCREENSHOTS;
test.skip(!dir, 'set CONSOLE_SCREENSHOTS=<folder> to take the console screenshots');

test('console sections at 1280 px and 360 px', async ({ page, request }) => {
  const demo = await startDemoStack({ dataDir: ':memory:' });
  try {
    // Some history to show: a run with a member error, browsing events, and one event Klaviyo refuses.
    await page.goto(`${demo.urls.storefront}/product?id=TR-2`);
    await expect.poll(() => demo.sandbox.state.events({ metric: 'Viewed Product' }).length, { timeout: 10_000 }).toBeGreaterThan(0);
    demo.sandbox.faults.add({ path: '/api/events', status: 400, count: 1 });
    const refused = await request.post(`${demo.urls.relay}/v1/events`, {
      headers: { origin: demo.urls.storefront },
      data: { public_key: demo.config.publicKey, events: [{ type: 'track', name: 'Placed Order', properties: { OrderId: 'A-1001' }, time: new Date().toISOString(), unique_id: randomUUID(), route: 'server', profile: { email: 'ada@example.com' } }] },
    });
    expect(refused.status()).toBe(202);
    await expect.poll(async () => (await demo.relay.store.counts()).outbox.failed, { timeout: 10_000 }).toBe(1);

    await page.goto(demo.urls.console);
    await page.screenshot({ path: join(dir!, 'sign-in-desktop.png') });
    await page.getByLabel('Admin token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toBeVisible();
    await page.screenshot({ path: join(dir!, 'sign-in-wrong-token-desktop.png') });
    await page.getByLabel('Admin token').fill(demo.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();

    const audiences = page.getByRole('region', { name: 'Audiences' });
    await page.getByRole('link', { name: 'Audiences' }).click();
    const vip = audiences.getByRole('region', { name: 'vip-customers', exact: true });
    await vip.getByRole('button', { name: 'Instant Sync' }).click();
    await expect(vip.getByRole('status')).toContainText('ended', { timeout: 20_000 });

    for (const [width, label] of [[1280, 'desktop'], [360, '360']] as const) {
      await page.setViewportSize({ width, height: 800 });
      await page.getByRole('link', { name: 'Connection' }).click();
      await expect(page.getByRole('region', { name: 'Connection' }).getByText(/works for the Klaviyo account/)).toBeVisible();
      await page.getByRole('button', { name: 'Verify events' }).click();
      await expect(page.getByRole('row', { name: /Viewed Product/ })).toBeVisible();
      await page.screenshot({ path: join(dir!, `connection-${label}.png`), fullPage: true });

      await page.getByRole('link', { name: 'Event workflow' }).click();
      await expect(page.getByRole('radiogroup', { name: 'Placed Order' })).toBeVisible();
      await page.screenshot({ path: join(dir!, `workflow-${label}.png`), fullPage: true });

      await page.getByRole('link', { name: 'Audiences' }).click();
      await vip.getByText(/member error/).click();
      await page.screenshot({ path: join(dir!, `audiences-${label}.png`), fullPage: true });
      await page.getByRole('button', { name: 'New audience' }).click();
      // The Segment rules builder with a property filter and a second, profile property condition.
      await page.getByRole('button', { name: 'Add filter to condition 1' }).click();
      await page.getByLabel('Property, condition 1, filter 1').fill('Total');
      await page.getByLabel('Operator, condition 1, filter 1').selectOption({ label: 'greater than' });
      await page.getByLabel('Value, condition 1, filter 1').fill('50');
      await page.getByRole('button', { name: 'Add condition' }).click();
      await page.getByLabel('Condition type, condition 2').selectOption({ label: 'has profile property' });
      await page.getByLabel('Profile property, condition 2').fill('email');
      await page.getByLabel('Operator, condition 2').selectOption({ label: 'contains' });
      await page.getByLabel('Value, condition 2').fill('@');
      await page.getByRole('group', { name: 'Segment rules' }).screenshot({ path: join(dir!, `segment-rules-${label}.png`) });
      await page.getByRole('button', { name: 'Add field' }).click();
      await page.getByLabel('Klaviyo field').last().fill('properties.ltv');
      await page.getByRole('button', { name: 'Save schema' }).click();
      await expect(page.getByLabel('Name', { exact: true })).toHaveAccessibleDescription(/Give the audience a name/);
      await page.getByRole('form', { name: 'New audience' }).screenshot({ path: join(dir!, `audience-form-${label}.png`) });
      await page.getByRole('button', { name: 'Cancel' }).click();

      await page.getByRole('link', { name: 'Outbox' }).click();
      await expect(page.getByText('Klaviyo’s reason')).toBeVisible();
      await page.screenshot({ path: join(dir!, `outbox-${label}.png`), fullPage: true });
    }
  } finally {
    await demo.close();
  }
});

// One device, two people, in the demo storefront: a checkout as a@… then a newsletter signup as b@… in the same
// browser must leave two Klaviyo profiles, each with its own events, and a's email untouched. Klaviyo's Client API
// never changes an existing profile's identifiers ("Attempts to do so via client-side endpoints will return a 202,
// however the identifier field(s) will not be updated": https://developers.klaviyo.com/en/reference/create_client_profile),
// so had the snippet kept one anonymous id for both, the two people could never be told apart again.
import { test, expect } from '@playwright/test';
import { startDemoStack, type DemoStack } from '../demo/stack.mjs';

let demo: DemoStack;
test.beforeAll(async () => {
  demo = await startDemoStack({ dataDir: ':memory:' });
});
test.afterAll(() => demo?.close());

test('checkout as a@, then the newsletter as b@, in one browser: two distinct profiles in the sandbox', async ({ page }) => {
  const { sandbox, urls } = demo;
  const profileOf = (email: string) => sandbox.state.profiles().find((p) => p.email == email);
  const metricsOf = (profileId: string) => sandbox.state.events({ profileId }).map((e) => e.metric);

  await page.goto(`${urls.storefront}/product?id=TR-2`);
  await page.click('[data-add]');
  await page.goto(`${urls.storefront}/checkout`);
  await page.fill('[data-order-form] [name=email]', 'ann.a@example.com');
  await page.fill('[data-order-form] [name=first_name]', 'Ann');
  await page.click('[data-order-form] button[type=submit]');
  await expect(page.locator('[data-confirmation]')).toContainText('Thank you!');
  await expect.poll(() => profileOf('ann.a@example.com') && metricsOf(profileOf('ann.a@example.com')!.id), { timeout: 15_000 }).toContain('Placed Order');

  await page.fill('[data-newsletter] [name=email]', 'bea.b@example.com');
  await page.fill('[data-newsletter] [name=first_name]', 'Bea');
  await page.click('[data-newsletter] button[type=submit]');
  await expect.poll(() => profileOf('bea.b@example.com') && metricsOf(profileOf('bea.b@example.com')!.id), { timeout: 15_000 }).toContain('Subscribed to Newsletter');

  const a = profileOf('ann.a@example.com');
  const b = profileOf('bea.b@example.com');
  if (!a || !b) throw new Error(`expected a profile for each email; the sandbox has ${JSON.stringify(sandbox.state.profiles().map((p) => p.email))}`);
  expect(b.id).not.toBe(a.id);
  expect(b.anonymous_id).not.toBe(a.anonymous_id);
  // a keeps her email, her name and her order; none of b's activity landed on her.
  expect(a).toMatchObject({ email: 'ann.a@example.com', first_name: 'Ann' });
  expect(metricsOf(a.id)).toContain('Placed Order');
  expect(metricsOf(a.id)).not.toContain('Subscribed to Newsletter');
  expect(b).toMatchObject({ email: 'bea.b@example.com', first_name: 'Bea' });
  expect(metricsOf(b.id)).not.toContain('Placed Order');
  // The browser now carries b's anonymous id.
  const cookie = (await page.context().cookies()).find((c) => c.name == 'klaviyo_relay_id');
  expect(cookie?.value).toBe(b.anonymous_id);
});

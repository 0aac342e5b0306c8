// The operator console on the demo stack, driven as a marketer would, by role and label only: sign in, check the
// connection, switch an event's toggle and reset it to the config file, build an audience in the form (its Source
// fields suggesting the file's columns) and sync it to the sandbox, see a disabled audience refuse Instant Sync,
// and have axe find no serious accessibility problem on any screen.
import AxeBuilder from '@axe-core/playwright';
import { test, expect, type Locator, type Page } from '@playwright/test';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startDemoStack, type DemoStack } from '../demo/stack.mjs';

let demo: DemoStack;
test.beforeAll(async () => {
  demo = await startDemoStack({ dataDir: ':memory:' });
});
test.afterAll(() => demo?.close());

/** The values a text input's datalist offers. */
const suggestions = (input: Locator) => input.evaluate((el: HTMLInputElement) => [...(el.list?.options ?? [])].map((o) => o.value));

/** axe's serious and critical findings on the page as it is now, one line each (rule, help, where). */
async function seriousAccessibilityProblems(page: Page): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
}

async function signIn(page: Page, section = '') {
  await page.goto(demo.urls.console + section);
  await page.getByLabel('Admin token').fill(demo.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('navigation', { name: 'Sections' })).toBeVisible();
}

test('a wrong token is refused with an alert; the right one opens Connection, naming the sandbox account', async ({ page }) => {
  await page.goto(demo.urls.console);
  await page.getByLabel('Admin token').fill('not-the-admin-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('Wrong admin token');
  await expect(page.getByRole('navigation', { name: 'Sections' })).toBeHidden();
  expect(page.url()).not.toContain('not-the-admin-token');

  await page.getByLabel('Admin token').fill(demo.adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const connection = page.getByRole('region', { name: 'Connection' });
  await expect(connection.getByRole('listitem').filter({ hasText: 'private key' })).toContainText('Sandbox Outfitters');
  await expect(connection.getByRole('listitem').filter({ hasText: 'public key' })).toContainText('OK');
  await expect(connection.getByText(demo.urls.storefront, { exact: true })).toBeVisible();
  // The token lives in this tab's sessionStorage, never in the URL or the page.
  expect(page.url()).not.toContain(demo.adminToken);
  expect(await page.content()).not.toContain(demo.adminToken);

  // Verify events: a product view goes client-side to the sandbox, and its metric shows beside the store's count.
  const shop = await page.context().newPage();
  await shop.goto(`${demo.urls.storefront}/product?id=TR-2`);
  await expect.poll(() => demo.sandbox.state.events({ metric: 'Viewed Product' }).length, { timeout: 10_000 }).toBeGreaterThan(0);
  await expect.poll(() => demo.relay.store.eventCounts().then((c) => c.find((e) => e.name === 'Viewed Product')?.count ?? 0)).toBeGreaterThan(0);
  await shop.close();
  await connection.getByRole('button', { name: 'Verify events' }).click();
  const row = connection.getByRole('row', { name: /Viewed Product/ });
  await expect(row).toContainText('1 event');
  await expect(row).toContainText('metric');
  // The last 7 days on both sides: the store's count, then Klaviyo's (cells after the event's row header).
  await expect(connection.getByRole('columnheader', { name: 'Klaviyo (7 days)' })).toBeVisible();
  const cells = row.getByRole('cell');
  await expect(cells.nth(2)).toHaveText('1');
  await expect(cells.nth(3)).toHaveText('1');

  // A product view the relay stored but Klaviyo never got (say an ad blocker stopped the browser's call to
  // Klaviyo): the row is flagged, Klaviyo having fewer than the store.
  const stored = await page.request.post(`${demo.urls.relay}/v1/events`, {
    headers: { origin: demo.urls.storefront },
    data: { public_key: demo.config.publicKey, events: [{ type: 'track', name: 'Viewed Product', properties: { ProductID: 'TR-2' }, time: new Date(Date.now() - 60_000).toISOString(), unique_id: crypto.randomUUID(), route: 'client', profile: { anonymous_id: 'blocked-visitor' } }] },
  });
  expect(stored.status()).toBe(202);
  await connection.getByRole('button', { name: 'Verify events' }).click();
  await expect(cells.nth(2)).toHaveText('2');
  await expect(cells.nth(3)).toHaveText('1: 1 fewer than the store');
  await expect(connection.getByRole('status').filter({ hasText: 'Klaviyo has fewer events than the store for 1 event' })).toBeVisible();
});

test('switching a toggle and saving changes what /v1/config serves, with a new ETag', async ({ page, request }) => {
  const configUrl = `${demo.urls.relay}/v1/config?key=${demo.config.publicKey}`;
  const before = await request.get(configUrl);
  expect((await before.json()).workflow.events['Placed Order']).toBe('server');

  await signIn(page);
  await page.getByRole('link', { name: 'Event workflow' }).click();
  const reset = page.getByRole('button', { name: 'Reset to config file' });
  const placedOrder = page.getByRole('radiogroup', { name: 'Placed Order' });
  // Nothing saved yet: nothing to reset.
  await expect(placedOrder).toBeVisible();
  await expect(reset).toBeDisabled();
  await expect(placedOrder.getByRole('radio', { name: 'Server' })).toBeChecked();
  await expect(page.getByRole('radiogroup', { name: 'Default' }).getByRole('radio', { name: 'Client' })).toBeChecked();
  await placedOrder.getByRole('radio', { name: 'Client' }).check();
  // An event added without a route is not dropped quietly: Save asks for its route first.
  await page.getByLabel('Event name').fill('Wishlist Added');
  await page.getByRole('button', { name: 'Add event' }).click();
  const wishlist = page.getByRole('radiogroup', { name: 'Wishlist Added' });
  await page.getByRole('button', { name: 'Save changes' }).click();
  await expect(wishlist).toHaveAccessibleDescription(/Pick Client, Server or Off for this new event/);
  await expect(wishlist.getByRole('radio', { name: 'Client' })).toBeFocused();
  expect((await (await request.get(configUrl)).json()).workflow.events['Placed Order']).toBe('server');
  await wishlist.getByRole('radio', { name: 'Off' }).check();
  await page.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved' })).toBeVisible();
  await expect(wishlist.getByRole('radio', { name: 'Off' })).toBeChecked();

  const after = await request.get(configUrl);
  expect(after.headers().etag).not.toBe(before.headers().etag);
  expect((await after.json()).workflow.events['Placed Order']).toBe('client');
  expect((await after.json()).workflow.events['Wishlist Added']).toBe('off');

  // Reopened, the console shows the saved toggle.
  await page.reload();
  await expect(page.getByRole('radiogroup', { name: 'Placed Order' }).getByRole('radio', { name: 'Client' })).toBeChecked();

  // Reset to config file asks first; Cancel keeps the saved toggles.
  await expect(reset).toBeEnabled();
  await reset.click();
  const confirmReset = page.getByRole('group', { name: /^Reset\?/ });
  await expect(confirmReset.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await confirmReset.getByRole('button', { name: 'Cancel' }).click();
  await expect(confirmReset).toBeHidden();
  expect((await request.get(configUrl)).headers().etag).toBe(after.headers().etag);
  // Yes, reset: /v1/config serves the config file's toggles again, with a new ETag.
  await reset.click();
  await confirmReset.getByRole('button', { name: 'Yes, reset' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Reset: GET /v1/config serves the config file' })).toBeVisible();
  await expect(page.getByRole('radiogroup', { name: 'Placed Order' }).getByRole('radio', { name: 'Server' })).toBeChecked();
  await expect(reset).toBeDisabled();
  const afterReset = await request.get(configUrl);
  expect(afterReset.headers().etag).not.toBe(after.headers().etag);
  expect((await afterReset.json()).workflow).toEqual((await before.json()).workflow);
});

test('an audience built in the form, with Add field and a custom property, syncs its members to a sandbox list', async ({ page }) => {
  await signIn(page, '#audiences');
  await page.getByRole('button', { name: 'New audience' }).click();
  const form = page.getByRole('form', { name: 'New audience' });
  await form.getByLabel('Name', { exact: true }).fill('console-vip');
  await form.getByLabel('Members come from').selectOption({ label: 'A file on the server (CSV or NDJSON)' });
  await form.getByLabel('File', { exact: true }).fill('../../package.json');
  await expect(form.getByLabel('Existing list')).toHaveValue('');
  await form.getByLabel('New list name').fill('Console VIP');
  await form.getByLabel('SMS').check();
  await form.getByLabel('Consent status').selectOption({ label: 'Never subscribed' });
  await form.getByRole('button', { name: 'Add field' }).click();
  await form.getByLabel('Source field').last().fill('lifetime_value');
  await form.getByLabel('Klaviyo field').last().fill('properties.lifetime_value');
  await form.getByRole('button', { name: 'Add field' }).click();
  await form.getByLabel('Source field').last().fill('city');
  await form.getByLabel('Klaviyo field').last().fill('location.city');
  await form.getByLabel('Refresh interval').fill('6h');

  // The server refuses SMS with "Never subscribed", then a file outside the config folder; each error sits next to
  // the field it names.
  await form.getByRole('button', { name: 'Save schema' }).click();
  await expect(form.getByLabel('Consent status')).toHaveAccessibleDescription(/never_subscribed is allowed for email only/);
  await form.getByLabel('SMS').uncheck();
  await form.getByRole('button', { name: 'Save schema' }).click();
  await expect(form.getByLabel('File', { exact: true })).toHaveAccessibleDescription(/package.json resolves to .*, outside the config file's folder/);
  await expect(form.getByLabel('Consent status')).not.toHaveAttribute('aria-invalid');
  // The Source fields suggest the columns of the file typed in File; a missing file is said next to File.
  await form.getByLabel('File', { exact: true }).fill('no-such-file.csv');
  await expect(form.getByLabel('File', { exact: true })).toHaveAccessibleDescription(/source file not found: .*no-such-file\.csv/);
  await form.getByLabel('File', { exact: true }).fill('customers.csv');
  await expect(form.getByLabel('File', { exact: true })).not.toHaveAttribute('aria-invalid');
  await expect(form.getByRole('status').filter({ hasText: 'Source field suggests this file’s 6 fields' })).toBeVisible();
  for (const input of await form.getByLabel('Source field').all()) {
    expect(await suggestions(input)).toEqual(['email', 'phone', 'first_name', 'last_name', 'city', 'lifetime_value']);
  }
  await form.getByRole('button', { name: 'Add field' }).click();
  expect(await suggestions(form.getByLabel('Source field').last())).toContain('lifetime_value');

  await expect(form.getByLabel('Unsubscribe from')).toBeHidden();
  await form.getByLabel('Consent status').selectOption({ label: 'Unsubscribed' });
  await expect(form.getByLabel('Unsubscribe from')).toHaveValue('list');
  await form.getByLabel('Consent status').selectOption({ label: 'Subscribed' });
  await expect(form.getByLabel('Unsubscribe from')).toBeHidden();
  await form.getByRole('button', { name: 'Save schema' }).click();
  await expect(form).toBeHidden();

  const audience = page.getByRole('region', { name: 'console-vip', exact: true });
  await expect(audience).toContainText('lifetime_value → properties.lifetime_value');
  await expect(audience.getByRole('switch', { name: 'Status' })).toBeChecked();
  await audience.getByRole('button', { name: 'Instant Sync' }).click();
  await expect(audience.getByRole('status')).toContainText('ended: success', { timeout: 20_000 });
  await expect(audience.getByRole('listitem').first()).toContainText('5 read · 4 imported');
  // The CSV row without a usable identifier is reported per member.
  await audience.getByText('1 member error').click();
  await expect(audience.getByRole('listitem').filter({ hasText: /^not-an-email validate: / })).toBeVisible();

  const list = demo.sandbox.state.lists().find((l) => l.name === 'Console VIP')!;
  const members = demo.sandbox.state.listMembers(list.id);
  expect(members.map((p) => p.email).sort()).toEqual(['ada@example.com', 'alan@example.com', 'grace@example.com', 'katherine@example.com']);
  const ada = members.find((p) => p.email === 'ada@example.com')!;
  expect(ada.properties?.lifetime_value).toBe(1840.5);
  expect((ada.location as { city?: string } | undefined)?.city).toBe('London');
});

test('a CSV record that cannot be parsed is listed once under its run, by line, and the rest of the file syncs', async ({ page, request }) => {
  const file = fileURLToPath(new URL('../demo/e2e-stray-quote.csv', import.meta.url));
  writeFileSync(file, 'email,first_name\nquote-ok1@example.com,Ann\nb"ad@example.com,Bob\nquote-ok2@example.com,Cy\n');
  try {
    const put = await request.put(`${demo.urls.relay}/v1/admin/audiences/stray-quote`, {
      headers: { authorization: `Bearer ${demo.adminToken}` },
      data: { source: { type: 'file', path: 'e2e-stray-quote.csv' }, list: { create: 'Stray quote' }, mapping: [{ from: 'email', to: 'email' }] },
    });
    expect(put.status()).toBe(200);
    await signIn(page, '#audiences');
    const audience = page.getByRole('region', { name: 'stray-quote', exact: true });
    await audience.getByRole('button', { name: 'Instant Sync' }).click();
    await expect(audience.getByRole('status')).toContainText('ended: success', { timeout: 20_000 });
    await expect(audience.getByRole('listitem').first()).toContainText('2 read · 2 imported');
    await audience.getByText('1 member error').click();
    await expect(audience.getByRole('listitem').filter({ hasText: /^source: line 3: Invalid Opening Quote: .*; the record was skipped$/ })).toBeVisible();
  } finally {
    rmSync(file, { force: true });
  }
});

test('a segment audience built only with the condition builder syncs its members, and reopens as the same rows', async ({ page, request }) => {
  // Three shoppers: an order with an email (a member), an order without an email, an email without an order.
  const track = (name: string, profile: Record<string, string>) =>
    request.post(`${demo.urls.relay}/v1/events`, {
      headers: { origin: demo.urls.storefront },
      data: { public_key: demo.config.publicKey, events: [{ type: 'track', name, properties: { Total: 42 }, time: new Date().toISOString(), unique_id: crypto.randomUUID(), route: 'off', profile }] },
    });
  for (const [name, profile] of [
    ['Placed Order', { email: 'buyer@example.com', external_id: 'buyer-1' }],
    ['Placed Order', { external_id: 'buyer-2' }],
    ['Viewed Product', { email: 'browser@example.com', external_id: 'browser-1' }],
  ] as const) expect((await track(name, profile)).status()).toBe(202);
  await expect.poll(() => demo.relay.store.eventCounts().then((c) => c.find((e) => e.name === 'Placed Order')?.count ?? 0)).toBeGreaterThanOrEqual(2);

  await signIn(page, '#audiences');
  await page.getByRole('button', { name: 'New audience' }).click();
  const form = page.getByRole('form', { name: 'New audience' });
  await form.getByLabel('Name', { exact: true }).fill('console-buyers');
  const rules = form.getByRole('group', { name: 'Segment rules' });
  await expect(rules.getByRole('textbox', { name: 'Rules as JSON' })).toBeHidden();
  await rules.getByLabel('Members match').selectOption({ label: 'all' });
  const first = rules.getByRole('group', { name: 'Condition 1' });
  await first.getByLabel('Condition type, condition 1').selectOption({ label: 'did event' });
  // An event name the store has never seen (a typo) is said under Event name, before anything is saved.
  const eventName = first.getByLabel('Event name, condition 1');
  await eventName.fill('Placed Ordr');
  await expect(eventName).toHaveAccessibleDescription(/The store has no “Placed Ordr” events yet, so this condition matches no one/);
  await eventName.fill('placed order');
  await expect(eventName).toHaveAccessibleDescription(/did you mean “Placed Order”\? Event names are case-sensitive/);
  await eventName.fill('Placed Order');
  await expect(eventName).toHaveAccessibleDescription('');
  // Event name suggests the events the store has seen.
  await expect(page.locator('#segment-events option[value="Placed Order"]')).toHaveCount(1);
  // A filter's Property suggests the keys the store's Placed Order events carry.
  await first.getByRole('button', { name: 'Add filter to condition 1' }).click();
  const property = first.getByLabel('Property, condition 1, filter 1');
  await expect(property).toBeFocused();
  const propertyList = await property.getAttribute('list');
  await expect(page.locator(`datalist[id="${propertyList}"] option[value="Total"]`)).toHaveCount(1);
  await first.getByRole('button', { name: 'Remove filter 1 of condition 1' }).click();
  await first.getByLabel('How often, condition 1').selectOption({ label: 'at least' });
  await first.getByLabel('Times, condition 1').fill('once');
  await first.getByLabel('Within the last, condition 1').fill('30');
  await first.getByLabel('Unit, condition 1').selectOption({ label: 'days' });
  await rules.getByRole('button', { name: 'Add condition' }).click();
  const second = rules.getByRole('group', { name: 'Condition 2' });
  await expect(second.getByLabel('Event name, condition 2')).toBeFocused();
  await second.getByLabel('Condition type, condition 2').selectOption({ label: 'has profile property' });
  await second.getByLabel('Profile property, condition 2').fill('email');
  await second.getByLabel('Operator, condition 2').selectOption({ label: 'contains' });
  await second.getByLabel('Value, condition 2').fill('@');
  await form.getByLabel('New list name').fill('Console buyers');

  // A count that is not a number is refused next to that row's Times, before anything is sent.
  await form.getByRole('button', { name: 'Save schema' }).click();
  await expect(first.getByLabel('Times, condition 1')).toHaveAccessibleDescription(/whole number of times/);
  await expect(first.getByLabel('Times, condition 1')).toBeFocused();
  await first.getByLabel('Times, condition 1').fill('1');
  await form.getByRole('button', { name: 'Save schema' }).click();
  await expect(form).toBeHidden();

  // Saved as the same rule JSON a config file holds.
  const saved = await request.get(`${demo.urls.relay}/v1/admin/audiences/console-buyers`, { headers: { authorization: `Bearer ${demo.adminToken}` } });
  expect((await saved.json()).definition.source).toEqual({ type: 'segment', rules: { all: [{ event: 'Placed Order', count: { gte: 1 }, within: '30d' }, { trait: 'email', contains: '@' }] } });

  const audience = page.getByRole('region', { name: 'console-buyers', exact: true });
  await audience.getByRole('button', { name: 'Instant Sync' }).click();
  await expect(audience.getByRole('status')).toContainText('ended: success', { timeout: 20_000 });
  const list = demo.sandbox.state.lists().find((l) => l.name === 'Console buyers')!;
  expect(demo.sandbox.state.listMembers(list.id).map((p) => p.email)).toEqual(['buyer@example.com']);

  // Reopened, the audience shows the same rows.
  await audience.getByRole('button', { name: 'Edit console-buyers' }).click();
  const edit = page.getByRole('form', { name: 'Edit console-buyers' }).getByRole('group', { name: 'Segment rules' });
  await expect(edit.getByLabel('Members match')).toHaveValue('all');
  await expect(edit.getByLabel('Condition type, condition 1')).toHaveValue('did');
  await expect(edit.getByLabel('Event name, condition 1')).toHaveValue('Placed Order');
  await expect(edit.getByLabel('How often, condition 1')).toHaveValue('gte');
  await expect(edit.getByLabel('Times, condition 1')).toHaveValue('1');
  await expect(edit.getByLabel('Within the last, condition 1')).toHaveValue('30');
  await expect(edit.getByLabel('Unit, condition 1')).toHaveValue('d');
  await expect(edit.getByLabel('Condition type, condition 2')).toHaveValue('trait');
  await expect(edit.getByLabel('Profile property, condition 2')).toHaveValue('email');
  await expect(edit.getByLabel('Operator, condition 2')).toHaveValue('contains');
  await expect(edit.getByLabel('Value, condition 2')).toHaveValue('@');
  await expect(edit.getByRole('group', { name: /^Condition \d$/ })).toHaveCount(2);
  await page.getByRole('button', { name: 'Cancel' }).click();

  // The demo's config-file segment (a property filter, a "did not do") opens as rows too.
  const shoes = page.getByRole('region', { name: 'viewed-shoes-twice', exact: true });
  await shoes.getByRole('button', { name: 'Edit viewed-shoes-twice' }).click();
  const demoRules = page.getByRole('form', { name: 'Edit viewed-shoes-twice' }).getByRole('group', { name: 'Segment rules' });
  await expect(demoRules.getByLabel('Property, condition 1, filter 1')).toHaveValue('Categories');
  await expect(demoRules.getByLabel('Operator, condition 1, filter 1')).toHaveValue('contains');
  await expect(demoRules.getByLabel('Value, condition 1, filter 1')).toHaveValue('Shoes');
  await expect(demoRules.getByLabel('Condition type, condition 2')).toHaveValue('didNot');
  await expect(demoRules.getByLabel('How often, condition 2')).toBeHidden();
  expect(await seriousAccessibilityProblems(page), 'Segment rules with a property filter').toEqual([]);

  // Edit as JSON, from the keyboard: rules the rows cannot show (a group inside a group) come back read-only, with
  // a notice, and are saved untouched.
  await demoRules.getByText('Edit as JSON').focus();
  await page.keyboard.press('Enter');
  const json = demoRules.getByRole('textbox', { name: 'Rules as JSON' });
  // The toggle event fills the text box just after the disclosure opens.
  await expect.poll(async () => JSON.parse((await json.inputValue()) || 'null')).toEqual({
    all: [
      { event: 'Viewed Product', count: { gte: 2 }, within: '7d', where: { Categories: { contains: 'Shoes' } } },
      { not: { event: 'Placed Order', within: '7d' } },
    ],
  });
  const nested = { any: [{ all: [{ event: 'Viewed Product', count: { gte: 2 } }, { trait: 'email', exists: true }] }, { event: 'Placed Order', count: { gte: 1 } }] };
  await json.fill(JSON.stringify(nested));
  await page.keyboard.press('Shift+Tab');
  await expect(demoRules.getByText('Edit as JSON')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(json).toBeHidden();
  await expect(demoRules).toContainText('These rules cannot be shown as conditions: condition 1 is a group of conditions inside a group');
  await expect(demoRules.getByLabel('Rules as JSON, read-only')).toContainText('"any"');
  expect(await seriousAccessibilityProblems(page), 'Segment rules the rows cannot show').toEqual([]);
  await page.getByRole('button', { name: 'Save schema' }).click();
  await expect(shoes).toContainText('Viewed Product');
  const savedShoes = await request.get(`${demo.urls.relay}/v1/admin/audiences/viewed-shoes-twice`, { headers: { authorization: `Bearer ${demo.adminToken}` } });
  expect((await savedShoes.json()).definition.source.rules).toEqual(nested);
});

test('with Status off, Instant Sync is refused as disabled', async ({ page }) => {
  await signIn(page, '#audiences');
  const audience = page.getByRole('region', { name: 'vip-customers', exact: true });
  const status = audience.getByRole('switch', { name: 'Status' });
  await expect(status).toBeChecked();
  await status.uncheck();
  await expect(audience.getByRole('status')).toContainText('Status off');
  await audience.getByRole('button', { name: 'Instant Sync' }).click();
  await expect(audience.getByRole('status')).toContainText('disabled');
  await expect(audience.getByRole('listitem').first()).toContainText('No runs yet');

  // Still off after a reload: the switch saved the definition.
  await page.reload();
  await expect(page.getByRole('region', { name: 'vip-customers', exact: true }).getByRole('switch', { name: 'Status' })).not.toBeChecked();
});

test('Outbox shows what Klaviyo refused with its reason, and Retry failed sends it once the cause is gone', async ({ page, request }) => {
  demo.sandbox.faults.add({ path: '/api/events', status: 400, count: 1 });
  const uniqueId = crypto.randomUUID();
  const posted = await request.post(`${demo.urls.relay}/v1/events`, {
    headers: { origin: demo.urls.storefront },
    data: { public_key: demo.config.publicKey, events: [{ type: 'track', name: 'Started Checkout', properties: { Items: 1 }, time: new Date().toISOString(), unique_id: uniqueId, route: 'server', profile: { email: 'ada@example.com' } }] },
  });
  expect(posted.status()).toBe(202);
  await expect.poll(async () => (await demo.relay.store.counts()).outbox.failed, { timeout: 10_000 }).toBe(1);

  await signIn(page, '#outbox');
  const outbox = page.getByRole('region', { name: 'Outbox' });
  const failed = outbox.getByRole('listitem').filter({ hasText: uniqueId });
  await expect(failed).toContainText('Started Checkout');
  await expect(failed).toContainText('Klaviyo’s reason: Klaviyo 400');
  // The Failed count is red while something failed, and plain once nothing has.
  const failedCount = outbox.locator('.count-failed dd');
  const red = 'rgb(163, 32, 32)';
  await expect(failedCount).toHaveText('1');
  await expect(failedCount).toHaveCSS('color', red);
  await outbox.getByRole('button', { name: 'Retry failed' }).click();
  await expect(outbox.getByRole('status')).toContainText('1 item queued again');
  await expect.poll(() => demo.sandbox.state.events({ metric: 'Started Checkout' }).length, { timeout: 10_000 }).toBe(1);
  await outbox.getByRole('button', { name: 'Refresh' }).click();
  await expect(outbox.getByText('No failed items.')).toBeVisible();
  await expect(outbox.getByRole('button', { name: 'Retry failed' })).toBeDisabled();
  await expect(failedCount).toHaveText('0');
  await expect(failedCount).not.toHaveCSS('color', red);
});

test('axe finds no serious or critical accessibility problem on the sign-in screen or any section', async ({ page, request }) => {
  // An event in the store, so Verify events has a table to check.
  const posted = await request.post(`${demo.urls.relay}/v1/events`, {
    headers: { origin: demo.urls.storefront },
    data: { public_key: demo.config.publicKey, events: [{ type: 'track', name: 'Wished for Gift', properties: {}, time: new Date().toISOString(), unique_id: crypto.randomUUID(), route: 'off', profile: { email: 'ada@example.com' } }] },
  });
  expect(posted.status()).toBe(202);
  await page.goto(demo.urls.console);
  await expect(page.getByLabel('Admin token')).toBeFocused();
  expect(await seriousAccessibilityProblems(page), 'sign-in').toEqual([]);
  await page.getByLabel('Admin token').fill('not-the-admin-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  expect(await seriousAccessibilityProblems(page), 'sign-in with a wrong token').toEqual([]);

  await signIn(page);
  const connection = page.getByRole('region', { name: 'Connection' });
  await expect(connection.getByRole('listitem').filter({ hasText: 'private key' })).toContainText('Sandbox Outfitters');
  await connection.getByRole('button', { name: 'Verify events' }).click();
  await expect(connection.getByRole('table')).toBeVisible();
  expect(await seriousAccessibilityProblems(page), 'Connection').toEqual([]);

  await page.getByRole('link', { name: 'Event workflow' }).click();
  await expect(page.getByRole('radiogroup', { name: 'Default' })).toBeVisible();
  expect(await seriousAccessibilityProblems(page), 'Event workflow').toEqual([]);
  // With a toggle saved and the reset question open (then answered, leaving the config file's workflow).
  await page.getByRole('radiogroup', { name: 'Wished for Gift' }).getByRole('radio', { name: 'Server' }).check();
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.getByRole('button', { name: 'Reset to config file' }).click();
  await expect(page.getByRole('button', { name: 'Yes, reset' })).toBeVisible();
  expect(await seriousAccessibilityProblems(page), 'Event workflow, reset question open').toEqual([]);
  await page.getByRole('button', { name: 'Yes, reset' }).click();
  await expect(page.getByRole('button', { name: 'Reset to config file' })).toBeDisabled();

  await page.getByRole('link', { name: 'Audiences' }).click();
  await page.getByRole('button', { name: 'New audience' }).click();
  const form = page.getByRole('form', { name: 'New audience' });
  await form.getByRole('button', { name: 'Save schema' }).click();
  await expect(form.getByLabel('Name', { exact: true })).toHaveAccessibleDescription(/Give the audience a name/);
  expect(await seriousAccessibilityProblems(page), 'Audiences with the New audience form open').toEqual([]);
  await form.getByLabel('Members come from').selectOption({ label: 'A file on the server (CSV or NDJSON)' });
  await form.getByLabel('File', { exact: true }).fill('customers.csv');
  await expect(form.getByRole('status').filter({ hasText: 'Source field suggests' })).toBeVisible();
  expect(await seriousAccessibilityProblems(page), 'New audience form with a file source').toEqual([]);

  await page.getByRole('link', { name: 'Outbox' }).click();
  await expect(page.getByRole('region', { name: 'Outbox' }).getByRole('term').first()).toBeVisible();
  expect(await seriousAccessibilityProblems(page), 'Outbox').toEqual([]);
});

// The admin routes behind the operator console, over real HTTP against the Klaviyo sandbox: workflow toggles
// saved in the store and served by /v1/config with a new ETag (also after a restart) and reset to the config
// file's, events seen with counts, the property keys events and profiles carry, Klaviyo's lists, the connection
// checks and Verify events, and the console's static page.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { countWindow, verifyEvents } from '../../src/server/connection-checks.js';
import type { CreateServerOptions } from '../../src/server/index.js';
import { createKlaviyoClient } from '../../src/server/klaviyo-client.js';
import { call, clientEvent } from '../emulator/helpers.js';
import { createTestDatabase } from '../support/postgres.js';
import { ADMIN_TOKEN, PRIVATE_KEY, PUBLIC_KEY, SHOP, batch, postEvents, startServer, wireEvent } from './helpers.js';

let sandbox: Emulator;
const dirs: string[] = [];
beforeAll(async () => {
  sandbox = await startEmulator({ privateKey: PRIVATE_KEY, publicKey: PUBLIC_KEY });
});
afterAll(async () => {
  await sandbox.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const admin = (url: string, path: string, init: RequestInit = {}) =>
  fetch(`${url}/v1/admin${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
  });

const config = (url: string) => fetch(`${url}/v1/config?key=${PUBLIC_KEY}`);

describe('workflow toggles saved from the console', () => {
  it('override the config file at once with a new ETag, survive a restart, and refuse an event set both ways naming it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-console-'));
    dirs.push(dataDir);
    await savedTogglesSurviveRestart({ dataDir, klaviyoBaseUrl: sandbox.url });
  });

  it('do the same on PostgreSQL (DATABASE_URL)', async () => {
    const database = await createTestDatabase();
    try {
      await savedTogglesSurviveRestart({ databaseUrl: database.url, klaviyoBaseUrl: sandbox.url });
    } finally {
      await database.drop();
    }
  });

  async function savedTogglesSurviveRestart(options: CreateServerOptions) {
    let { server, url } = await startServer({}, options);

    const before = await config(url);
    const etagBefore = before.headers.get('etag')!;
    const fromFile = (await before.json()).workflow;
    expect(fromFile.events['Placed Order']).toBe('server');

    const saved = await admin(url, '/workflow', { method: 'PUT', body: JSON.stringify({ default: 'off', events: { 'Placed Order': 'client', 'Added to Cart': 'server' } }) });
    expect(saved.status).toBe(200);
    const view = await saved.json();
    expect(view.events.find((e: any) => e.name === 'Placed Order')).toMatchObject({ route: 'client', configured: 'server', saved: 'client' });
    // A toggle left as the config file has it is not an override: it keeps following the file.
    const same = await (await admin(url, '/workflow', { method: 'PUT', body: JSON.stringify({ default: 'off', events: { 'Placed Order': 'client', 'Added to Cart': 'server', 'Viewed Product': 'client' } }) })).json();
    expect(same.events.find((e: any) => e.name === 'Viewed Product')).toMatchObject({ route: 'client', configured: 'client', saved: null });
    expect(same.saved.workflow).toEqual({ default: 'off', events: { 'Placed Order': 'client', 'Added to Cart': 'server' } });

    const after = await config(url);
    const etagAfter = after.headers.get('etag')!;
    expect(etagAfter).not.toBe(etagBefore);
    // Events the save did not name keep the config file's toggle.
    expect((await after.json()).workflow).toEqual({ default: 'off', events: { 'Placed Order': 'client', 'Viewed Product': 'client', 'Added to Cart': 'server' } });
    // A browser holding the old ETag is told to refetch; one holding the new one gets 304.
    expect((await fetch(`${url}/v1/config?key=${PUBLIC_KEY}`, { headers: { 'if-none-match': etagBefore } })).status).toBe(200);
    expect((await fetch(`${url}/v1/config?key=${PUBLIC_KEY}`, { headers: { 'if-none-match': etagAfter } })).status).toBe(304);

    const both = await admin(url, '/workflow', { method: 'PUT', body: JSON.stringify({ events: { 'Placed Order': { client: true, server: true }, 'Viewed Product': 'sideways' } }) });
    expect(both.status).toBe(400);
    const refused = await both.json();
    expect(refused.issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ event: 'Placed Order', field: 'events.Placed Order', message: expect.stringMatching(/both client and server.*sent twice/) }),
      expect.objectContaining({ event: 'Viewed Product', message: expect.stringMatching(/unknown mode/) }),
    ]));
    // Nothing of a refused save is served.
    expect((await config(url)).headers.get('etag')).toBe(etagAfter);

    await server.close();
    ({ server, url } = await startServer({}, options));
    const restarted = await config(url);
    expect(restarted.headers.get('etag')).toBe(etagAfter);
    expect((await restarted.json()).workflow.events['Placed Order']).toBe('client');

    // Reset to config file: the saved toggles are gone, and /v1/config serves the file's workflow with a new ETag.
    const reset = await admin(url, '/workflow', { method: 'DELETE' });
    expect(reset.status).toBe(200);
    const resetView = await reset.json();
    expect(resetView.saved).toBeNull();
    expect(resetView.events.find((e: any) => e.name === 'Placed Order')).toMatchObject({ route: 'server', configured: 'server', saved: null });
    const afterReset = await config(url);
    expect(afterReset.headers.get('etag')).not.toBe(etagAfter);
    expect((await afterReset.json()).workflow).toEqual(fromFile);
    expect((await fetch(`${url}/v1/config?key=${PUBLIC_KEY}`, { headers: { 'if-none-match': etagAfter } })).status).toBe(200);
    // Saving toggles equal to the file's leaves nothing saved, so there is nothing to reset.
    const asFile = await (await admin(url, '/workflow', { method: 'PUT', body: JSON.stringify(fromFile) })).json();
    expect(asFile.saved).toBeNull();
    // The admin token guards it like every admin route.
    expect((await fetch(`${url}/v1/admin/workflow`, { method: 'DELETE' })).status).toBe(401);

    // The reset is in the store: a restart still serves the file's workflow.
    await server.close();
    ({ server, url } = await startServer({}, options));
    const restartedAfterReset = await config(url);
    expect(restartedAfterReset.headers.get('etag')).toBe(afterReset.headers.get('etag'));
    expect((await restartedAfterReset.json()).workflow).toEqual(fromFile);
    await server.close();
  }

  it('lists every event the store has seen with counts, identify calls under $identify', async () => {
    const { server, url } = await startServer({}, { klaviyoBaseUrl: sandbox.url });
    const res = await postEvents(url, batch([
      wireEvent({ name: 'Viewed Product', route: 'client' }),
      wireEvent({ name: 'Viewed Product', route: 'client' }),
      wireEvent({ name: 'Wished for Gift', route: 'off' }),
      { type: 'identify', time: new Date().toISOString(), unique_id: crypto.randomUUID(), route: 'client', profile: { email: 'ada@example.com' } },
    ]), { origin: SHOP });
    expect(res.status).toBe(202);
    const { events } = await (await admin(url, '/events')).json();
    expect(events.map((e: any) => [e.name, e.count]).sort()).toEqual([['$identify', 1], ['Viewed Product', 2], ['Wished for Gift', 1]]);
    const view = await (await admin(url, '/workflow')).json();
    expect(view.events.map((e: any) => e.name)).toEqual(['$identify', 'Placed Order', 'Viewed Product', 'Wished for Gift']);
    expect(view.events.find((e: any) => e.name === 'Wished for Gift')).toMatchObject({ route: null, count: 1 });
    await server.close();
  });
});

describe('property names the store holds, for the Segment rules builder', () => {
  it('on SQLite', () => propertyNames({}));

  it('on PostgreSQL (DATABASE_URL)', async () => {
    const database = await createTestDatabase();
    try {
      await propertyNames({ databaseUrl: database.url });
    } finally {
      await database.drop();
    }
  });

  async function propertyNames(options: CreateServerOptions) {
    const { server, url } = await startServer({}, options);
    const minute = (m: number) => new Date(Date.UTC(2026, 10, 28, 10, m)).toISOString();
    const order = (m: number, properties: Record<string, unknown>) => wireEvent({ name: 'Placed Order', time: minute(m), properties });
    const longKey = 'k'.repeat(101);
    // Sent out of time order: "newest" is by event time, not by arrival.
    const sent = await postEvents(url, batch([
      order(5, { Total: 30, Categories: ['Shoes'], '<img src=x onerror=alert(1)>': 1 }),
      order(1, { OldOnly: true, Total: 1 }),
      order(4, { Total: 20, [longKey]: 'cut' }),
      order(3, { Total: 10, Categories: ['Hats'], Coupon: 'WELCOME' }),
      wireEvent({ name: 'Viewed Product', time: minute(6), properties: { ProductName: 'Hat' } }),
      wireEvent({ name: 'Wide Event', time: minute(7), properties: Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${String(i).padStart(3, '0')}`, i])) }),
      { type: 'identify', time: minute(8), unique_id: crypto.randomUUID(), route: 'client', profile: { email: 'ada@example.com', first_name: 'Ada', properties: { plan: 'gold', 'Loyalty Tier': 2 }, location: { city: 'London' } } },
      { type: 'identify', time: minute(9), unique_id: crypto.randomUUID(), route: 'client', profile: { email: 'bob@example.com', properties: { plan: 'free' } } },
      // The newest profile: an anonymous visitor without custom properties, as most profiles are.
      wireEvent({ name: 'Viewed Product', time: minute(10), profile: { anonymous_id: 'anon-visitor' } }),
    ]), { origin: SHOP });
    expect(sent.status).toBe(202);

    const keysOf = async (path: string) => {
      const res = await admin(url, path);
      expect(res.status).toBe(200);
      return res.json();
    };
    const all = await keysOf('/events/properties?name=Placed%20Order');
    expect(all).toMatchObject({ name: 'Placed Order', sampled: 4, truncated: false });
    // Keys are returned as sent (markup included, as data); the 101-character key is left out, not cut short.
    expect(Object.fromEntries(all.keys.map((k: any) => [k.key, k.count]))).toEqual({
      Total: 4, Categories: 2, '<img src=x onerror=alert(1)>': 1, Coupon: 1, OldOnly: 1,
    });
    expect(all.keys.map((k: any) => k.key)).toEqual(['Total', 'Categories', '<img src=x onerror=alert(1)>', 'Coupon', 'OldOnly']);

    // Only the newest `sample` events are read: the oldest order (the only one with OldOnly) is outside three.
    const newest = await keysOf('/events/properties?name=Placed%20Order&sample=3');
    expect(newest.sampled).toBe(3);
    expect(newest.keys).toEqual([{ key: 'Total', count: 3 }, { key: 'Categories', count: 2 }, { key: '<img src=x onerror=alert(1)>', count: 1 }, { key: 'Coupon', count: 1 }]);
    expect(await keysOf('/events/properties?name=Never%20Seen')).toEqual({ name: 'Never Seen', sampled: 0, keys: [], truncated: false });

    // At most 200 keys, most carried first then by name: p000…p199 of the 250.
    const wide = await keysOf('/events/properties?name=Wide%20Event');
    expect(wide.truncated).toBe(true);
    expect(wide.keys).toHaveLength(200);
    expect(wide.keys.at(-1)).toEqual({ key: 'p199', count: 1 });

    const profiles = await keysOf('/profiles/properties');
    // Ada (her orders and her identify stitch to one profile) and Bob; not the anonymous visitor, who carries none.
    expect(profiles.sampled).toBe(2);
    const counts = Object.fromEntries(profiles.keys.map((k: any) => [k.key, k.count]));
    expect(counts).toMatchObject({ email: 2, first_name: 1, 'properties.plan': 2, 'properties.Loyalty Tier': 1, 'location.city': 1, title: 0 });
    expect(profiles.keys.slice(0, 2).map((k: any) => k.key).sort()).toEqual(['email', 'properties.plan']);
    expect(counts.anonymous_id).toBe(1);
    // The newest profile with custom properties alone (Bob's), past the newer anonymous one.
    const newestProfile = await keysOf('/profiles/properties?sample=1');
    expect(newestProfile.sampled).toBe(1);
    expect(newestProfile.keys.filter((k: any) => k.count > 0)).toEqual([{ key: 'email', count: 1 }, { key: 'properties.plan', count: 1 }]);

    expect((await admin(url, '/events/properties')).status).toBe(400);
    expect((await admin(url, '/events/properties?name=Placed%20Order&sample=501')).status).toBe(400);
    expect((await admin(url, '/profiles/properties?sample=0')).status).toBe(400);
    // The admin token guards them like every admin route.
    expect((await fetch(`${url}/v1/admin/events/properties?name=Placed%20Order`)).status).toBe(401);
    expect((await fetch(`${url}/v1/admin/profiles/properties`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    await server.close();
  }
});

describe('connection checks and Klaviyo reads', () => {
  it('names the sandbox account, matches the public key, checks audience lists and reads every page of lists', async () => {
    const lists = sandbox.internals.state.lists;
    // More than one page (Klaviyo pages lists by 10).
    for (let i = 0; i < 12; i++) lists.create(`Console list ${String(i).padStart(2, '0')}`, 'single_opt_in');
    const existing = sandbox.state.lists().find((l) => l.name === 'Console list 00')!;
    const { server, url } = await startServer({
      audiences: [
        { name: 'known', source: { type: 'file', path: 'x.csv' }, list: { id: existing.id } },
        { name: 'gone', source: { type: 'file', path: 'x.csv' }, list: { id: 'NoSuchList' } },
      ],
    }, { klaviyoBaseUrl: sandbox.url, audiences: { scheduler: false } });

    const connection = await (await admin(url, '/connection')).json();
    const byName = Object.fromEntries(connection.checks.map((c: any) => [c.check, c]));
    expect(byName['private key']).toMatchObject({ status: 'ok', detail: expect.stringContaining('Sandbox Outfitters') });
    expect(byName['public key'].status).toBe('ok');
    expect(byName['allowed origins']).toMatchObject({ status: 'ok', detail: expect.stringContaining(SHOP) });
    expect(byName['list of audience "known"'].status).toBe('ok');
    expect(byName['list of audience "gone"']).toMatchObject({ status: 'fail', detail: expect.stringContaining('NoSuchList does not exist') });
    expect(byName.store.status).toBe('ok');
    expect(connection.ok).toBe(false);
    expect(JSON.stringify(connection)).not.toContain(PRIVATE_KEY);

    const { lists: read } = await (await admin(url, '/klaviyo/lists')).json();
    expect(read.filter((l: any) => l.name.startsWith('Console list')).length).toBe(12);
    await server.close();
  });

  describe('Verify events', () => {
    const DAY = 86_400_000;
    const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString();
    const aggregateRequests = () => sandbox.requests.filter((r) => r.operationId === 'query_metric_aggregates');
    const workflow = { default: 'client' as const, events: { 'Placed Order': 'server' as const, 'Viewed Product': 'client' as const, 'Wished for Gift': 'off' as const } };
    beforeEach(() => sandbox.reset());

    it('counts each Client and Server event of the last 7 days in the store and in Klaviyo, one metric-aggregates request per metric', async () => {
      const { server, url } = await startServer({ workflow }, { klaviyoBaseUrl: sandbox.url });
      await postEvents(url, batch([
        wireEvent({ time: daysAgo(0.01) }), wireEvent({ time: daysAgo(1.5) }), wireEvent({ time: daysAgo(6.9) }),
        wireEvent({ time: daysAgo(10) }), // forwarded too, outside the window on both sides
        wireEvent({ name: 'Viewed Product', route: 'client', time: daysAgo(0.01) }), wireEvent({ name: 'Viewed Product', route: 'client', time: daysAgo(0.02) }),
        wireEvent({ name: 'Started Checkout', route: 'client', time: daysAgo(0.01) }),
        wireEvent({ name: 'Wished for Gift', route: 'off', time: daysAgo(0.01) }),
      ]), { origin: SHOP });
      await server.forwarder.flush();
      // One of the two product views reached Klaviyo from the browser.
      expect((await call(sandbox, 'POST', '/client/events', { body: clientEvent('Viewed Product', { email: 'ada@example.com' }, { time: daysAgo(0.01) }), query: { company_id: PUBLIC_KEY } })).status).toBe(202);
      const before = aggregateRequests().length;

      const res = await admin(url, '/connection/events');
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.window.days).toBe(7);
      expect(body.window.to - body.window.from).toBe(7 * DAY);
      expect(body.countError).toBeNull();
      const byName = Object.fromEntries(body.rows.map((r: any) => [r.name, r]));
      expect(byName['Placed Order']).toMatchObject({ route: 'server', store: { count: 4 }, klaviyo: { id: expect.any(String) }, storeInWindow: 3, klaviyoInWindow: 3, notCounted: null });
      expect(byName['Viewed Product']).toMatchObject({ route: 'client', storeInWindow: 2, klaviyoInWindow: 1 });
      // No metric in Klaviyo: none of its events arrived, known without asking.
      expect(byName['Started Checkout']).toMatchObject({ route: 'client', klaviyo: null, storeInWindow: 1, klaviyoInWindow: 0 });
      expect(byName['Wished for Gift']).toMatchObject({ route: 'off', klaviyo: null, storeInWindow: 1, klaviyoInWindow: null, notCounted: expect.stringContaining('set to Off') });
      // Two metrics counted, two requests, each valid against the spec (the sandbox validates every body).
      expect(aggregateRequests().slice(before).map((r) => r.status)).toEqual([200, 200]);

      expect((await admin(url, '/connection/events?days=0')).status).toBe(400);
      const oneDay = await (await admin(url, '/connection/events?days=1')).json();
      expect(oneDay.rows.find((r: any) => r.name === 'Placed Order')).toMatchObject({ storeInWindow: 1, klaviyoInWindow: 1 });
      await server.close();
    });

    it('counts over whole seconds, the end rounded up so an event sent just before a Verify is in the window', () => {
      expect(countWindow(7, 1_800_000_000_500)).toEqual({ from: 1_800_000_001_000 - 7 * DAY, to: 1_800_000_001_000, days: 7 });
      expect(countWindow(1, 1_800_000_000_000)).toEqual({ from: 1_800_000_000_000 - DAY, to: 1_800_000_000_000, days: 1 });
    });

    it('counts only the most recently seen events up to the cap, and says why the others were not counted', async () => {
      const klaviyo = createKlaviyoClient({ privateKey: PRIVATE_KEY, baseUrl: sandbox.url });
      const now = Date.now();
      for (const name of ['Alpha', 'Beta', 'Gamma']) await call(sandbox, 'POST', '/client/events', { body: clientEvent(name, { email: 'ada@example.com' }, { time: new Date(now - 60_000).toISOString() }), query: { company_id: PUBLIC_KEY } });
      const before = aggregateRequests().length;
      const result = await verifyEvents(klaviyo, {
        storeCounts: [{ name: 'Alpha', count: 5, lastSeenAt: now - 3000 }, { name: 'Beta', count: 5, lastSeenAt: now - 2000 }, { name: 'Gamma', count: 5, lastSeenAt: now - 1000 }],
        routeOf: () => 'client',
        countStore: async (names) => names.map((name) => ({ name, count: 1 })),
        window: countWindow(7, now),
        maxCounted: 2,
      });
      const byName = Object.fromEntries(result.rows.map((r) => [r.name, r]));
      expect(byName.Gamma).toMatchObject({ storeInWindow: 1, klaviyoInWindow: 1 });
      expect(byName.Beta).toMatchObject({ storeInWindow: 1, klaviyoInWindow: 1 });
      expect(byName.Alpha).toMatchObject({ storeInWindow: 1, klaviyoInWindow: null, notCounted: expect.stringContaining('the 2 most recently seen events') });
      expect(aggregateRequests().length - before).toBe(2);
    });

    it('gives up a count Klaviyo does not answer in time, saying to Verify again, and keeps the others', async () => {
      const klaviyo = createKlaviyoClient({ privateKey: PRIVATE_KEY, baseUrl: sandbox.url });
      const now = Date.now();
      for (const name of ['Slow', 'Quick']) await call(sandbox, 'POST', '/client/events', { body: clientEvent(name, { email: 'ada@example.com' }, { time: new Date(now - 60_000).toISOString() }), query: { company_id: PUBLIC_KEY } });
      // One count stalls (as behind a spent minute); its deadline ends it, the other is answered.
      // The stall far outlasts the deadline, and the deadline leaves the answered count seconds to spare.
      sandbox.faults.add({ path: '/api/metric-aggregates', latencyMs: 60_000, count: 1 });
      const result = await verifyEvents(klaviyo, {
        storeCounts: [{ name: 'Slow', count: 1, lastSeenAt: now - 1000 }, { name: 'Quick', count: 1, lastSeenAt: now - 2000 }],
        routeOf: () => 'server',
        countStore: async (names) => names.map((name) => ({ name, count: 1 })),
        window: countWindow(7, now),
        countDeadlineMs: 3_000,
      });
      const [stalled, answered] = result.rows.sort((a, b) => (a.notCounted ? 0 : 1) - (b.notCounted ? 0 : 1));
      expect(stalled).toMatchObject({ klaviyoInWindow: null, notCounted: expect.stringMatching(/no answer within 3 s .*Verify again in a minute/) });
      expect(answered).toMatchObject({ klaviyoInWindow: 1, notCounted: null });
      expect(result.countError).toBeNull();
    });

    it('says which scope to give the key when Klaviyo refuses to read or count metrics', async () => {
      const { server, url } = await startServer({ workflow }, { klaviyoBaseUrl: sandbox.url });
      await postEvents(url, batch([wireEvent({ time: daysAgo(0.01) }), wireEvent({ time: daysAgo(0.02) })]), { origin: SHOP });
      await server.forwarder.flush();
      // A key created without Metrics read access: Klaviyo answers 403 permission_denied.
      sandbox.setPrivateKeyScopes(['accounts:read', 'events:write', 'profiles:write', 'lists:write', 'subscriptions:write']);
      try {
        const refused = await admin(url, '/connection/events');
        expect(refused.status).toBe(502);
        expect((await refused.json()).error).toMatch(/403: You do not have permission to perform this action.*metrics:read/);
      } finally {
        sandbox.setPrivateKeyScopes(undefined);
      }
      // Counting alone refused (403): the metric still shows, the count says why it is missing.
      sandbox.faults.add({ path: '/api/metric-aggregates', status: 403 });
      const body = await (await admin(url, '/connection/events')).json();
      expect(body.countError).toMatch(/Klaviyo refused to count events \(403: .*metrics:read/);
      expect(body.rows.find((r: any) => r.name === 'Placed Order')).toMatchObject({ klaviyo: { id: expect.any(String) }, storeInWindow: 2, klaviyoInWindow: null, notCounted: expect.stringMatching(/^not counted: /) });
      await server.close();
    });
  });

  it('says what to fix when the private key is refused', async () => {
    const { server, url } = await startServer({}, { klaviyoBaseUrl: sandbox.url, privateKey: 'pk_wrongKeyForTheSandbox0000000' });
    // Forwarding meets the refused key too, and pauses.
    await postEvents(url, batch([wireEvent()]), { origin: SHOP });
    await server.forwarder.flush();
    const { checks } = await (await admin(url, '/connection')).json();
    expect(checks[0]).toMatchObject({ check: 'private key', status: 'fail', detail: expect.stringContaining('set it to a Private API Key') });
    expect(checks[1].status).toBe('skipped');
    expect(checks.find((c: any) => c.check === 'forwarding')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^paused: /) });
    expect(JSON.stringify(checks)).not.toContain('pk_wrongKeyForTheSandbox');
    await server.close();
  });
});

describe('the console page', () => {
  it('is served at /admin/ with a strict CSP, and the admin API accepts its same-origin calls', async () => {
    const { server, url } = await startServer();
    const redirect = await fetch(`${url}/admin`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    const page = await fetch(`${url}/admin/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<label for="admin-token">Admin token</label>');
    expect((await fetch(`${url}/admin/main.js`)).headers.get('content-type')).toMatch(/javascript/);

    // A browser sends Origin on a same-origin PUT: the relay's own origin is not cross-origin.
    const own = await admin(url, '/workflow', { method: 'PUT', body: JSON.stringify({ events: {} }), headers: { origin: url } });
    expect(own.status).toBe(200);
    const foreign = await admin(url, '/workflow', { method: 'PUT', body: JSON.stringify({ events: {} }), headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    await server.close();
  });
});

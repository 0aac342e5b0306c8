// The read endpoints the doctor and the console call, and the guarantee that no Klaviyo route the project calls
// answers 501.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { OpenApiSpec } from '../../src/emulator/index.js';
import { call, clientEvent, PUBLIC_KEY, start } from './helpers.js';

let em: Emulator;
beforeAll(async () => {
  em = await start({ rateLimits: false });
});
afterAll(() => em.close());
beforeEach(() => em.reset());

const spec = OpenApiSpec.load();
/**
 * The spec's own response schema for the operation; unknown fields are refused there too. Klaviyo answers
 * `links.next: null` on a last page although the spec types it string, so null links are left out of the check.
 */
const validResponse = (operationId: string, status: number, body: any) =>
  spec.validateResponse(operationId, status, { ...body, links: Object.fromEntries(Object.entries(body.links ?? {}).filter(([, v]) => v !== null)) });

describe('GET /api/accounts', () => {
  // https://developers.klaviyo.com/en/reference/get_accounts — one account, whose public_api_key is the site id.
  it('returns the one account, named, with the sandbox public key as public_api_key', async () => {
    const res = await call(em, 'GET', '/api/accounts');
    expect(res.status).toBe(200);
    expect(res.json.data).toHaveLength(1);
    const [account] = res.json.data;
    expect(account).toMatchObject({ type: 'account', id: PUBLIC_KEY, attributes: { public_api_key: PUBLIC_KEY } });
    expect(account.attributes.contact_information.organization_name).toMatch(/\w/);
    expect(validResponse('get_accounts', 200, res.json)).toEqual([]);
    expect((await call(em, 'GET', `/api/accounts/${PUBLIC_KEY}`)).json.data.id).toBe(PUBLIC_KEY);
    expect((await call(em, 'GET', '/api/accounts/NOPE42')).status).toBe(404);
  });

  it('sparse fieldsets apply', async () => {
    const res = await call(em, 'GET', '/api/accounts', { query: { 'fields[account]': 'public_api_key' } });
    expect(res.json.data[0].attributes).toEqual({ public_api_key: PUBLIC_KEY });
  });
});

describe('GET /api/metrics and /api/events', () => {
  const track = (name: string, email: string, extra: Record<string, unknown> = {}) => call(em, 'POST', '/client/events', { body: clientEvent(name, { email }, extra) });

  // https://developers.klaviyo.com/en/reference/get_metrics — filter on integration name/category only.
  it('lists each metric once, filters by integration, refuses other filters', async () => {
    await track('Viewed Product', 'a@b.co', { time: '2026-11-28T10:00:00Z' });
    await track('Viewed Product', 'c@d.co', { time: '2026-11-28T10:00:00Z' });
    await track('Placed Order', 'a@b.co', { time: '2026-11-28T10:00:00Z' });
    const res = await call(em, 'GET', '/api/metrics');
    expect(res.status).toBe(200);
    expect(res.json.data.map((m: any) => m.attributes.name).sort()).toEqual(['Placed Order', 'Viewed Product']);
    expect(validResponse('get_metrics', 200, res.json)).toEqual([]);
    expect((await call(em, 'GET', '/api/metrics', { query: { filter: 'equals(integration.name,"API")' } })).json.data).toHaveLength(2);
    expect((await call(em, 'GET', '/api/metrics', { query: { filter: 'equals(integration.category,"Shopify")' } })).json.data).toHaveLength(0);
    const bad = await call(em, 'GET', '/api/metrics', { query: { filter: 'equals(name,"Placed Order")' } });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].source).toEqual({ parameter: 'filter' });
    const id = res.json.data[0].id;
    expect((await call(em, 'GET', `/api/metrics/${id}`)).json.data.id).toBe(id);
  });

  // https://developers.klaviyo.com/en/reference/get_events — filters metric_id, profile_id, datetime; sort; page[size] ≤ 1000.
  it('lists events with metric_id / profile_id / datetime filters, sorting, includes and cursor pagination', async () => {
    await track('Placed Order', 'a@b.co', { time: '2026-11-28T10:00:00Z', value: 42, unique_id: 'o-1' });
    await track('Placed Order', 'c@d.co', { time: '2026-11-28T11:00:00Z', unique_id: 'o-2' });
    await track('Viewed Product', 'a@b.co', { time: '2026-11-28T12:00:00Z' });
    const metrics = (await call(em, 'GET', '/api/metrics')).json.data;
    const orderId = metrics.find((m: any) => m.attributes.name === 'Placed Order').id;

    const all = await call(em, 'GET', '/api/events');
    expect(all.status).toBe(200);
    expect(all.json.data).toHaveLength(3);
    expect(validResponse('get_events', 200, all.json)).toEqual([]);

    const orders = await call(em, 'GET', '/api/events', { query: { filter: `equals(metric_id,"${orderId}")`, sort: '-datetime', include: 'metric,profile' } });
    expect(orders.json.data.map((e: any) => e.attributes.datetime)).toEqual(['2026-11-28T11:00:00+00:00', '2026-11-28T10:00:00+00:00']);
    expect(orders.json.data[1].attributes).toMatchObject({ timestamp: Date.parse('2026-11-28T10:00:00Z') / 1000, event_properties: { sku: 'HAT-1', $value: 42, $event_id: 'o-1' } });
    expect(orders.json.included.filter((r: any) => r.type === 'metric')).toHaveLength(1);
    expect(orders.json.included.filter((r: any) => r.type === 'profile')).toHaveLength(2);

    const profileId = orders.json.data[1].relationships.profile.data.id;
    const mine = await call(em, 'GET', '/api/events', { query: { filter: `equals(profile_id,"${profileId}")` } });
    expect(mine.json.data).toHaveLength(2);
    const late = await call(em, 'GET', '/api/events', { query: { filter: 'greater-than(datetime,2026-11-28T10:30:00Z)' } });
    expect(late.json.data).toHaveLength(2);

    const first = await call(em, 'GET', '/api/events', { query: { 'page[size]': '2' } });
    expect(first.json.data).toHaveLength(2);
    const next = new URL(first.json.links.next);
    const second = await call(em, 'GET', '/api/events', { query: Object.fromEntries(next.searchParams) });
    expect(second.json.data).toHaveLength(1);
    expect(second.json.links.next).toBeNull();
    expect((await call(em, 'GET', '/api/events', { query: { 'page[size]': '1001' } })).status).toBe(400);
    expect((await call(em, 'GET', '/api/events', { query: { filter: 'equals(email,"a@b.co")' } })).status).toBe(400);
    const one = all.json.data[0].id;
    expect((await call(em, 'GET', `/api/events/${one}`)).json.data.id).toBe(one);
  });
});

describe('POST /api/metric-aggregates', () => {
  // https://developers.klaviyo.com/en/docs/using-the-query-metric-aggregates-endpoint and
  // https://developers.klaviyo.com/en/reference/query_metric_aggregates — a metric's events counted per interval
  // over a greater-or-equal/less-than datetime range; `dates` are the bucket starts, one count per date
  // (answer shape as Klaviyo sends it: https://github.com/klaviyo/klaviyo-api-python/pull/39).
  const track = (name: string, email: string, time: string) => call(em, 'POST', '/client/events', { body: clientEvent(name, { email }, { time }) });
  const query = (attributes: Record<string, unknown>) => call(em, 'POST', '/api/metric-aggregates', { body: { data: { type: 'metric-aggregate', attributes } } });
  const metricId = async (name: string) => (await call(em, 'GET', '/api/metrics')).json.data.find((m: any) => m.attributes.name === name).id;
  const countQuery = (metric_id: string, from: string, to: string, extra: Record<string, unknown> = {}) =>
    query({ metric_id, measurements: ['count'], interval: 'day', filter: [`greater-or-equal(datetime,${from})`, `less-than(datetime,${to})`], timezone: 'UTC', page_size: 500, ...extra });

  it('counts one metric per UTC day over [from, to), with the bucket starts as dates', async () => {
    await track('Viewed Product', 'a@b.co', '2026-11-26T23:59:59Z');
    await track('Viewed Product', 'a@b.co', '2026-11-27T09:00:00Z');
    await track('Viewed Product', 'c@d.co', '2026-11-27T09:00:00Z');
    await track('Viewed Product', 'a@b.co', '2026-11-28T10:00:00Z');
    await track('Viewed Product', 'a@b.co', '2026-11-28T12:00:00Z'); // at `to`: outside
    await track('Placed Order', 'a@b.co', '2026-11-27T09:00:00Z');
    const res = await countQuery(await metricId('Viewed Product'), '2026-11-26T22:00:00', '2026-11-28T12:00:00');
    expect(res.status).toBe(200);
    expect(res.json.data).toMatchObject({ type: 'metric-aggregate', id: expect.any(String) });
    expect(res.json.data.attributes).toEqual({
      dates: ['2026-11-26T00:00:00+00:00', '2026-11-27T00:00:00+00:00', '2026-11-28T00:00:00+00:00'],
      data: [{ dimensions: [], measurements: { count: [1, 2, 1] } }],
    });
    expect(validResponse('query_metric_aggregates', 200, res.json)).toEqual([]);

    const hourly = await countQuery(await metricId('Viewed Product'), '2026-11-27T08:30:00Z', '2026-11-27T10:00:00Z', { interval: 'hour' });
    expect(hourly.json.data.attributes).toEqual({ dates: ['2026-11-27T08:00:00+00:00', '2026-11-27T09:00:00+00:00'], data: [{ dimensions: [], measurements: { count: [0, 2] } }] });
  });

  it('refuses a query without a time range, an unknown metric or timezone (400), and answers 501 for what it does not model', async () => {
    await track('Viewed Product', 'a@b.co', '2026-11-27T09:00:00Z');
    const id = await metricId('Viewed Product');
    const noRange = await query({ metric_id: id, measurements: ['count'], filter: ['greater-or-equal(datetime,2026-11-20T00:00:00)'] });
    expect(noRange.status).toBe(400);
    expect(noRange.json.errors[0].source).toEqual({ pointer: '/data/attributes/filter' });
    expect((await countQuery(id, '2026-11-28T00:00:00', '2026-11-27T00:00:00')).status).toBe(400);
    expect((await countQuery('NoSuch', '2026-11-20T00:00:00', '2026-11-28T00:00:00')).json.errors[0]).toMatchObject({ status: 400, source: { pointer: '/data/attributes/metric_id' } });
    expect((await countQuery(id, '2026-11-20T00:00:00', '2026-11-28T00:00:00', { timezone: 'Mars/Olympus' })).status).toBe(400);
    // The spec's schema: an unknown measurement or a missing filter is refused before the handler.
    expect((await query({ metric_id: id, measurements: ['average'], filter: [] })).status).toBe(400);
    expect((await query({ metric_id: id, measurements: ['count'] })).status).toBe(400);

    for (const extra of [{ measurements: ['unique'] }, { by: ['$flow'] }, { interval: 'week' }, { timezone: 'America/New_York' }, { filter: ['greater-or-equal(datetime,2026-11-20T00:00:00)', 'less-than(datetime,2026-11-28T00:00:00)', 'equals($flow,"X1")'] }]) {
      const res = await countQuery(id, '2026-11-20T00:00:00', '2026-11-28T00:00:00', extra);
      expect(res.status, JSON.stringify(extra)).toBe(501);
      expect(res.json.errors[0].code).toBe('not_implemented');
    }
  });
});

describe('PATCH /api/profiles/{id}', () => {
  // https://developers.klaviyo.com/en/reference/update_profile — null clears a field, omitted leaves it.
  it('updates the named profile: null clears, omitted fields stay; 404 for an unknown id', async () => {
    const created = await call(em, 'POST', '/api/profile-import', { body: { data: { type: 'profile', attributes: { email: 'a@b.co', first_name: 'Ada', last_name: 'L', properties: { tier: 'gold' } } } } });
    const id = created.json.data.id;
    const res = await call(em, 'PATCH', `/api/profiles/${id}`, { body: { data: { type: 'profile', id, attributes: { phone_number: '+14155550100', last_name: null, properties: { vip: true } } } } });
    expect(res.status).toBe(200);
    expect(res.json.data.attributes).toMatchObject({ email: 'a@b.co', phone_number: '+14155550100', first_name: 'Ada', last_name: null, properties: { tier: 'gold', vip: true } });
    const missing = await call(em, 'PATCH', '/api/profiles/01NOPE', { body: { data: { type: 'profile', id: '01NOPE', attributes: { first_name: 'X' } } } });
    expect(missing.status).toBe(404);
    const mismatch = await call(em, 'PATCH', `/api/profiles/${id}`, { body: { data: { type: 'profile', id: 'other', attributes: {} } } });
    expect(mismatch.status).toBe(409);
  });
});

describe('no route the project calls answers 501', () => {
  /** Every Klaviyo path literal in the product's source, e.g. '/api/lists/${…}/relationships/profiles'. */
  const pathsInSource = (() => {
    const found = new Set<string>();
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const file = join(dir, name);
        if (statSync(file).isDirectory()) walk(file);
        else if (/\.ts$/.test(name)) for (const m of readFileSync(file, 'utf8').matchAll(/['`](\/(?:api|client)\/[a-z-]+(?:\/[^'`\s?]*)?)['`?]/g)) found.add(m[1]);
      }
    };
    for (const dir of ['src/server', 'src/browser', 'src/shared']) walk(dir);
    return found;
  })();

  // Each method+path the product sends; a new path in the source without an entry here fails the first test.
  const CALLED: Array<[string, string]> = [
    ['POST', '/client/events'], ['POST', '/client/profiles'], ['POST', '/client/subscriptions'], ['POST', '/client/event-bulk-create'],
    ['POST', '/api/events'], ['POST', '/api/event-bulk-create-jobs'], ['POST', '/api/profile-import'], ['PATCH', '/api/profiles/X1'],
    ['GET', '/api/profiles'], ['GET', '/api/lists'], ['POST', '/api/lists'], ['GET', '/api/lists/X1'],
    ['GET', '/api/lists/X1/profiles'], ['GET', '/api/lists/X1/relationships/profiles'], ['POST', '/api/lists/X1/relationships/profiles'],
    ['DELETE', '/api/lists/X1/relationships/profiles'], ['POST', '/api/profile-bulk-import-jobs'], ['GET', '/api/profile-bulk-import-jobs/X1'],
    ['GET', '/api/profile-bulk-import-jobs/X1/import-errors'], ['POST', '/api/profile-subscription-bulk-create-jobs'],
    ['POST', '/api/profile-subscription-bulk-delete-jobs'], ['GET', '/api/accounts'], ['GET', '/api/metrics'], ['GET', '/api/events'], ['POST', '/api/metric-aggregates'],
  ];

  it('every Klaviyo path in the source is listed here', () => {
    const templates = CALLED.map(([, p]) => p.replace(/X1/g, '*'));
    const toTemplate = (p: string) => p.replace(/\$\{[^}]*\}|\{[^}]*\}/g, '*').replace(/\/$/, '');
    for (const p of pathsInSource) {
      const t = toTemplate(p);
      expect(templates.some((c) => c === t || c.startsWith(`${t}/`)), `${p} is called by the product but not checked here`).toBe(true);
    }
  });

  it('each answers something other than 501', async () => {
    for (const [method, path] of CALLED) {
      const res = await call(em, method, path, { headers: { authorization: undefined }, query: path.startsWith('/client/') ? { company_id: '' } : {} });
      expect(res.status, `${method} ${path}`).not.toBe(501);
    }
  });
});

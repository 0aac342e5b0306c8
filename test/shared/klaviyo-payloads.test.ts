// What the snippet actually sends to Klaviyo, validated against the published OpenAPI spec (revision 2026-07-15):
// the request builder's URL, headers and body for a track, an identify, a bulk backlog, a page view and each dataLayer
// mapping.
import { describe, it, expect } from 'vitest';
import { OpenApiSpec } from '../../src/emulator/openapi.js';
import { BULK_MIN, klaviyoJobs, relayRequest, type Target } from '../../src/browser/delivery.js';
import { KLAVIYO_OPERATIONS } from '../../src/shared/klaviyo-limits.js';
import type { OutboxEntry } from '../../src/browser/types.js';
import { mapGa4 } from '../../src/browser/datalayer.js';
import { eventBody } from '../../src/shared/klaviyo-payloads.js';
import type { RelayEvent } from '../../src/shared/wire.js';

const spec = OpenApiSpec.load();
const target = { publicKey: 'ABC123', klaviyoUrl: 'https://a.klaviyo.com', endpoint: 'https://shop.example/relay' };
const profile = { anonymous_id: 'b4bd6867-f814-4fb6-bc86-10bd5a2a2263', email: 'ada@example.com', phone_number: '+15005550006', _kx: 'kx-token' };
const event = (over: Partial<RelayEvent>): RelayEvent => ({
  type: 'track', name: 'Viewed Page', properties: {}, time: '2026-11-28T10:00:00.000Z',
  unique_id: '5f0c6a1e-0000-4000-8000-000000000001', route: 'client', profile, ...over,
});

const entry = (ev: RelayEvent): OutboxEntry => ({ event: ev, to: { klaviyo: false }, attempts: 0, at: 0 });
/** The one request the snippet plans for a single owed event. */
function klaviyoRequest(ev: RelayEvent, t: Target) {
  const jobs = klaviyoJobs([entry(ev)], t);
  expect(jobs).toHaveLength(1);
  return jobs[0][1](jobs[0][0]);
}

const ga4Items = [
  { item_id: 'SKU-1', item_name: 'Hat', item_brand: 'Acme', item_category: 'Apparel', item_category2: 'Hats', price: 19.5, quantity: 2 },
  { item_id: 'SKU-2', item_name: 'Scarf', item_brand: 'Knit Co', price: 10 },
];

describe('snippet → Klaviyo Client API requests', () => {
  it('a track goes to /client/events with company_id, revision and the JSON:API content type, and validates', () => {
    const req = klaviyoRequest(event({ name: 'Added to Cart', properties: { ProductName: 'Hat' }, value: 39, value_currency: 'USD' }), target);
    expect(req.url).toBe('https://a.klaviyo.com/client/events?company_id=ABC123');
    expect(req.headers).toEqual({ revision: '2026-07-15', 'content-type': 'application/vnd.api+json' });
    expect(spec.validateBody('create_client_event', JSON.parse(req.body))).toEqual([]);
  });

  it('an identify goes to /client/profiles and validates, custom traits under properties', () => {
    const req = klaviyoRequest(event({ type: 'identify', name: undefined, profile: { ...profile, first_name: 'Ada', properties: { plan: 'gold' } } }), target);
    expect(req.url).toBe('https://a.klaviyo.com/client/profiles?company_id=ABC123');
    const body = JSON.parse(req.body);
    expect(body.data.attributes).toMatchObject({ email: 'ada@example.com', first_name: 'Ada', properties: { plan: 'gold' } });
    expect(spec.validateBody('create_client_profile', body)).toEqual([]);
  });

  it.each(['view_item', 'add_to_cart', 'begin_checkout', 'purchase'])('the dataLayer mapping of %s validates as a client event', (ga4) => {
    const [name, properties, o] = mapGa4(ga4, { transaction_id: 'T-1', value: 49, currency: 'USD', coupon: 'TEN', items: ga4Items }, 'https://shop.example/p/hat')!;
    const body = JSON.parse(klaviyoRequest(event({ name, properties: JSON.parse(JSON.stringify(properties)), value: o.value, value_currency: o.valueCurrency, unique_id: o.uniqueId || 'u-1' }), target).body);
    expect(spec.validateBody('create_client_event', body)).toEqual([]);
  });

  it(`a backlog of ${BULK_MIN} or more events for one profile goes as one /client/event-bulk-create that validates`, () => {
    const backlog = Array.from({ length: 150 }, (_, i) => entry(event({ name: 'Viewed Product', properties: { i }, unique_id: `5f0c6a1e-0000-4000-8000-${String(i).padStart(12, '0')}` })));
    const other = entry(event({ name: 'Viewed Product', profile: { anonymous_id: 'someone-else' }, unique_id: 'u-other' }));
    const jobs = klaviyoJobs([...backlog, other], target);
    expect(jobs.map(([entries]) => entries.length)).toEqual([150, 1]);
    const req = jobs[0][1](jobs[0][0]);
    expect(req.url).toBe('https://a.klaviyo.com/client/event-bulk-create?company_id=ABC123');
    expect(req.headers).toEqual({ revision: '2026-07-15', 'content-type': 'application/vnd.api+json' });
    const body = JSON.parse(req.body);
    expect(body.data.attributes.events.data).toHaveLength(150);
    expect(body.data.attributes.profile.data.attributes).toMatchObject({ email: 'ada@example.com', anonymous_id: profile.anonymous_id });
    expect(spec.validateBody('bulk_create_client_events', body)).toEqual([]);
    // A trickle stays on /client/events.
    expect(klaviyoJobs(backlog.slice(0, BULK_MIN - 1), target).map(([entries, build]) => build(entries).url.split('?')[0])).toEqual(
      Array(BULK_MIN - 1).fill('https://a.klaviyo.com/client/events'),
    );
  });

  it('the bulk threshold is where one bulk request costs no larger share of its per-minute limit than the singles', () => {
    // https://developers.klaviyo.com/en/reference/bulk_create_client_events (150/min) and create_client_event (3,500/min)
    const { create_client_event: single, bulk_create_client_events: bulk } = KLAVIYO_OPERATIONS;
    expect(BULK_MIN).toBe(Math.ceil(single.steady / bulk.steady));
  });

  it('the spec check is live: a body without a profile is rejected', () => {
    const body = eventBody(event({})) as any;
    delete body.data.attributes.profile;
    expect(spec.validateBody('create_client_event', body).length).toBeGreaterThan(0);
  });

  it('relay batches are text/plain (no CORS preflight) and carry the wire format', () => {
    const req = relayRequest(target)([entry(event({ route: 'server' }))]);
    expect(req.url).toBe('https://shop.example/relay/v1/events');
    expect(req.headers['content-type']).toBe('text/plain;charset=UTF-8');
    expect(JSON.parse(req.body)).toEqual({ public_key: 'ABC123', events: [event({ route: 'server' })] });
  });
});

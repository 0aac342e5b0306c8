import { describe, it, expect } from 'vitest';
import { OpenApiSpec } from '../../src/emulator/openapi.js';
import { eventBody, eventBulkJobBody, bulkEntry, clientProfileBody, profileImportBody, profileUpdateBody } from '../../src/shared/klaviyo-payloads.js';
import type { RelayEvent } from '../../src/shared/wire.js';

const spec = OpenApiSpec.load();
const ev: RelayEvent = {
  name: 'Added to Cart', properties: { ProductName: 'Hat' }, time: '2026-11-28T10:00:00.000Z', value: 19.5,
  value_currency: 'USD', unique_id: '5f0c6a1e-0000-4000-8000-000000000001', route: 'client',
  profile: { anonymous_id: 'anon-1', email: 'a@b.co', first_name: 'Ada', properties: { plan: 'gold' } },
};

describe('shared payload builders against the OpenAPI spec', () => {
  it('event bodies validate for the client and server event endpoints', () => {
    expect(spec.validateBody('create_client_event', eventBody(ev))).toEqual([]);
    expect(spec.validateBody('create_event', eventBody(ev))).toEqual([]);
  });
  it('profile and bulk bodies validate', () => {
    expect(spec.validateBody('create_client_profile', clientProfileBody(ev.profile))).toEqual([]);
    expect(spec.validateBody('create_or_update_profile', profileImportBody(ev.profile))).toEqual([]);
    expect(spec.validateBody('bulk_create_events', eventBulkJobBody([bulkEntry(ev.profile, [ev, ev])]))).toEqual([]);
  });
  it('a profile update carries the traits and only the identifiers it is given, never anonymous ids', () => {
    const full = { ...ev.profile, phone_number: '+15005550006', external_id: 'C-1', _kx: 'kx' };
    const body = profileUpdateBody('01PROFILE', full, ['phone_number']);
    expect(spec.validateBody('update_profile', body)).toEqual([]);
    expect(body).toEqual({ data: { type: 'profile', id: '01PROFILE', attributes: { phone_number: '+15005550006', first_name: 'Ada', properties: { plan: 'gold' } } } });
  });
  it('the validator rejects a body missing the metric, with a pointer', () => {
    const bad = eventBody(ev) as any;
    delete bad.data.attributes.metric;
    const errors = spec.validateBody('create_client_event', bad);
    expect(errors[0]).toMatchObject({ pointer: '/data/attributes' });
    expect(errors[0].detail).toContain('metric');
  });
});

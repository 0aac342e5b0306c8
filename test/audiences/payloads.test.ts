import { describe, it, expect } from 'vitest';
import { OpenApiSpec } from '../../src/emulator/openapi.js';
import { parseFilter } from '../../src/emulator/filter.js';
import {
  LIMITS, importJobBody, importProfileEntry, listByNameFilter, listCreateBody, profilesByFilter, removeProfilesBody,
  subscribeJobBody, unsubscribeJobBody, memberChannels, chunk,
} from '../../src/server/audiences/payloads.js';

const spec = OpenApiSpec.load();

describe('audience payload builders against the OpenAPI spec', () => {
  it('list create (with and without opt-in process)', () => {
    expect(spec.validateBody('create_list', listCreateBody('VIP'))).toEqual([]);
    expect(spec.validateBody('create_list', listCreateBody('VIP', 'double_opt_in'))).toEqual([]);
  });

  it('bulk import job with profiles, location, custom properties and the list relationship', () => {
    const body = importJobBody(
      [
        importProfileEntry({ email: 'a@b.co', external_id: 'C-1', first_name: 'Ada', location: { city: 'London', latitude: 51.5 }, properties: { ltv: 120.5, 'Loyalty Tier': 'gold' } }),
        importProfileEntry({ phone_number: '+14155552671' }),
      ],
      'LIST1',
    );
    expect(spec.validateBody('bulk_import_profiles', body)).toEqual([]);
    expect(body.data.relationships.lists.data).toEqual([{ type: 'list', id: 'LIST1' }]);
    // The validator is strict: an attribute Klaviyo does not know is reported.
    expect(spec.validateBody('bulk_import_profiles', importJobBody([importProfileEntry({ email: 'a@b.co', favourite: 1 } as any)], 'L'))).not.toEqual([]);
  });

  it('subscribe job: only the selected channels each member can take, list relationship, historical import', () => {
    const members = [{ email: 'a@b.co', phone_number: '+14155552671' }, { email: 'c@d.co' }, { phone_number: '+14155552672' }];
    const both = subscribeJobBody(members, ['email', 'sms'], 'L1');
    expect(spec.validateBody('bulk_subscribe_profiles', both)).toEqual([]);
    const profiles = both.data.attributes.profiles as any;
    expect(profiles.data[0].attributes).toEqual({
      email: 'a@b.co', phone_number: '+14155552671',
      subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } }, sms: { marketing: { consent: 'SUBSCRIBED' } } },
    });
    expect(Object.keys(profiles.data[1].attributes.subscriptions)).toEqual(['email']);
    expect(both.data.relationships.list.data).toEqual({ type: 'list', id: 'L1' });
    expect('historical_import' in both.data.attributes).toBe(false);

    const emailOnly = subscribeJobBody(members.slice(0, 2), ['email'], 'L1') as any;
    expect(emailOnly.data.attributes.profiles.data[0].attributes).toEqual({ email: 'a@b.co', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } });

    const historical = subscribeJobBody([{ email: 'a@b.co', consented_at: '2024-01-01T00:00:00.000Z' }], ['email'], 'L1', true) as any;
    expect(spec.validateBody('bulk_subscribe_profiles', historical)).toEqual([]);
    expect(historical.data.attributes.historical_import).toBe(true);
    expect(historical.data.attributes.profiles.data[0].attributes.subscriptions.email.marketing.consented_at).toBe('2024-01-01T00:00:00.000Z');
  });

  it('unsubscribe job with the list relationship', () => {
    const body = unsubscribeJobBody([{ email: 'a@b.co', phone_number: '+14155552671' }], ['email', 'sms'], 'L1') as any;
    expect(spec.validateBody('bulk_unsubscribe_profiles', body)).toEqual([]);
    expect(body.data.attributes.profiles.data[0].attributes.subscriptions).toEqual({ email: { marketing: { consent: 'UNSUBSCRIBED' } }, sms: { marketing: { consent: 'UNSUBSCRIBED' } } });
    expect(body.data.relationships.list.data.id).toBe('L1');
  });

  it('unsubscribe job without a list: account-wide for the chosen channels', () => {
    const body = unsubscribeJobBody([{ email: 'a@b.co' }], ['email'], undefined) as any;
    expect(spec.validateBody('bulk_unsubscribe_profiles', body)).toEqual([]);
    expect(body.data.relationships).toBeUndefined();
  });

  it('list member removal', () => {
    expect(spec.validateBody('remove_profiles_from_list', removeProfilesBody(['P1', 'P2']))).toEqual([]);
  });

  it('filters use only fields and operators the spec allows and parse as Klaviyo filters', () => {
    const lists = spec.filterRules('get_lists')!;
    expect(lists.get('name')?.has('equals')).toBe(true);
    expect(parseFilter(listByNameFilter('VIP "gold" list'), lists)).toEqual([{ operator: 'equals', field: 'name', value: 'VIP "gold" list' }]);
    const profiles = spec.filterRules('get_profiles')!;
    for (const field of ['email', 'external_id', 'phone_number'] as const) {
      expect(profiles.get(field)?.has('any')).toBe(true);
      expect(parseFilter(profilesByFilter(field, ['a', 'b']), profiles)).toEqual([{ operator: 'any', field, value: ['a', 'b'] }]);
    }
  });

  it('published per-request limits are the ones the sync chunks by', () => {
    expect(LIMITS).toMatchObject({ importProfiles: 10_000, importBytes: 5 * 1024 * 1024, importProfileBytes: 100 * 1024, subscribeProfiles: 1000, unsubscribeProfiles: 100, removeProfiles: 1000 });
    const description = (id: string) => { const op = spec.operation(id); return spec.raw.paths[op.path][op.method.toLowerCase()].description as string; };
    expect(description('bulk_import_profiles')).toMatch(/up to 10,000 profiles per request. The maximum allowed payload size is 5MB. The maximum allowed payload size per-profile is 100KB/);
    expect(description('bulk_subscribe_profiles')).toMatch(/Maximum number of profiles can be submitted for subscription: 1000/);
    expect(description('bulk_unsubscribe_profiles')).toMatch(/Maximum number of profiles per call: 100/);
    expect(description('remove_profiles_from_list')).toMatch(/maximum of 1000 profiles per call/);
    const pageSize = spec.operation('get_profiles').parameters.map((p: any) => (p.$ref ? spec.raw.components.parameters[p.$ref.split('/').pop()] : p)).find((p: any) => p.name === 'page[size]');
    expect(pageSize.schema.maximum).toBe(LIMITS.lookupPageSize);
  });

  it('helpers', () => {
    expect(memberChannels({ email: 'a@b.co' }, ['email', 'sms'])).toEqual(['email']);
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  });
});

import { describe, it, expect } from 'vitest';
import { createMapper, normaliseEmail, normalisePhone } from '../../src/server/audiences/mapping.js';
import { parseDefinition } from '../../src/server/audiences/definitions.js';

const def = (extra: Record<string, unknown> = {}) =>
  parseDefinition({ name: 'a', source: { type: 'file', path: 'x.csv' }, list: { id: 'L1' }, ...extra });

describe('identifier validation', () => {
  it('normalises and checks emails', () => {
    expect(normaliseEmail('  Ada@Example.COM ')).toBe('ada@example.com');
    for (const bad of ['ada', 'ada@', '@x.co', 'a b@x.co', 'a@x', 'a@@x.co', 'a@x..co']) expect(normaliseEmail(bad)).toBeUndefined();
  });

  it('normalises phones to E.164; without "+" only with a default region', () => {
    expect(normalisePhone('+1 (415) 555-2671')).toBe('+14155552671');
    expect(normalisePhone('415 555 2671', 'US')).toBe('+14155552671');
    expect(normalisePhone('020 7946 0958', 'GB')).toBe('+442079460958');
    expect(normalisePhone('415 555 2671')).toBeUndefined();
    expect(normalisePhone('+1 555')).toBeUndefined();
  });
});

describe('mapping a member', () => {
  it('maps standard, location and custom fields; CSV numbers become numbers', () => {
    const map = createMapper(def({
      mapping: [
        { from: 'Email', to: 'email' }, { from: 'First', to: 'first_name' }, { from: 'City', to: 'location.city' },
        { from: 'ltv', to: 'properties.ltv' }, { from: 'tier', to: 'properties.Loyalty Tier' }, { from: 'zip', to: 'location.zip' },
      ],
    }));
    const out = map({ Email: 'ADA@example.com', First: 'Ada', City: 'London', ltv: '120.50', tier: 'gold', zip: '01234', ignored: 'x' });
    expect(out).toEqual({
      kind: 'ok', key: 'e:ada@example.com', droppedFields: [], consentedAt: undefined,
      attributes: { email: 'ada@example.com', first_name: 'Ada', location: { city: 'London', zip: '01234' }, properties: { ltv: 120.5, 'Loyalty Tier': 'gold' } },
    });
  });

  it('reads nested NDJSON fields by dotted path', () => {
    const map = createMapper(def({ mapping: [{ from: 'contact.email', to: 'email' }, { from: 'stats.orders', to: 'properties.orders' }] }));
    expect(map({ contact: { email: 'a@b.co' }, stats: { orders: 3 } })).toMatchObject({ kind: 'ok', attributes: { email: 'a@b.co', properties: { orders: 3 } } });
  });

  it('uses same-named fields when no mapping is given', () => {
    const map = createMapper(def());
    expect(map({ email: 'a@b.co', first_name: 'A', 'location.city': 'Paris', custom: 1 })).toMatchObject({
      kind: 'ok', attributes: { email: 'a@b.co', first_name: 'A', location: { city: 'Paris' } },
    });
  });

  it('drops an invalid field but keeps the member when another identifier remains', () => {
    const map = createMapper(def({ mapping: [{ from: 'email', to: 'email' }, { from: 'phone', to: 'phone_number' }] }));
    expect(map({ email: 'not-an-email', phone: '+14155552671' })).toMatchObject({
      kind: 'ok', key: 'p:+14155552671', droppedFields: ['email'], attributes: { phone_number: '+14155552671' },
    });
    expect(map({ email: 'not-an-email', phone: '12' })).toMatchObject({ kind: 'invalid' });
  });

  it('uses the default phone region from the server config, or the definition', () => {
    const mapping = [{ from: 'phone', to: 'phone_number' }];
    expect(createMapper(def({ mapping }))({ phone: '4155552671' })).toMatchObject({ kind: 'invalid' });
    expect(createMapper(def({ mapping }), { defaultPhoneRegion: 'US' })({ phone: '4155552671' })).toMatchObject({ kind: 'ok', attributes: { phone_number: '+14155552671' } });
    expect(createMapper(def({ mapping, defaultPhoneRegion: 'GB' }), { defaultPhoneRegion: 'US' })({ phone: '02079460958' })).toMatchObject({ kind: 'ok', attributes: { phone_number: '+442079460958' } });
  });

  it('skips members without identifiers unless allowAnonymous, then keys them by anonymous id as external_id', () => {
    const mapping = [{ from: 'email', to: 'email' }, { from: 'anonymous_id', to: 'properties.anon' }];
    expect(createMapper(def({ mapping }))({ anonymous_id: 'anon-1' })).toEqual({ kind: 'anonymous' });
    expect(createMapper(def({ mapping, allowAnonymous: true }))({ anonymous_id: 'anon-1' })).toMatchObject({
      kind: 'ok', key: 'x:anon-1', attributes: { external_id: 'anon-1', properties: { anon: 'anon-1' } },
    });
    expect(createMapper(def({ mapping, allowAnonymous: true }))({ name: 'nobody' })).toEqual({ kind: 'anonymous' });
  });

  it('excludeExternalId omits the key (not null) but still keys the member by it', () => {
    const map = createMapper(def({ excludeExternalId: true, mapping: [{ from: 'id', to: 'external_id' }, { from: 'email', to: 'email' }] }));
    const out = map({ id: 'C-1', email: 'a@b.co' });
    expect(out).toMatchObject({ kind: 'ok', key: 'x:C-1' });
    expect(out.kind === 'ok' && 'external_id' in out.attributes).toBe(false);
    // Only an external id, which is excluded: nothing left for Klaviyo to match on.
    expect(map({ id: 'C-2' })).toEqual({ kind: 'anonymous' });
  });

  it('reads consent time for historical imports', () => {
    const map = createMapper(def({ consent: 'subscribed', consentedAtField: 'opted_in', mapping: [{ from: 'email', to: 'email' }] }));
    expect(map({ email: 'a@b.co', opted_in: '2024-05-01T10:00:00Z' })).toMatchObject({ consentedAt: '2024-05-01T10:00:00.000Z' });
    expect(map({ email: 'a@b.co', opted_in: '2999-01-01' })).toMatchObject({ consentedAt: undefined });
  });
});

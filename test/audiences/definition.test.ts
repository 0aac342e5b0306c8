import { describe, it, expect } from 'vitest';
import { parseDefinition, DefinitionError } from '../../src/server/audiences/definitions.js';
import { unsubscribeScope } from '../../src/server/audiences/definition.js';

const base = {
  name: 'vip',
  source: { type: 'file', path: 'members.csv' },
  list: { create: 'VIP customers' },
  mapping: [{ from: 'email', to: 'email' }],
};

const errorOf = (input: unknown) => {
  try {
    parseDefinition(input);
  } catch (err) {
    expect(err).toBeInstanceOf(DefinitionError);
    return (err as Error).message;
  }
  throw new Error('expected the definition to be rejected');
};

describe('sync definition validation', () => {
  it('accepts a full definition and fills defaults', () => {
    const def = parseDefinition(base);
    expect(def).toMatchObject({ consent: 'never_subscribed', subscription: ['email'], allowAnonymous: false, excludeExternalId: false, enabled: true });
  });

  it('rejects never_subscribed with sms, naming consent', () => {
    const msg = errorOf({ ...base, consent: 'never_subscribed', subscription: ['email', 'sms'] });
    expect(msg).toMatch(/- consent: never_subscribed is allowed for email only/);
  });

  it('rejects allowAnonymous with excludeExternalId, naming the field', () => {
    const msg = errorOf({ ...base, allowAnonymous: true, excludeExternalId: true });
    expect(msg).toMatch(/- excludeExternalId: cannot be combined with allowAnonymous/);
  });

  it("takes unsubscribeFrom 'list' or 'all' with consent unsubscribed only; 'list' when unset", () => {
    expect(errorOf({ ...base, unsubscribeFrom: 'all' })).toMatch(/unsubscribeFrom: only applies to consent "unsubscribed"/);
    expect(errorOf({ ...base, consent: 'unsubscribed', unsubscribeFrom: 'account' })).toMatch(/unsubscribeFrom/);
    expect(unsubscribeScope(parseDefinition({ ...base, consent: 'unsubscribed' }))).toBe('list');
    expect(unsubscribeScope(parseDefinition({ ...base, consent: 'unsubscribed', unsubscribeFrom: 'all' }))).toBe('all');
  });

  it('rejects consentedAtField unless consent is subscribed', () => {
    expect(errorOf({ ...base, consentedAtField: 'opted_in_at' })).toMatch(/consentedAtField: only applies to consent "subscribed"/);
    expect(parseDefinition({ ...base, consent: 'subscribed', consentedAtField: 'opted_in_at' }).consentedAtField).toBe('opted_in_at');
  });

  it('names a bad mapping target by index', () => {
    const msg = errorOf({ ...base, mapping: [{ from: 'email', to: 'email' }, { from: 'x', to: 'favourite_colour' }] });
    expect(msg).toMatch(/- mapping\[1\]\.to: must be email, phone_number, external_id/);
  });

  it('rejects a Klaviyo field mapped twice', () => {
    expect(errorOf({ ...base, mapping: [{ from: 'a', to: 'email' }, { from: 'b', to: 'email' }] })).toMatch(/mapping\[1\]\.to: "email" is mapped twice/);
  });

  it('rejects bad durations, list shapes, consent values and unknown keys', () => {
    expect(errorOf({ ...base, refreshInterval: 'often' })).toMatch(/refreshInterval: must be a duration/);
    // One message for a value that is no duration, not also "must be longer than 0".
    expect(errorOf({ ...base, refreshInterval: '6 hours' })).not.toMatch(/longer than 0/);
    expect(errorOf({ ...base, refreshInterval: '0h' })).toMatch(/refreshInterval: must be longer than 0/);
    expect(errorOf({ ...base, list: { name: 'x' } })).toMatch(/- list: /);
    expect(errorOf({ ...base, consent: 'maybe' })).toMatch(/- consent: /);
    expect(errorOf({ ...base, colour: 'red' })).toMatch(/colour/);
    expect(errorOf({ ...base, subscription: [] })).toMatch(/- subscription: /);
  });

  it('validates segment rules recursively', () => {
    const rules = {
      all: [
        { event: 'Viewed Product', count: { gte: 2 }, within: '7d', where: { Categories: { contains: 'Shoes' } } },
        { not: { event: 'Placed Order', within: '30d' } },
        { trait: 'country', eq: 'US' },
      ],
    };
    expect(parseDefinition({ ...base, source: { type: 'segment', rules } }).source).toEqual({ type: 'segment', rules });
    expect(errorOf({ ...base, source: { type: 'segment', rules: { all: [{ event: 'X', within: 'soon' }] } } })).toMatch(/source\.rules/);
    expect(errorOf({ ...base, source: { type: 'ftp', path: 'x' } })).toMatch(/source\.type/);
    // Errors name the part of the rule that is wrong.
    const segment = (rules: unknown) => ({ ...base, source: { type: 'segment', rules } });
    expect(errorOf(segment({ any: [{ not: { event: 'X', count: { gte: 'two' } } }] }))).toMatch(/- source\.rules\.any\[0\]\.not\.count\.gte: .*expected number/);
    expect(errorOf(segment({ trait: 'plan', equals: 'gold' }))).toMatch(/- source\.rules: Unrecognized key: "equals"/);
    expect(errorOf(segment({ segment: 'vip' }))).toMatch(/- source\.rules: a rule is \{"all": \[rules\]\}, \{"any"/);
  });
});

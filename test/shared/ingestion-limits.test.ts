// The numbers follow Klaviyo's "Ingestion limits" table:
// https://developers.klaviyo.com/en/docs/rate-limits-and-error-handling
import { describe, expect, it } from 'vitest';
import { INGESTION_LIMITS, propertiesLimitError, timeLimitError } from '../../src/shared/ingestion-limits.js';

const nested = (levels: number): Record<string, unknown> => {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { child: value };
  return value;
};

describe('ingestion limits', () => {
  it('holds the documented numbers', () => {
    expect(INGESTION_LIMITS.properties).toBe(300);
    expect(INGESTION_LIMITS.fieldBytes).toBe(100_000);
    expect(INGESTION_LIMITS.arrayItems).toBe(4000);
    expect(INGESTION_LIMITS.nestingLevels).toBe(10);
    expect(new Date(INGESTION_LIMITS.earliestTime).toISOString()).toBe('2000-01-01T00:00:00.000Z');
    expect(INGESTION_LIMITS.futureMs).toBe(365 * 24 * 3600 * 1000);
  });

  it('counts properties', () => {
    const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, i]));
    expect(propertiesLimitError(props(300))).toBeUndefined();
    expect(propertiesLimitError(props(301))).toMatch(/300 properties/);
  });

  it('measures a field in UTF-8 bytes, at any depth', () => {
    expect(propertiesLimitError({ a: 'x'.repeat(100_000) })).toBeUndefined();
    expect(propertiesLimitError({ a: 'x'.repeat(100_001) })).toMatch(/100000 bytes/);
    expect(propertiesLimitError({ a: 'é'.repeat(50_001) })).toMatch(/100000 bytes/);
    expect(propertiesLimitError({ a: [{ b: 'x'.repeat(100_001) }] })).toMatch(/100000 bytes/);
  });

  it('counts array items, at any depth', () => {
    expect(propertiesLimitError({ Items: new Array(4000).fill(1) })).toBeUndefined();
    expect(propertiesLimitError({ Items: new Array(4001).fill(1) })).toMatch(/4000 items/);
    expect(propertiesLimitError({ a: { b: new Array(4001).fill(1) } })).toMatch(/4000 items/);
  });

  it('allows 10 levels of nesting, properties included, and stops at cycles', () => {
    expect(propertiesLimitError(nested(10))).toBeUndefined();
    expect(propertiesLimitError(nested(11))).toMatch(/10 levels/);
    expect(propertiesLimitError(nested(5000))).toMatch(/10 levels/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(propertiesLimitError(cyclic)).toMatch(/10 levels/);
  });

  it('takes times from 2000 to one year ahead', () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    expect(timeLimitError('2000-01-01T00:00:00Z', now)).toBeUndefined();
    expect(timeLimitError('1999-12-31T23:59:59Z', now)).toMatch(/before 2000/);
    expect(timeLimitError(now + INGESTION_LIMITS.futureMs, now)).toBeUndefined();
    expect(timeLimitError(now + INGESTION_LIMITS.futureMs + 1, now)).toMatch(/one year/);
    expect(timeLimitError('not a date', now)).toMatch(/before 2000/);
  });
});

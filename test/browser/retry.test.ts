import { describe, it, expect } from 'vitest';
import { classify, parseRetryAfter, retryDelay } from '../../src/browser/retry.js';

describe('status classification', () => {
  it.each([
    [200, 'ok'], [202, 'ok'], [204, 'ok'],
    [0, 'retry'], [408, 'retry'], [429, 'retry'], [500, 'retry'], [502, 'retry'], [503, 'retry'],
    [400, 'drop'], [401, 'drop'], [403, 'drop'], [404, 'drop'], [409, 'drop'], [413, 'drop'], [302, 'drop'],
  ])('%i → %s', (status, outcome) => expect(classify(status)).toBe(outcome));
});

describe('Retry-After', () => {
  const now = Date.parse('2026-11-28T10:00:00Z');
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Sat, 28 Nov 2026 10:00:30 GMT', now)).toBe(30000);
    expect(parseRetryAfter('Sat, 28 Nov 2026 09:00:00 GMT', now)).toBe(0);
  });
  it('is undefined when absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('retry delays', () => {
  it('a readable Retry-After wins over backoff', () => {
    expect(retryDelay(5, 429, '3', () => 0.99)).toBe(3000);
    expect(retryDelay(1, 503, '12', () => 0.5)).toBe(12000);
  });
  it('a 429 without Retry-After waits at least 2 s, doubling, with jitter on top', () => {
    expect(retryDelay(1, 429, null, () => 0)).toBe(2000);
    expect(retryDelay(1, 429, null, () => 1)).toBe(4000);
    expect(retryDelay(2, 429, 'garbage', () => 0)).toBe(4000);
    expect(retryDelay(3, 429, null, () => 0)).toBe(8000);
  });
  it('network errors and 5xx use exponential backoff with full jitter, capped', () => {
    expect(retryDelay(1, 0, null, () => 0)).toBe(0);
    expect(retryDelay(1, 0, null, () => 1)).toBe(1000);
    expect(retryDelay(3, 500, null, () => 1)).toBe(4000);
    expect(retryDelay(3, 500, null, () => 0.5)).toBe(2000);
    expect(retryDelay(40, 503, null, () => 1)).toBe(300000);
  });
});

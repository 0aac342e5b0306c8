// The tests' one way to wait must itself be able to fail: a condition that never holds, or an assertion that never
// passes, ends the wait with what it waited for (the assertion's own message), not a hang or a silent pass.
import { describe, it, expect } from 'vitest';
import { eventually, waitFor } from './wait-for.js';

describe('waitFor', () => {
  it('returns the first truthy value', async () => {
    let calls = 0;
    expect(await waitFor(() => ++calls >= 3 && calls, { everyMs: 1 })).toBe(3);
  });

  it('fails naming what it waited for', async () => {
    await expect(waitFor(() => false, { timeoutMs: 30, everyMs: 5, what: 'the moon' })).rejects.toThrow('timed out after 30 ms waiting for the moon');
  });
});

describe('eventually', () => {
  it('resolves once the assertion passes', async () => {
    const seen: number[] = [];
    await eventually(() => {
      seen.push(seen.length);
      expect(seen).toHaveLength(3);
    }, { everyMs: 1 });
    expect(seen).toEqual([0, 1, 2]);
  });

  it("fails with the assertion's last failure", async () => {
    await expect(eventually(() => expect(1).toBe(2), { timeoutMs: 30, everyMs: 5 })).rejects.toThrow(/expected 1 to be 2/);
  });
});

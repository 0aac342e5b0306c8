// @vitest-environment happy-dom
// The key-value store under the outbox: IndexedDB (fake-indexeddb here); the memory fallback is its callers' (outbox.test.ts). list() order is not
// part of its contract (the outbox sorts by age), so the tests sort.
import { describe, it, expect, beforeEach } from 'vitest';
import { freshBrowser } from './helpers.js';
import { openKV } from '../../src/browser/storage.js';

beforeEach(() => void freshBrowser());

describe('list()', () => {
  it('a read under way never undoes writes made after it began: they are newer than what it read', async () => {
    const kv = openKV('s', () => {});
    await kv.put('e:a', 'a1');
    const listed = kv.list<string>('e:');
    // Queued behind the read: IndexedDB commits them after it, so the read sees the old state.
    const written = Promise.all([kv.put('e:b', 'b1'), kv.put('e:a', undefined)]);
    expect(await listed).toEqual(['b1']);
    await written;
    expect(await kv.list<string>('e:')).toEqual(['b1']);
    // A second handle on the database (another tab) sees the same.
    expect(await openKV('s', () => {}).list<string>('e:')).toEqual(['b1']);
  });

  it('without IndexedDB it answers undefined, so its callers keep their own memory', async () => {
    delete (globalThis as any).indexedDB;
    const warnings: string[] = [];
    const kv = openKV('s', (reason) => warnings.push(reason));
    expect(await kv.put('e:a', 'a1')).toBe(false);
    expect(await kv.list('e:')).toBeUndefined();
    expect(await kv.get('e:a')).toBeUndefined();
    expect(await kv.update<string>('e:a', (old) => old + '!', 'mine')).toBe('mine!');
    expect(warnings).toHaveLength(1);
  });
});

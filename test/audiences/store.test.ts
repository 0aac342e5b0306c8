// The diff state: only what Klaviyo confirmed moves it; consent owed survives re-imports; lists reset it.
import { describe, it, expect, beforeEach } from 'vitest';
import { openDatabase, type Db } from '../../src/server/store/db.js';
import { createSqliteAudienceStore } from '../../src/server/store/sqlite-audiences.js';
import type { AudienceStore, SentMember } from '../../src/server/store/audience-types.js';
import { createLease, runLogStore } from '../../src/server/audiences/runs.js';

let db: Db;
let store: AudienceStore;
beforeEach(() => {
  db = openDatabase(':memory:');
  store = createSqliteAudienceStore(db);
});

const member = (key: string, extra: Partial<SentMember> = {}): SentMember => ({ key, hash: `h-${key}`, email: `${key}@x.co`, consent: false, ...extra });

describe('audience diff state', () => {
  it('commits a confirmed job minus the members Klaviyo rejected, and forgets the in-flight record', async () => {
    const s = store.members('a');
    await s.recordInflight('JOB1', 'L1', [member('m1', { consent: true }), member('m2'), member('m3')]);
    expect(await s.inflight()).toEqual([{ jobId: 'JOB1', listId: 'L1', members: expect.any(Array) }]);
    await s.commitJob('JOB1', ['m2'], 7, []);
    expect(await s.inflight()).toEqual([]);
    expect([...(await s.getMany(['m1', 'm2', 'm3'])).keys()].sort()).toEqual(['m1', 'm3']);
    expect(await s.get('m1')).toMatchObject({ hash: 'h-m1', email: 'm1@x.co' });
    expect((await s.pendingConsent(10)).map((p) => p.member_key)).toEqual(['m1']);
    // A later re-import of m1 without a consent debt keeps the debt until it is paid.
    await s.recordInflight('JOB2', 'L1', [member('m1', { hash: 'h2' })]);
    await s.commitJob('JOB2', [], 8, []);
    expect((await s.get('m1'))!.hash).toBe('h2');
    expect((await s.pendingConsent(10)).map((p) => p.member_key)).toEqual(['m1']);
    await s.settleConsent(['m1'], ['m1']);
    expect(await s.pendingConsent(10)).toEqual([]);
    // A list-level unsubscribe took m1 off the list; a later import puts it back on.
    expect((await s.get('m1'))!.list_unsubscribed).toBe(true);
    await s.recordInflight('JOB3', 'L1', [member('m1', { hash: 'h3' })]);
    await s.commitJob('JOB3', [], 9, []);
    expect((await s.get('m1'))!.list_unsubscribed).toBe(false);
  });

  it('tells members seen in this run from those who left', async () => {
    const s = store.members('a');
    await s.recordInflight('J', 'L1', [member('m1'), member('m2'), member('m3')]);
    await s.commitJob('J', [], 1, []);
    await s.touchMany(['m1', 'm3'], 2);
    expect((await s.leftMembers(2, 10)).map((m) => m.member_key)).toEqual(['m2']);
    expect(await s.countLeft(2)).toBe(1);
    await s.markLeft(['m2']);
    expect(await s.countMembers()).toBe(2);
    expect(await s.leftMembers(2, 10)).toEqual([]);
    expect(await s.get('m2')).toMatchObject({ left_at: expect.any(Number) });
    // Coming back (a confirmed import) puts the member on the list again.
    await s.recordInflight('J2', 'L1', [member('m2')]);
    await s.commitJob('J2', [], 3, []);
    expect((await s.get('m2'))!.left_at).toBeNull();
  });

  it('keeps audiences apart and starts fresh when the list changes', async () => {
    const a = store.members('a');
    const b = store.members('b');
    await a.rememberList('{"create":"X"}', 'L1');
    await a.recordInflight('J', 'L1', [member('m1')]);
    await a.commitJob('J', [], 1, []);
    expect(await b.get('m1')).toBeUndefined();
    expect(await a.rememberedList('{"create":"X"}')).toBe('L1');
    await a.rememberList('{"create":"X"}', 'L1');
    expect(await a.countMembers()).toBe(1);
    await a.rememberList('{"id":"L2"}', 'L2');
    expect(await a.countMembers()).toBe(0);
    expect(await a.rememberedList('{"create":"X"}')).toBeUndefined();
  });
});

describe('run lease and log rows', () => {
  it('one holder at a time; an expired lease can be taken over; abandoned rows end as failed', async () => {
    const one = createLease(store, 'a', 50);
    const two = createLease(store, 'a', 50);
    expect(await one.acquire()).toBe(true);
    expect(await two.acquire()).toBe(false);
    await one.release();
    expect(await two.acquire()).toBe(true);
    db.prepare('UPDATE audience_leases SET expires_at = 0').run();
    expect(await one.acquire()).toBe(true);

    const logs = runLogStore(store);
    const id = await logs.start('a', 'cli');
    expect(await logs.get(id)).toMatchObject({ status: 'running', ended_at: null, duration_ms: null });
    await logs.closeAbandoned('a');
    expect(await logs.get(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/interrupted/) });
  });
});

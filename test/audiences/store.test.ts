// The diff state: only what Klaviyo confirmed moves it; consent owed survives re-imports; lists reset it.
import { describe, it, expect, beforeEach } from 'vitest';
import { openDatabase, type Db } from '../../src/server/store/db.js';
import { audienceState, migrateAudiences, type SentMember } from '../../src/server/audiences/store.js';
import { createLease, runLogStore } from '../../src/server/audiences/runs.js';

let db: Db;
beforeEach(() => {
  db = openDatabase(':memory:');
  migrateAudiences(db);
});

const member = (key: string, extra: Partial<SentMember> = {}): SentMember => ({ key, hash: `h-${key}`, email: `${key}@x.co`, consent: false, ...extra });

describe('audience diff state', () => {
  it('commits a confirmed job minus the members Klaviyo rejected, and forgets the in-flight record', () => {
    const s = audienceState(db, 'a');
    s.recordInflight('JOB1', 'L1', [member('m1', { consent: true }), member('m2'), member('m3')]);
    expect(s.inflight()).toEqual([{ jobId: 'JOB1', listId: 'L1', members: expect.any(Array) }]);
    s.commitJob('JOB1', ['m2'], 7, []);
    expect(s.inflight()).toEqual([]);
    expect([...s.getMany(['m1', 'm2', 'm3']).keys()].sort()).toEqual(['m1', 'm3']);
    expect(s.get('m1')).toMatchObject({ hash: 'h-m1', email: 'm1@x.co' });
    expect(s.pendingConsent(10).map((p) => p.member_key)).toEqual(['m1']);
    // A later re-import of m1 without a consent debt keeps the debt until it is paid.
    s.recordInflight('JOB2', 'L1', [member('m1', { hash: 'h2' })]);
    s.commitJob('JOB2', [], 8, []);
    expect(s.get('m1')!.hash).toBe('h2');
    expect(s.pendingConsent(10).map((p) => p.member_key)).toEqual(['m1']);
    s.settleConsent(['m1'], ['m1']);
    expect(s.pendingConsent(10)).toEqual([]);
    // A list-level unsubscribe took m1 off the list; a later import puts it back on.
    expect(s.get('m1')!.list_unsubscribed).toBe(1);
    s.recordInflight('JOB3', 'L1', [member('m1', { hash: 'h3' })]);
    s.commitJob('JOB3', [], 9, []);
    expect(s.get('m1')!.list_unsubscribed).toBe(0);
  });

  it('tells members seen in this run from those who left', () => {
    const s = audienceState(db, 'a');
    s.recordInflight('J', 'L1', [member('m1'), member('m2'), member('m3')]);
    s.commitJob('J', [], 1, []);
    s.touchMany(['m1', 'm3'], 2);
    expect(s.leftMembers(2, 10).map((m) => m.member_key)).toEqual(['m2']);
    expect(s.countLeft(2)).toBe(1);
    s.markLeft(['m2']);
    expect(s.countMembers()).toBe(2);
    expect(s.leftMembers(2, 10)).toEqual([]);
    expect(s.get('m2')).toMatchObject({ left_at: expect.any(Number) });
    // Coming back (a confirmed import) puts the member on the list again.
    s.recordInflight('J2', 'L1', [member('m2')]);
    s.commitJob('J2', [], 3, []);
    expect(s.get('m2')!.left_at).toBeNull();
  });

  it('keeps audiences apart and starts fresh when the list changes', () => {
    const a = audienceState(db, 'a');
    const b = audienceState(db, 'b');
    a.rememberList('{"create":"X"}', 'L1');
    a.recordInflight('J', 'L1', [member('m1')]);
    a.commitJob('J', [], 1, []);
    expect(b.get('m1')).toBeUndefined();
    expect(a.rememberedList('{"create":"X"}')).toBe('L1');
    a.rememberList('{"create":"X"}', 'L1');
    expect(a.countMembers()).toBe(1);
    a.rememberList('{"id":"L2"}', 'L2');
    expect(a.countMembers()).toBe(0);
    expect(a.rememberedList('{"create":"X"}')).toBeUndefined();
  });
});

describe('run lease and log rows', () => {
  it('one holder at a time; an expired lease can be taken over; abandoned rows end as failed', () => {
    const one = createLease(db, 'a', 50);
    const two = createLease(db, 'a', 50);
    expect(one.acquire()).toBe(true);
    expect(two.acquire()).toBe(false);
    one.release();
    expect(two.acquire()).toBe(true);
    db.prepare('UPDATE audience_leases SET expires_at = 0').run();
    expect(one.acquire()).toBe(true);

    const logs = runLogStore(db);
    const id = logs.start('a', 'cli');
    expect(logs.get(id)).toMatchObject({ status: 'running', ended_at: null, duration_ms: null });
    logs.closeAbandoned('a');
    expect(logs.get(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/interrupted/) });
  });
});

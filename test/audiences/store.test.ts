// The audience store contract, on SQLite and on PostgreSQL alike: only what Klaviyo confirmed moves the diff
// state; consent owed survives re-imports; lists reset it; one lease holder at a time; definitions and run rows.
import { describe, it, expect, beforeAll, beforeEach, afterAll } from 'vitest';
import type { AudienceStore, SentMember } from '../../src/server/store/audience-types.js';
import { createLease, runLogStore } from '../../src/server/audiences/runs.js';
import { BACKENDS, type AudienceBackend } from './backends.js';

describe.each(BACKENDS)('audience store on $name', ({ open }) => {
  let backend: AudienceBackend;
  let store: AudienceStore;
  beforeAll(async () => {
    backend = await open();
    store = backend.store;
  });
  beforeEach(() => backend.reset());
  afterAll(() => backend.close());

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
      // A lease far longer than the test: expiry is made explicit below, never left to the real clock.
      const one = createLease(store, 'a', 60_000);
      const two = createLease(store, 'a', 60_000);
      expect(await one.acquire()).toBe(true);
      expect(await two.acquire()).toBe(false);
      await one.release();
      expect(await two.acquire()).toBe(true);
      await backend.exec('UPDATE audience_leases SET expires_at = 0');
      expect(await one.acquire()).toBe(true);

      const logs = runLogStore(store);
      const id = await logs.start('a', 'cli');
      expect(await logs.get(id)).toMatchObject({ status: 'running', ended_at: null, duration_ms: null });
      await logs.closeAbandoned('a');
      expect(await logs.get(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/interrupted/) });
    });

    it('many holders asking at the same moment: exactly one gets the lease; it renews, others cannot', async () => {
      const contenders = Array.from({ length: 8 }, () => createLease(store, 'race', 60_000));
      const won = await Promise.all(contenders.map((l) => l.acquire()));
      expect(won.filter(Boolean)).toHaveLength(1);
      const holder = contenders[won.indexOf(true)];
      const other = contenders[(won.indexOf(true) + 1) % contenders.length];
      expect(await holder.renew()).toBe(true);
      expect(await other.renew()).toBe(false);
      expect(await holder.heldUntil()).toBeGreaterThan(Date.now() + 50_000);
      // Releasing someone else's lease does nothing.
      await other.release();
      expect(await other.acquire()).toBe(false);
    });

    it('keeps run rows per audience, newest first, with progress and the final status', async () => {
      const logs = runLogStore(store);
      const first = await logs.start('a', 'manual');
      const second = await logs.start('a', 'schedule');
      await logs.start('b', 'cli');
      await logs.update(first, { status: 'partial', ended: true, listId: 'L9', counts: { ...(await logs.get(first))!.counts, read: 3, failed: 1 }, jobIds: ['J1'], errors: [{ stage: 'import', member: 'm1', detail: 'bad' }], errorsOmitted: 2 });
      expect((await logs.list('a')).map((r) => r.id)).toEqual([second, first]);
      expect(await logs.list('a', 1)).toHaveLength(1);
      expect(await logs.get(first)).toMatchObject({
        status: 'partial', list_id: 'L9', job_ids: ['J1'], errors: [{ stage: 'import', member: 'm1', detail: 'bad' }], errors_omitted: 2,
        counts: { read: 3, failed: 1, imported: 0 }, duration_ms: expect.any(Number),
      });
      await logs.closeAbandoned('a', second);
      expect(await logs.get(second)).toMatchObject({ status: 'running' });
    });
  });

  describe('definitions and in-flight jobs', () => {
    it('saves definitions by name (a save replaces) and lists them in name order', async () => {
      await store.saveDefinition('zeta', { name: 'zeta', v: 1 });
      await store.saveDefinition('alpha', { name: 'alpha', nested: { list: [1, 'two'] } });
      await store.saveDefinition('zeta', { name: 'zeta', v: 2 });
      expect(await store.savedDefinitions()).toEqual([
        { name: 'alpha', definition: { name: 'alpha', nested: { list: [1, 'two'] } } },
        { name: 'zeta', definition: { name: 'zeta', v: 2 } },
      ]);
    });

    it('returns in-flight jobs oldest first with their members; a touch-only commit moves no job', async () => {
      const s = store.members('a');
      await s.recordInflight('J1', 'L1', [member('m1', { consent: true, consented_at: '2026-01-01T00:00:00Z', phone_number: '+14155550100' })]);
      await s.recordInflight('J2', 'L1', [member('m2')]);
      expect(await s.inflight()).toEqual([
        { jobId: 'J1', listId: 'L1', members: [member('m1', { consent: true, consented_at: '2026-01-01T00:00:00Z', phone_number: '+14155550100' })] },
        { jobId: 'J2', listId: 'L1', members: [member('m2')] },
      ]);
      await s.commitJob('J1', [], 1, []);
      expect(await s.pendingConsent(10)).toEqual([{ member_key: 'm1', email: 'm1@x.co', phone_number: '+14155550100', consented_at: '2026-01-01T00:00:00Z' }]);
      await s.commitJob('', [], 2, ['m1']);
      expect(await s.leftMembers(2, 10)).toEqual([]);
      expect((await s.inflight()).map((j) => j.jobId)).toEqual(['J2']);
    });

    it('remembers the consent settings per audience; touching with a consent debt owes consent again', async () => {
      const s = store.members('a');
      await s.rememberList('{"id":"L"}', 'L');
      expect(await s.consentSettings()).toBeUndefined();
      await s.rememberConsentSettings('subscribed:email');
      expect(await s.consentSettings()).toBe('subscribed:email');
      expect(await store.members('b').consentSettings()).toBeUndefined();
      await s.recordInflight('J', 'L', [member('m1'), member('m2')]);
      await s.commitJob('J', [], 1, []);
      expect(await s.pendingConsent(10)).toEqual([]);
      await s.touchMany(['m1'], 2);
      expect(await s.pendingConsent(10)).toEqual([]);
      await s.touchMany(['m2'], 2, true);
      expect((await s.pendingConsent(10)).map((m) => m.member_key)).toEqual(['m2']);
      // Settled without a list-level unsubscribe: nothing is owed and the member stays on the list.
      await s.settleConsent(['m2'], []);
      expect(await s.pendingConsent(10)).toEqual([]);
      expect((await s.getMany(['m2'])).get('m2')).toMatchObject({ list_unsubscribed: false });
      await s.settleConsent(['m1', 'm2'], ['m1']);
      expect((await s.leftMembers(3, 10)).map((m) => [m.member_key, m.list_unsubscribed])).toEqual([['m1', true], ['m2', false]]);
    });

    it('pages pending consent and left members in key order, whatever the case of the keys', async () => {
      const s = store.members('a');
      const keys = ['b', 'B', 'a', 'A', 's:10', 's:9', 'x:Z'];
      await s.recordInflight('J', 'L', keys.map((k) => member(k, { consent: true })));
      await s.commitJob('J', [], 1, []);
      const sorted = [...keys].sort();
      expect((await s.pendingConsent(3)).map((m) => m.member_key)).toEqual(sorted.slice(0, 3));
      expect((await s.leftMembers(2, 100)).map((m) => m.member_key)).toEqual(sorted);
      await s.markLeft(sorted.slice(0, 2), 1234);
      expect(await s.get(sorted[0])).toMatchObject({ left_at: 1234 });
      expect((await s.pendingConsent(100)).map((m) => m.member_key)).toEqual(sorted.slice(2));
    });
  });
});

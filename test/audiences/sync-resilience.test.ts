// Failures mid-run against the sandbox: 429/5xx/dropped connections retried without loss, a killed run resumed
// without importing again what Klaviyo accepted, a 4xx logged without a retry loop, one run at a time, dry runs.
import { describe, it, expect } from 'vitest';
import { parseDefinition } from '../../src/server/audiences/definitions.js';
import { startRun, SyncAlreadyRunning } from '../../src/server/audiences/sync.js';
import { AUDIENCE_TABLES } from './backends.js';
import { waitFor } from '../support/wait-for.js';
import { createHarness, onEachBackend, people, importedProfiles, type Harness } from './harness.js';

let h: Harness;

const def = (extra: Record<string, unknown> = {}) => ({
  name: 'resilient',
  source: { type: 'file', path: 'members.csv' },
  list: { create: 'Resilient', optInProcess: 'single_opt_in' },
  mapping: [{ from: 'id', to: 'external_id' }, { from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }],
  ...extra,
});

const expectEachImportedOnce = (n: number) => {
  const emails = importedProfiles(h).map((p) => p.attributes.email);
  expect(emails).toHaveLength(n);
  expect(new Set(emails).size).toBe(n);
};

onEachBackend({ tuning: { maxProfilesPerJob: 50 } }, (harness) => (h = harness), () => {
  describe('transient failures', () => {
    it('429 with Retry-After, 5xx and a dropped connection mid-run are retried; nothing is lost or sent twice', async () => {
      h.writeCsv('members.csv', people(0, 250));
      let armed = false;
      h.env.tuning!.onEvent = (e) => {
        if (e.type !== 'job-submitted' || armed) return;
        armed = true;
        h.emu.faults.add({ method: 'POST', path: '/api/profile-bulk-import-jobs', status: 429, retryAfter: 0, count: 2 });
        h.emu.faults.add({ method: 'POST', path: '/api/profile-bulk-import-jobs', status: 503, count: 1 });
        h.emu.faults.add({ method: 'GET', path: '/api/profile-bulk-import-jobs/', status: 502, count: 2 });
        h.emu.faults.add({ method: 'POST', path: '/api/profile-bulk-import-jobs', drop: true, count: 1 });
      };
      const log = await h.sync(def());
      expect(log.status).toBe('success');
      expect(log.counts).toMatchObject({ read: 250, imported: 250, failed: 0 });
      expect(log.job_ids).toHaveLength(5);
      expect(h.emu.requests.filter((r) => r.status === 429 || r.status >= 500).length).toBeGreaterThanOrEqual(5);
      expectEachImportedOnce(250);
      expect(h.emu.state.listMembers(log.list_id!)).toHaveLength(250);
    });

    it('when Klaviyo stays down the run fails, keeps no false state, and the next run sends everything', async () => {
      h.writeCsv('members.csv', people(0, 60));
      await h.sync(def()); // list exists, 60 confirmed
      h.writeCsv('members.csv', people(0, 60, () => ({ first_name: 'v2' })));
      h.emu.faults.add({ method: 'POST', path: '/api/profile-bulk-import-jobs', status: 503 });
      const down = await h.sync(def());
      expect(down.status).toBe('failed');
      expect(down.error).toMatch(/503/);
      h.emu.faults.clear();
      const up = await h.sync(def());
      expect(up.status).toBe('success');
      expect(up.counts).toMatchObject({ imported: 60, unchanged: 0 });
      expect(h.profileByEmail('person59@example.com')!.first_name).toBe('v2');
    });
  });

  describe('resume', () => {
    it('a run killed after Klaviyo accepted a job folds that job in on the next run instead of importing it again', async () => {
      h.writeCsv('members.csv', people(0, 250));
      const abort = new AbortController();
      let firstJob: string | undefined;
      h.env.tuning!.onEvent = (e) => {
        if (e.type === 'job-submitted' && !firstJob) {
          firstJob = e.jobId;
          abort.abort(new Error('killed'));
        }
      };
      const killed = await h.sync(def(), { signal: abort.signal });
      expect(killed.status).toBe('failed');
      expect(killed.counts.imported).toBe(0);
      h.env.tuning!.onEvent = undefined;

      const resumed = await h.sync(def());
      expect(resumed.status).toBe('success');
      expect(resumed.job_ids[0]).toBe(firstJob);
      // The killed run's job is imported by this run: its members count once, as imported, never also as unchanged.
      expect(resumed.counts).toMatchObject({ read: 250, imported: 250, unchanged: 0 });
      expectEachImportedOnce(250);
      const third = await h.sync(def());
      expect(third.counts).toMatchObject({ imported: 0, unchanged: 250 });
    });

    it('a run killed after its first confirmed job does not re-import that job', async () => {
      h.writeCsv('members.csv', people(0, 250));
      const abort = new AbortController();
      h.env.tuning!.onEvent = (e) => {
        if (e.type === 'job-committed') abort.abort(new Error('killed'));
      };
      const killed = await h.sync(def(), { signal: abort.signal });
      expect(killed.status).toBe('failed');
      expect(killed.counts.imported).toBeGreaterThanOrEqual(50);
      h.env.tuning!.onEvent = undefined;
      const resumed = await h.sync(def());
      expect(resumed.status).toBe('success');
      expect(killed.counts.imported + resumed.counts.imported).toBe(250);
      expectEachImportedOnce(250);
    });

    it('a killed subscribed run still owes consent and pays it on the next run', async () => {
      h.writeCsv('members.csv', people(0, 100));
      const abort = new AbortController();
      let submitted = 0;
      h.env.tuning!.onEvent = (e) => {
        if (e.type === 'job-committed' && ++submitted === 2) abort.abort(new Error('killed'));
      };
      const killed = await h.sync(def({ consent: 'subscribed' }), { signal: abort.signal });
      expect(killed.status).toBe('failed');
      expect(killed.counts.subscribed).toBe(0);
      h.env.tuning!.onEvent = undefined;
      const resumed = await h.sync(def({ consent: 'subscribed' }));
      expect(resumed.counts).toMatchObject({ subscribed: 100 });
      const subscribed = h.calls('bulk_subscribe_profiles').flatMap((r: any) => r.body.data.attributes.profiles.data.map((p: any) => p.attributes.email));
      expect(new Set(subscribed).size).toBe(100);
      expect(subscribed).toHaveLength(100);
    });
  });

  describe('Klaviyo 4xx', () => {
    it('a rejected subscribe job is logged per member with Klaviyo detail; the run is partial and does not retry it', async () => {
      h.writeCsv('members.csv', people(0, 20));
      h.emu.faults.add({ method: 'POST', path: '/api/profile-subscription-bulk-create-jobs', status: 400, count: 1 });
      const log = await h.sync(def({ consent: 'subscribed' }));
      expect(log.status).toBe('partial');
      expect(log.counts).toMatchObject({ imported: 20, subscribed: 0, failed: 20 });
      expect(log.errors.filter((e) => e.stage === 'subscribe')).toHaveLength(20);
      expect(log.errors.find((e) => e.stage === 'subscribe')!.detail).toBeTruthy();
      expect(h.emu.requests.filter((r) => r.path === '/api/profile-subscription-bulk-create-jobs')).toHaveLength(1);
    });

    it('import errors Klaviyo reports for single profiles are logged for those members only, with its detail', async () => {
      // Klaviyo knows C-5 and taken@example.com as two different profiles: importing them as one conflicts.
      h.writeCsv('members.csv', [{ id: 'OTHER', email: 'taken@example.com', first_name: 'Owner' }, { id: 'C-5', email: 'c5@example.com', first_name: 'Five' }]);
      await h.sync(def({ name: 'seed', list: { create: 'Seed' } }));
      h.writeCsv('members.csv', [...people(0, 5), { id: 'C-5', email: 'taken@example.com', first_name: 'Clash' }]);
      const log = await h.sync(def());
      expect(log.status).toBe('partial');
      expect(log.counts).toMatchObject({ read: 6, imported: 5, failed: 1 });
      const [err] = log.errors.filter((e) => e.stage === 'import');
      expect(err).toMatchObject({ member: 'x:C-5', jobId: log.job_ids[0] });
      expect(err.detail).toMatch(/already exists/);
      // A duplicate_profile conflict (https://github.com/klaviyo/klaviyo-api-node/issues/75) names the Klaviyo
      // profiles holding the member's identifiers, so an operator can merge them.
      const holderOf = (field: 'external_id' | 'email', value: string) => h.emu.state.profiles().find((p) => p[field] === value)!.id;
      expect(new Set(err.profile_ids)).toEqual(new Set([holderOf('external_id', 'C-5'), holderOf('email', 'taken@example.com')]));
      expect(err.detail).toContain(`external_id on ${holderOf('external_id', 'C-5')}`);
      expect(err.detail).toContain(`email on ${holderOf('email', 'taken@example.com')}`);
      // Only the failed member is sent again next time; the five are confirmed.
      const again = await h.sync(def());
      expect(again.counts).toMatchObject({ unchanged: 5, failed: 1 });
      expect((h.calls('bulk_import_profiles').at(-1)!.body as any).data.attributes.profiles.data).toHaveLength(1);
    });
  });

  describe('one run at a time', () => {
    it('refuses a second run of the same audience in this process and in another one (database lease)', async () => {
      h.writeCsv('members.csv', people(0, 100));
      const definition = parseDefinition(def());
      const first = await startRun(h.env, definition, { trigger: 'test' });
      await expect(startRun(h.env, definition, { trigger: 'test' })).rejects.toThrow(SyncAlreadyRunning);
      const log = await first.done;
      expect(log.status).toBe('success');
      // The lock is released when the run ends.
      const again = await startRun(h.env, definition, { trigger: 'test' });
      await again.done;

      // Two connections to one database stand in for two processes.
      const a = await h.backend.another();
      const b = await h.backend.another();
      try {
        const runA = await startRun({ ...h.env, store: a.store }, definition, { trigger: 'test' });
        await expect(startRun({ ...h.env, store: b.store }, definition, { trigger: 'test' })).rejects.toThrow(/already running/);
        expect((await runA.done).status).toBe('success');
        const runB = await startRun({ ...h.env, store: b.store }, definition, { trigger: 'test' });
        expect((await runB.done).status).toBe('success');
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('a run whose lease was taken over (it lapsed while the process stalled) stops instead of overlapping', async () => {
      // Import jobs held by the sandbox keep the run going until the takeover.
      const held = await createHarness({ backend: h.backend, jobDelayMs: 3_600_000, tuning: { pollIntervalMs: 10, leaseTtlMs: 200 } });
      try {
        held.writeCsv('members.csv', people(0, 10));
        const run = await startRun(held.env, parseDefinition(def()), { trigger: 'test' });
        await waitFor(() => held.calls('bulk_import_profiles').length === 1, { what: 'the import job' });
        await h.backend.exec("UPDATE audience_leases SET owner = 'another-process'");
        const log = await run.done;
        expect(log).toMatchObject({ status: 'failed', error: expect.stringMatching(/lease lapsed and another process took it/) });
        // The other process's lease is left alone.
        expect(await held.env.store.leases.heldUntil('resilient')).toBeGreaterThan(0);
      } finally {
        await held.close();
      }
    });
  });

  describe('dry run', () => {
    it('sends only GET requests, writes no state and no log row, and says what would be sent', async () => {
      h.writeCsv('members.csv', people(0, 120));
      const before = h.emu.requests.length;
      const plan = await h.dry(def({ consent: 'subscribed' }));
      expect(plan.status).toBe('success');
      expect(plan.plan!.list).toMatchObject({ wouldCreate: true, name: 'Resilient' });
      expect(plan.counts).toMatchObject({ read: 120, imported: 120, subscribed: 120, removed: 0 });
      expect(plan.plan!.requests).toMatchObject({ importJobs: 3, subscribeJobs: 1 });
      expect(plan.plan!.sample.importProfiles[0]).toEqual({ type: 'profile', attributes: { external_id: 'C-0', email: 'person0@example.com', first_name: 'P0' } });
      const sent = h.emu.requests.slice(before);
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.every((r) => r.method === 'GET')).toBe(true);
      expect(h.emu.state.lists()).toHaveLength(0);
      for (const t of AUDIENCE_TABLES) expect(await h.backend.count(t)).toBe(0);

      // After a real run, a dry run with changes reports just the difference.
      await h.sync(def({ consent: 'subscribed' }));
      h.writeCsv('members.csv', people(0, 100, (i) => ({ first_name: i < 7 ? 'changed' : `P${i}` })));
      const diff = await h.dry(def({ consent: 'subscribed' }));
      expect(diff.plan!.list.wouldCreate).toBeUndefined();
      expect(diff.counts).toMatchObject({ read: 100, imported: 7, unchanged: 93, subscribed: 0, removed: 20 });
    });
  });
});

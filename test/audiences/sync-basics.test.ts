// Audience sync against the sandbox over real HTTP: lists, mapping, diffing, removals.
import { describe, it, expect } from 'vitest';
import { ingest } from './backends.js';
import { onEachBackend, people, importedProfiles, type Harness } from './harness.js';

let h: Harness;

const fileDef = (extra: Record<string, unknown> = {}) => ({
  name: 'vip',
  source: { type: 'file', path: 'members.csv' },
  list: { create: 'VIP customers' },
  mapping: [
    { from: 'id', to: 'external_id' },
    { from: 'email', to: 'email' },
    { from: 'first_name', to: 'first_name' },
  ],
  ...extra,
});

onEachBackend({}, (harness) => (h = harness), () => {
  describe('lists', () => {
    it('creates a {create} list once, then finds it by name on every later run', async () => {
      h.writeCsv('members.csv', people(0, 3));
      const first = await h.sync(fileDef());
      const second = await h.sync(fileDef());
      expect(first.status).toBe('success');
      expect(second.status).toBe('success');
      const lists = h.emu.state.lists().filter((l) => l.name === 'VIP customers');
      expect(lists).toHaveLength(1);
      expect(h.calls('create_list')).toHaveLength(1);
      expect(first.list_id).toBe(lists[0].id);
      expect(second.list_id).toBe(lists[0].id);
      expect(h.emu.state.listMembers(lists[0].id).map((p) => p.email).sort()).toEqual(['person0@example.com', 'person1@example.com', 'person2@example.com']);
    });

    it('reuses a list that already exists under that name instead of creating one', async () => {
      const existing = await fetch(`${h.emu.url}/api/lists`, {
        method: 'POST',
        headers: { Authorization: 'Klaviyo-API-Key pk_test_0123456789abcdefghijklmn', revision: '2026-07-15', 'content-type': 'application/vnd.api+json', accept: 'application/vnd.api+json' },
        body: JSON.stringify({ data: { type: 'list', attributes: { name: 'VIP customers' } } }),
      }).then((r) => r.json());
      h.writeCsv('members.csv', people(0, 2));
      const log = await h.sync(fileDef());
      expect(log.list_id).toBe(existing.data.id);
      expect(h.calls('create_list')).toHaveLength(1); // only the test's own
    });

    it('verifies an {id} list and fails clearly when it does not exist', async () => {
      h.writeCsv('members.csv', people(0, 2));
      const log = await h.sync(fileDef({ list: { id: 'NOPE42' } }));
      expect(log.status).toBe('failed');
      expect(log.error).toMatch(/list NOPE42 does not exist/);
      expect(h.calls('bulk_import_profiles')).toHaveLength(0);
    });
  });

  describe('mapping', () => {
    it('maps custom fields to properties and location, drops invalid fields and skips members without identifiers', async () => {
      h.writeCsv('members.csv', [
        { email: 'ada@example.com', phone: '+14155552671', ltv: '120.5', tier: 'gold', city: 'Austin' },
        { email: 'not-an-email', phone: '+14155552672', ltv: '3', tier: 'silver', city: 'Boston' },
        { email: 'broken', phone: '12', ltv: '1', tier: 'x', city: 'Nowhere' },
        { email: '', phone: '', ltv: '9', tier: 'anon', city: 'Ghost' },
      ]);
      const log = await h.sync({
        name: 'custom', source: { type: 'file', path: 'members.csv' }, list: { create: 'Custom' },
        mapping: [
          { from: 'email', to: 'email' }, { from: 'phone', to: 'phone_number' }, { from: 'ltv', to: 'properties.ltv' },
          { from: 'tier', to: 'properties.Loyalty Tier' }, { from: 'city', to: 'location.city' },
        ],
      });
      expect(log.status).toBe('success');
      expect(log.counts).toMatchObject({ read: 4, imported: 2, invalid: 1, invalid_fields: 1, skipped_anonymous: 1, failed: 0 });
      const ada = h.profileByEmail('ada@example.com')!;
      expect(ada.properties).toMatchObject({ ltv: 120.5, 'Loyalty Tier': 'gold' });
      expect(ada.location).toMatchObject({ city: 'Austin' });
      expect(ada.phone_number).toBe('+14155552671');
      const second = h.emu.state.profiles().find((p) => p.phone_number === '+14155552672')!;
      expect(second.email).toBeUndefined();
      expect(log.errors.map((e) => e.detail)).toEqual(expect.arrayContaining([expect.stringMatching(/invalid email dropped/), expect.stringMatching(/no valid identifier left/)]));
    });

    it('excludeExternalId omits the external_id key from every imported profile', async () => {
      h.writeCsv('members.csv', people(0, 5));
      const log = await h.sync(fileDef({ excludeExternalId: true }));
      expect(log.counts.imported).toBe(5);
      const sent = importedProfiles(h);
      expect(sent).toHaveLength(5);
      for (const p of sent) expect('external_id' in p.attributes).toBe(false);
      expect(h.emu.state.profiles().every((p) => !p.external_id)).toBe(true);
    });

    it('allowAnonymous syncs members without identifiers keyed by their anonymous id as external_id', async () => {
      h.writeCsv('members.csv', [{ anonymous_id: 'anon-1', first_name: 'A' }, { anonymous_id: 'anon-2' }, { first_name: 'no id at all' }]);
      const mapping = [{ from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }];
      const skipped = await h.sync({ name: 'anon', source: { type: 'file', path: 'members.csv' }, list: { create: 'Anon' }, mapping });
      expect(skipped.counts).toMatchObject({ read: 3, skipped_anonymous: 3, imported: 0 });
      const log = await h.sync({ name: 'anon2', source: { type: 'file', path: 'members.csv' }, list: { create: 'Anon' }, mapping, allowAnonymous: true });
      expect(log.counts).toMatchObject({ read: 3, skipped_anonymous: 1, imported: 2 });
      expect(importedProfiles(h).map((p) => p.attributes.external_id).sort()).toEqual(['anon-1', 'anon-2']);
    });
  });

  describe('diff and removals', () => {
    it('a second run sends nothing; changing 10 members sends exactly those 10', async () => {
      const rows = people(0, 250);
      h.writeCsv('members.csv', rows);
      const first = await h.sync(fileDef());
      expect(first.counts).toMatchObject({ read: 250, imported: 250, unchanged: 0 });

      const importsBefore = h.calls('bulk_import_profiles').length;
      const second = await h.sync(fileDef());
      expect(second.counts).toMatchObject({ read: 250, imported: 0, unchanged: 250 });
      expect(h.calls('bulk_import_profiles')).toHaveLength(importsBefore);

      for (let i = 0; i < 10; i++) rows[i * 20].first_name = `Changed ${i}`;
      h.writeCsv('members.csv', rows);
      const third = await h.sync(fileDef());
      expect(third.counts).toMatchObject({ read: 250, imported: 10, unchanged: 240 });
      const newBodies = h.calls('bulk_import_profiles').slice(importsBefore);
      expect(newBodies).toHaveLength(1);
      expect((newBodies[0].body as any).data.attributes.profiles.data.map((p: any) => p.attributes.first_name).sort()).toEqual(
        Array.from({ length: 10 }, (_, i) => `Changed ${i}`).sort(),
      );
      expect(h.profileByEmail('person20@example.com')!.first_name).toBe('Changed 1');
    });

    it('chunks imports by the per-job profile count', async () => {
      h.writeCsv('members.csv', people(0, 25));
      const log = await h.sync(fileDef());
      expect(log.counts.imported).toBe(25);
      h.env.tuning = { ...h.env.tuning, maxProfilesPerJob: 10 };
      h.writeCsv('members.csv', people(0, 25, () => ({ first_name: 'again' })));
      const again = await h.sync(fileDef());
      expect(again.counts.imported).toBe(25);
      expect(again.job_ids).toHaveLength(3);
      expect(h.calls('bulk_import_profiles').slice(-3).map((r: any) => r.body.data.attributes.profiles.data.length)).toEqual([10, 10, 5]);
    });

    it('removes members who left the source from the list (looked up by identifier), consent untouched', async () => {
      h.writeCsv('members.csv', people(0, 30));
      const def = fileDef({ consent: 'subscribed', list: { create: 'Single', optInProcess: 'single_opt_in' } });
      const first = await h.sync(def);
      h.emu.state.flushJobs(); // the subscribe job is asynchronous: let it land before members leave
      const listId = first.list_id!;
      expect(first.counts).toMatchObject({ imported: 30, subscribed: 30 });
      expect(h.emu.state.listMembers(listId)).toHaveLength(30);
      h.writeCsv('members.csv', people(0, 18));
      const log = await h.sync(def);
      expect(log.status).toBe('success');
      expect(log.counts).toMatchObject({ read: 18, removed: 12, unchanged: 18, imported: 0 });
      const remaining = h.emu.state.listMembers(listId).map((p) => p.email).sort();
      expect(remaining).toEqual(people(0, 18).map((p) => p.email).sort());
      const deletes = h.calls('remove_profiles_from_list');
      expect(deletes).toHaveLength(1);
      expect((deletes[0].body as any).data).toHaveLength(12);
      const lookups = h.calls('get_profiles');
      expect(lookups.length).toBeGreaterThanOrEqual(1);
      // Consent untouched: the removed people are still subscribed to email marketing (once the sandbox has run
      // the asynchronous subscribe job).
      h.emu.state.flushJobs();
      expect(h.profileByEmail('person25@example.com')!.subscriptions.email.marketing.consent).toBe('SUBSCRIBED');
      // Nothing left to remove on the next run.
      const again = await h.sync(def);
      expect(again.counts.removed).toBe(0);
    });
  });

  describe('segment sources', () => {
    it('syncs a segment larger than one page and one diff batch, then removes members who no longer match', async () => {
      // Each person identifies once with a plan; identify events are what the store builds profiles from.
      const person = (i: number, plan: string, first_name: string, minute: number) => ({
        type: 'identify' as const, time: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
        profile: { email: `seg${i}@example.com`, first_name, properties: { plan } },
      });
      const everyone = Array.from({ length: 1200 }, (_, i) => i);
      await ingest(h.backend.relay, everyone.map((i) => person(i, i % 4 === 0 ? 'free' : 'gold', `S${i}`, 0)));
      const def = {
        name: 'gold', source: { type: 'segment', rules: { trait: 'plan', eq: 'gold' } }, list: { create: 'Gold' },
        mapping: [{ from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }, { from: 'plan', to: 'properties.plan' }],
      };
      const first = await h.sync(def);
      expect(first.status).toBe('success');
      expect(first.counts).toMatchObject({ read: 900, imported: 900 });
      expect(h.emu.state.listMembers(first.list_id!)).toHaveLength(900);

      // Later identifies: the first 100 people move to the free plan, ten others change their first name.
      await ingest(h.backend.relay, [
        ...everyone.slice(0, 100).map((i) => person(i, 'free', `S${i}`, 1)),
        ...everyone.slice(1100, 1110).map((i) => person(i, i % 4 === 0 ? 'free' : 'gold', 'Renamed', 1)),
      ]);
      const second = await h.sync(def);
      // People 0..99 held 75 gold members; people 1100..1109 hold 7 gold ones (every 4th is free).
      expect(second.counts).toMatchObject({ read: 825, removed: 75, imported: 7, unchanged: 818 });
      expect(h.emu.state.listMembers(first.list_id!)).toHaveLength(825);
    });
  });
});

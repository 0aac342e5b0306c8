// Consent modes against the sandbox: subscribe only what is new or re-identified, double opt-in, historical
// import, never_subscribed, and the unsubscribe guard (never for members not confirmed on the list).
import { describe, it, expect } from 'vitest';
import { onEachBackend, people, PRIVATE_KEY, type Harness } from './harness.js';

let h: Harness;

const def = (extra: Record<string, unknown> = {}) => ({
  name: 'consent',
  source: { type: 'file', path: 'members.csv' },
  list: { create: 'Newsletter', optInProcess: 'single_opt_in' },
  mapping: [{ from: 'id', to: 'external_id' }, { from: 'email', to: 'email' }, { from: 'phone', to: 'phone_number' }, { from: 'first_name', to: 'first_name' }],
  ...extra,
});
const consentOf = (email: string, channel: 'email' | 'sms' = 'email') => h.profileByEmail(email)!.subscriptions[channel].marketing.consent;
const subscribedEmails = () => h.calls('bulk_subscribe_profiles').flatMap((r: any) => r.body.data.attributes.profiles.data.map((p: any) => p.attributes.email));
const flush = async () => {
  // Subscription jobs are asynchronous in Klaviyo (and the sandbox): complete the queued ones now.
  h.emu.state.flushJobs();
};

async function klaviyoPost(path: string, body: unknown) {
  const res = await fetch(h.emu.url + path, {
    method: 'POST',
    headers: { Authorization: `Klaviyo-API-Key ${PRIVATE_KEY}`, revision: '2026-07-15', 'content-type': 'application/vnd.api+json', accept: 'application/vnd.api+json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBeLessThan(300);
}

onEachBackend({}, (harness) => (h = harness), () => {
  describe('consent: subscribed', () => {
    it('subscribes new members on the selected channels with the list, once; never re-subscribes someone who unsubscribed', async () => {
      const rows = people(0, 12, (i) => ({ phone: i < 3 ? `+1415555267${i}` : '' }));
      h.writeCsv('members.csv', rows);
      const first = await h.sync(def({ consent: 'subscribed', subscription: ['email', 'sms'] }));
      await flush();
      expect(first.status).toBe('success');
      expect(first.counts).toMatchObject({ imported: 12, subscribed: 12 });
      const [job] = h.calls('bulk_subscribe_profiles') as any[];
      expect(job.body.data.relationships.list.data.id).toBe(first.list_id);
      const withPhone = job.body.data.attributes.profiles.data.find((p: any) => p.attributes.email === 'person0@example.com');
      expect(Object.keys(withPhone.attributes.subscriptions).sort()).toEqual(['email', 'sms']);
      const emailOnly = job.body.data.attributes.profiles.data.find((p: any) => p.attributes.email === 'person5@example.com');
      expect(Object.keys(emailOnly.attributes.subscriptions)).toEqual(['email']);
      expect(consentOf('person5@example.com')).toBe('SUBSCRIBED');
      expect(consentOf('person0@example.com', 'sms')).toBe('SUBSCRIBED');

      // An unchanged rerun makes no subscription call.
      await h.sync(def({ consent: 'subscribed', subscription: ['email', 'sms'] }));
      expect(h.calls('bulk_subscribe_profiles')).toHaveLength(1);

      // person4 unsubscribes in Klaviyo; their name changes in the source; person6 changes email.
      await klaviyoPost('/api/profile-subscription-bulk-delete-jobs', {
        data: { type: 'profile-subscription-bulk-delete-job', attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'person4@example.com', subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } }] } } },
      });
      await flush();
      expect(consentOf('person4@example.com')).toBe('UNSUBSCRIBED');
      rows[4].first_name = 'Renamed';
      rows[6].email = 'new6@example.com';
      h.writeCsv('members.csv', rows);
      const third = await h.sync(def({ consent: 'subscribed', subscription: ['email', 'sms'] }));
      await flush();
      expect(third.counts).toMatchObject({ imported: 2, subscribed: 1 });
      expect(subscribedEmails().filter((e) => e === 'person4@example.com')).toHaveLength(1); // only the first run
      expect(subscribedEmails()).toContain('new6@example.com');
      expect(consentOf('person4@example.com')).toBe('UNSUBSCRIBED');
      expect(h.profileByEmail('person4@example.com')!.first_name).toBe('Renamed');
    });

    it('a member who left, unsubscribed in Klaviyo and came back rejoins the list but is not subscribed again', async () => {
      const d = def({ consent: 'subscribed' });
      h.writeCsv('members.csv', people(0, 5));
      await h.sync(d);
      await flush();
      h.writeCsv('members.csv', people(0, 4));
      const left = await h.sync(d);
      expect(left.counts.removed).toBe(1);
      await klaviyoPost('/api/profile-subscription-bulk-delete-jobs', {
        data: { type: 'profile-subscription-bulk-delete-job', attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'person4@example.com', subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } }] } } },
      });
      await flush();
      h.writeCsv('members.csv', people(0, 5));
      const back = await h.sync(d);
      await flush();
      expect(back.counts).toMatchObject({ imported: 1, unchanged: 4, subscribed: 0 });
      expect(h.emu.state.listMembers(back.list_id!).map((p) => p.email)).toContain('person4@example.com');
      expect(consentOf('person4@example.com')).toBe('UNSUBSCRIBED');
      expect(subscribedEmails().filter((e) => e === 'person4@example.com')).toHaveLength(1);
    });

    it('double opt-in lists leave new members pending until they confirm', async () => {
      h.writeCsv('members.csv', people(0, 4));
      const log = await h.sync(def({ consent: 'subscribed', list: { create: 'Double', optInProcess: 'double_opt_in' } }));
      await flush();
      expect(log.counts.subscribed).toBe(4);
      const list = h.emu.state.lists().find((l) => l.name === 'Double')!;
      expect(list.opt_in_process).toBe('double_opt_in');
      const ada = h.profileByEmail('person0@example.com')!;
      expect(consentOf('person0@example.com')).not.toBe('SUBSCRIBED');
      expect(list.pendingProfileIds).toContain(ada.id);
      expect(h.emu.state.confirmOptIn(ada.id, list.id)).toBe(true);
      expect(consentOf('person0@example.com')).toBe('SUBSCRIBED');
      expect((h.calls('bulk_subscribe_profiles')[0].body as any).data.attributes.historical_import).toBeUndefined();
    });

    it('consentedAtField makes a historical import: subscribed at once on a double opt-in list, stamped with the consent time', async () => {
      h.writeCsv('members.csv', people(0, 3, (i) => ({ opted_in: i < 2 ? '2024-03-01T09:00:00Z' : '' })));
      const log = await h.sync(def({ consent: 'subscribed', consentedAtField: 'opted_in', list: { create: 'Double', optInProcess: 'double_opt_in' } }));
      await flush();
      expect(log.counts.subscribed).toBe(3);
      const jobs = h.calls('bulk_subscribe_profiles') as any[];
      expect(jobs).toHaveLength(2);
      const historical = jobs.find((j) => j.body.data.attributes.historical_import === true);
      expect(historical.body.data.attributes.profiles.data.map((p: any) => p.attributes.subscriptions.email.marketing.consented_at)).toEqual(['2024-03-01T09:00:00.000Z', '2024-03-01T09:00:00.000Z']);
      expect(consentOf('person0@example.com')).toBe('SUBSCRIBED');
      expect(consentOf('person2@example.com')).not.toBe('SUBSCRIBED'); // no consent time: the normal double opt-in
    });
  });

  describe('consent: never_subscribed', () => {
    it('adds members to the list without any subscription call', async () => {
      h.writeCsv('members.csv', people(0, 5));
      const log = await h.sync(def({ consent: 'never_subscribed' }));
      await flush();
      expect(log.counts).toMatchObject({ imported: 5, subscribed: 0, unsubscribed: 0 });
      expect(h.calls('bulk_subscribe_profiles')).toHaveLength(0);
      expect(h.calls('bulk_unsubscribe_profiles')).toHaveLength(0);
      expect(h.emu.state.listMembers(log.list_id!)).toHaveLength(5);
      expect(consentOf('person1@example.com')).toBe('NEVER_SUBSCRIBED');
    });
  });

  describe('consent: unsubscribed', () => {
    it('unsubscribes only members Klaviyo confirmed on the list, in jobs of at most 100, and never globally', async () => {
      h.env.tuning = { ...h.env.tuning, maxProfilesPerJob: 100 };
      h.writeCsv('members.csv', people(0, 250));
      // The first import job is rejected: its 100 members never reach the list, so they must not be unsubscribed.
      h.emu.faults.add({ method: 'POST', path: '/api/profile-bulk-import-jobs', status: 400, count: 1 });
      const log = await h.sync(def({ consent: 'unsubscribed' }));
      await flush();
      expect(log.status).toBe('partial');
      expect(log.counts).toMatchObject({ imported: 150, failed: 100, unsubscribed: 150 });
      expect(log.errors.filter((e) => e.stage === 'import')).toHaveLength(100);

      const jobs = h.calls('bulk_unsubscribe_profiles') as any[];
      expect(jobs.length).toBe(2);
      for (const j of jobs) {
        expect(j.body.data.attributes.profiles.data.length).toBeLessThanOrEqual(100);
        expect(j.body.data.relationships.list.data.id).toBe(log.list_id);
      }
      const unsubscribed = new Set(jobs.flatMap((j) => j.body.data.attributes.profiles.data.map((p: any) => p.attributes.email)));
      for (let i = 0; i < 100; i++) expect(unsubscribed.has(`person${i}@example.com`)).toBe(false);
      expect(unsubscribed.size).toBe(150);
      expect(h.emu.state.profiles().filter((p) => p.globalUnsubscribe)).toEqual([]);
      // No removal call: the list-level unsubscribe itself took them off the list.
      expect(h.calls('remove_profiles_from_list')).toHaveLength(0);

      // The next run imports the 100 that failed, then unsubscribes them too; the 150 are not sent again.
      const again = await h.sync(def({ consent: 'unsubscribed' }));
      await flush();
      expect(again.status).toBe('success');
      expect(again.counts).toMatchObject({ imported: 100, unchanged: 150, unsubscribed: 100 });
      expect(h.emu.state.profiles().filter((p) => p.globalUnsubscribe)).toEqual([]);
    });

    // A bulk unsubscribe with a list is a list-level unsubscribe: Klaviyo takes the profile off that list and leaves
    // its consent elsewhere; without a list it unsubscribes the channels account-wide.
    // https://developers.klaviyo.com/en/reference/bulk_unsubscribe_profiles
    it("unsubscribeFrom 'list' (the default) takes members off this list only; their consent elsewhere stands", async () => {
      h.writeCsv('members.csv', people(0, 6));
      const news = await h.sync(def({ name: 'newsletter', list: { create: 'Newsletter', optInProcess: 'single_opt_in' }, consent: 'subscribed' }));
      await flush();
      expect(consentOf('person0@example.com')).toBe('SUBSCRIBED');

      const log = await h.sync(def({ name: 'vip-out', list: { create: 'VIP', optInProcess: 'single_opt_in' }, consent: 'unsubscribed' }));
      await flush();
      expect(log).toMatchObject({ status: 'success', counts: { imported: 6, unsubscribed: 6 } });
      const [job] = h.calls('bulk_unsubscribe_profiles') as any[];
      expect(job.body.data.relationships.list.data.id).toBe(log.list_id);
      expect(h.emu.state.listMembers(log.list_id!)).toEqual([]);
      expect(h.emu.state.listMembers(news.list_id!)).toHaveLength(6);
      expect(consentOf('person0@example.com')).toBe('SUBSCRIBED');
      expect(h.emu.state.profiles().filter((p) => p.globalUnsubscribe)).toEqual([]);
    });

    it('a rerun of an unchanged list-unsubscribed audience writes nothing to Klaviyo, and members who leave are only forgotten', async () => {
      const d = def({ consent: 'unsubscribed', unsubscribeFrom: 'list' });
      h.writeCsv('members.csv', people(0, 6));
      await h.sync(d);
      await flush();
      const before = h.emu.requests.length;
      const again = await h.sync(d);
      expect(again).toMatchObject({ status: 'success', counts: { unchanged: 6, imported: 0, unsubscribed: 0, removed: 0 } });
      expect(h.emu.requests.slice(before).filter((r) => r.method !== 'GET')).toEqual([]);

      h.writeCsv('members.csv', people(0, 4));
      const after = h.emu.requests.length;
      const shrunk = await h.sync(d);
      expect(shrunk).toMatchObject({ status: 'success', counts: { unchanged: 4, removed: 0 } });
      expect(h.emu.requests.slice(after).filter((r) => r.method !== 'GET')).toEqual([]);

      // A member whose data changes is imported (back onto the list) and unsubscribed from it again.
      const rows = people(0, 4);
      rows[1]!.first_name = 'Renamed';
      h.writeCsv('members.csv', rows);
      const changed = await h.sync(d);
      await flush();
      expect(changed.counts).toMatchObject({ imported: 1, unsubscribed: 1 });
      expect(h.emu.state.listMembers(changed.list_id!)).toEqual([]);
      expect(h.emu.state.profiles().filter((p) => p.globalUnsubscribe)).toEqual([]);
    });

    it("unsubscribeFrom 'all' unsubscribes the chosen channels account-wide, without a list", async () => {
      h.writeCsv('members.csv', people(0, 3));
      const log = await h.sync(def({ consent: 'unsubscribed', unsubscribeFrom: 'all' }));
      await flush();
      expect(log.counts).toMatchObject({ imported: 3, unsubscribed: 3 });
      const [job] = h.calls('bulk_unsubscribe_profiles') as any[];
      expect(job.body.data.relationships).toBeUndefined();
      expect(consentOf('person1@example.com')).toBe('UNSUBSCRIBED');
      expect(h.emu.state.profiles().filter((p) => p.globalUnsubscribe)).toHaveLength(3);
    });
  });

  describe('consent settings changed on an existing audience', () => {
    it('re-applies consent to every current member at the next run, without importing them again', async () => {
      h.writeCsv('members.csv', people(0, 5));
      await h.sync(def({ consent: 'never_subscribed' }));
      const subscribed = await h.sync(def({ consent: 'subscribed' }));
      await flush();
      expect(subscribed.counts).toMatchObject({ unchanged: 5, imported: 0, subscribed: 5 });
      expect(consentOf('person3@example.com')).toBe('SUBSCRIBED');
      // Settled: the next run with the same settings calls nothing.
      const same = await h.sync(def({ consent: 'subscribed' }));
      expect(same.counts.subscribed).toBe(0);

      const allOut = await h.sync(def({ consent: 'unsubscribed', unsubscribeFrom: 'all' }));
      await flush();
      expect(allOut.counts).toMatchObject({ unchanged: 5, unsubscribed: 5 });
      expect(consentOf('person3@example.com')).toBe('UNSUBSCRIBED');
      expect((h.calls('bulk_unsubscribe_profiles').at(-1)!.body as any).data.relationships).toBeUndefined();
    });

    it('members a list-level unsubscribe took off the list are put back on it before new list-scoped consent', async () => {
      const rows = people(0, 3, (i) => ({ phone: `+1415555267${i}` }));
      h.writeCsv('members.csv', rows);
      const first = await h.sync(def({ consent: 'unsubscribed' }));
      await flush();
      expect(h.emu.state.listMembers(first.list_id!)).toEqual([]);
      // Adding SMS changes the settings: each member is imported onto the list again, then unsubscribed from it on both channels.
      const both = await h.sync(def({ consent: 'unsubscribed', subscription: ['email', 'sms'] }));
      await flush();
      expect(both.counts).toMatchObject({ imported: 3, unsubscribed: 3 });
      const job = h.calls('bulk_unsubscribe_profiles').at(-1)!.body as any;
      expect(job.data.relationships.list.data.id).toBe(first.list_id);
      expect(Object.keys(job.data.attributes.profiles.data[0].attributes.subscriptions).sort()).toEqual(['email', 'sms']);
      expect(h.emu.state.listMembers(first.list_id!)).toEqual([]);
      expect(h.emu.state.profiles().filter((p) => p.globalUnsubscribe)).toEqual([]);
    });

    it('a dry run counts the consent calls the new settings would make', async () => {
      h.writeCsv('members.csv', people(0, 4));
      await h.sync(def({ consent: 'never_subscribed' }));
      const plan = await h.dry(def({ consent: 'subscribed' }));
      expect(plan.counts).toMatchObject({ unchanged: 4, subscribed: 4 });
      expect(plan.plan!.requests.subscribeJobs).toBe(1);
    });
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { call, start } from './helpers.js';
import { waitFor } from '../support/wait-for.js';

let em: Emulator;
beforeAll(async () => {
  em = await start({ rateLimits: false });
});
afterAll(() => em.close());
beforeEach(() => em.reset());

const createList = async (name: string, opt_in_process?: 'single_opt_in' | 'double_opt_in') =>
  (await call(em, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name, ...(opt_in_process ? { opt_in_process } : {}) } } } })).json.data.id as string;

const subscribeJob = (emails: string[], listId?: string, extra: Record<string, unknown> = {}, consented_at?: string) => ({
  data: {
    type: 'profile-subscription-bulk-create-job',
    attributes: {
      profiles: { data: emails.map((email) => ({ type: 'profile', attributes: { email, subscriptions: { email: { marketing: { consent: 'SUBSCRIBED', ...(consented_at ? { consented_at } : {}) } } } } })) },
      ...extra,
    },
    ...(listId ? { relationships: { list: { data: { type: 'list', id: listId } } } } : {}),
  },
});

const unsubscribeJob = (emails: string[], listId?: string) => ({
  data: {
    type: 'profile-subscription-bulk-delete-job',
    attributes: { profiles: { data: emails.map((email) => ({ type: 'profile', attributes: { email, subscriptions: { email: { marketing: { consent: 'UNSUBSCRIBED' } } } } })) } },
    ...(listId ? { relationships: { list: { data: { type: 'list', id: listId } } } } : {}),
  },
});

const consentOf = (email: string) => em.state.profiles().find((p) => p.email === email)?.subscriptions.email.marketing.consent;
const jobsDone = () => em.state.jobs().every((j) => j.status === 'complete');

describe('bulk subscribe', () => {
  it('subscribes at once on a single opt-in list', async () => {
    const list = await createList('Newsletter', 'single_opt_in');
    expect((await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['a@b.co', 'c@d.co'], list) })).status).toBe(202);
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect(consentOf('a@b.co')).toBe('SUBSCRIBED');
    expect(em.state.listMembers(list).map((p) => p.email)).toEqual(['a@b.co', 'c@d.co']);
  });

  it('records a pending confirmation on a double opt-in list, unless historical_import', async () => {
    const list = await createList('VIP');
    await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['a@b.co'], list) });
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect(consentOf('a@b.co')).toBe('NEVER_SUBSCRIBED');
    const view = em.state.lists().find((l) => l.id === list)!;
    expect(view.profileIds).toEqual([]);
    expect(view.pendingProfileIds).toHaveLength(1);
    expect(em.state.profiles()[0].pendingOptIns).toMatchObject([{ listId: list, channel: 'email' }]);

    const res = await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['h@b.co'], list, { historical_import: true }, '2025-01-01T00:00:00Z') });
    expect(res.status).toBe(202);
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect(consentOf('h@b.co')).toBe('SUBSCRIBED');
    expect(em.state.listMembers(list).map((p) => p.email)).toEqual(['h@b.co']);
  });

  it('requires consented_at in the past for a historical import', async () => {
    const list = await createList('VIP');
    const missing = await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['a@b.co'], list, { historical_import: true }) });
    expect(missing.status).toBe(400);
    expect(missing.json.errors[0].source.pointer).toBe('/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at');
    const future = await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['a@b.co'], list, { historical_import: true }, '2999-01-01T00:00:00Z') });
    expect(future.status).toBe(400);
  });

  it('rejects a wrong consent enum and more than 1,000 profiles', async () => {
    const wrong = subscribeJob(['a@b.co']) as any;
    wrong.data.attributes.profiles.data[0].attributes.subscriptions.email.marketing.consent = 'UNSUBSCRIBED';
    const res = await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: wrong });
    expect(res.status).toBe(400);
    expect(res.json.errors[0].source.pointer).toBe('/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consent');
    const many = Array.from({ length: 1001 }, (_, i) => `p${i}@b.co`);
    expect((await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(many) })).status).toBe(400);
  });
});

describe('bulk unsubscribe', () => {
  it('removes a member from the named list only, keeping global consent', async () => {
    const a = await createList('A', 'single_opt_in');
    const b = await createList('B', 'single_opt_in');
    await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['m@b.co'], a) });
    await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['m@b.co'], b) });
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect((await call(em, 'POST', '/api/profile-subscription-bulk-delete-jobs', { body: unsubscribeJob(['m@b.co'], a) })).status).toBe(202);
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect(em.state.listMembers(a)).toHaveLength(0);
    expect(em.state.listMembers(b).map((p) => p.email)).toEqual(['m@b.co']);
    expect(consentOf('m@b.co')).toBe('SUBSCRIBED');
    expect(em.state.lists().find((l) => l.id === a)!.unsubscribedProfileIds).toHaveLength(1);
  });

  it('unsubscribes GLOBALLY a profile that is not on the named list, and shows it', async () => {
    const a = await createList('A', 'single_opt_in');
    const other = await createList('Other', 'single_opt_in');
    await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: subscribeJob(['g@b.co'], other) });
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    await call(em, 'POST', '/api/profile-subscription-bulk-delete-jobs', { body: unsubscribeJob(['g@b.co'], a) });
    await waitFor(jobsDone, { what: 'the bulk jobs to complete' });
    expect(consentOf('g@b.co')).toBe('UNSUBSCRIBED');
    const profile = em.state.profiles().find((p) => p.email === 'g@b.co')!;
    expect(profile.globalUnsubscribe).toMatchObject({ channels: ['email'] });
    expect((profile.globalUnsubscribe as any).reason).toContain('not on');
    const job = em.internals.state.jobs.all().find((j) => j.type === 'profile-subscription-bulk-delete-job')!;
    expect(job.notes[0]).toContain('GLOBALLY');
    const admin = await (await fetch(`${em.url}/__admin/state`)).json();
    const otherView = admin.lists.find((l: any) => l.id === other);
    expect(otherView.members[0]).toMatchObject({ email: 'g@b.co', consent: { email: 'UNSUBSCRIBED' } });
    const html = await (await fetch(`${em.url}/`)).text();
    expect(html).toContain('globally unsubscribed');
  });

  it('refuses more than 100 profiles per unsubscribe job', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `p${i}@b.co`);
    const res = await call(em, 'POST', '/api/profile-subscription-bulk-delete-jobs', { body: unsubscribeJob(many) });
    expect(res.status).toBe(400);
    expect(res.json.errors[0].detail).toContain('100');
  });
});

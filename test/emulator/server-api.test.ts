import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { eventBody, eventBulkJobBody, bulkEntry, profileImportBody } from '../../src/shared/klaviyo-payloads.js';
import type { RelayEvent } from '../../src/shared/wire.js';
import { call, start } from './helpers.js';
import { waitFor } from '../support/wait-for.js';

let em: Emulator;
beforeAll(async () => {
  em = await start({ rateLimits: false });
});
afterAll(() => em.close());
beforeEach(() => em.reset());

const relayEvent = (name: string, email: string, unique_id: string): RelayEvent => ({
  name, properties: { total: 10 }, time: '2026-11-28T10:00:00.000Z', value: 10, unique_id, route: 'server', profile: { email, external_id: `ext-${email}` },
});

describe('auth on /api/*', () => {
  it('401 without a key, 401 for another scheme, 403 for a wrong key', async () => {
    const body = eventBody(relayEvent('Placed Order', 'a@b.co', 'o1'));
    const none = await call(em, 'POST', '/api/events', { body, headers: { authorization: undefined } });
    expect(none.status).toBe(401);
    expect(none.json.errors[0].code).toBe('not_authenticated');
    expect((await call(em, 'POST', '/api/events', { body, headers: { authorization: 'Bearer abc' } })).status).toBe(401);
    const wrong = await call(em, 'POST', '/api/events', { body, headers: { authorization: 'Klaviyo-API-Key pk_wrongwrongwrongwrongwrong' } });
    expect(wrong.status).toBe(403);
    expect(JSON.stringify(wrong.json)).not.toContain('pk_wrong');
  });

  // A key created with a scope is refused, 403 permission_denied, on operations needing another scope:
  // https://developers.klaviyo.com/en/docs/authenticate_ ; full (write) access includes read:
  // https://help.klaviyo.com/hc/en-us/articles/7423954176283
  it('403 permission_denied on an operation whose scope the key lacks, and only there; new scopes apply at once', async () => {
    const scoped = await start({ rateLimits: false, privateKeyScopes: ['accounts:read', 'events:write'] });
    try {
      expect((await call(scoped, 'POST', '/api/events', { body: eventBody(relayEvent('Placed Order', 'a@b.co', 'o1')) })).status).toBe(202);
      expect((await call(scoped, 'GET', '/api/accounts')).status).toBe(200);
      const refused = await call(scoped, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'a@b.co' }) });
      expect(refused.status).toBe(403);
      expect(refused.json.errors[0]).toMatchObject({ status: 403, code: 'permission_denied', detail: 'You do not have permission to perform this action.', source: { pointer: '/data/' } });
      expect((await call(scoped, 'GET', '/api/profiles')).status).toBe(403);
      expect(scoped.state.profiles()).toHaveLength(1); // the event's profile only: the import changed nothing

      scoped.setPrivateKeyScopes(['accounts:read', 'events:write', 'profiles:write']);
      expect((await call(scoped, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'a@b.co', first_name: 'Ada' }) })).status).toBe(200);
      expect((await call(scoped, 'GET', '/api/profiles')).status).toBe(200); // profiles:write includes profiles:read
      expect((await call(scoped, 'GET', '/api/metrics')).status).toBe(403);
      scoped.setPrivateKeyScopes(undefined);
      expect((await call(scoped, 'GET', '/api/metrics')).status).toBe(200);
    } finally {
      await scoped.close();
    }
  });

  it('with no key configured accepts any well-formed private key only', async () => {
    const open = await start({ privateKey: undefined, publicKey: undefined, rateLimits: false });
    try {
      const body = eventBody(relayEvent('Placed Order', 'a@b.co', 'o1'));
      expect((await call(open, 'POST', '/api/events', { body, headers: { authorization: 'Klaviyo-API-Key pk_abcdefghijklmnopqrstuvwxyz' } })).status).toBe(202);
      expect((await call(open, 'POST', '/api/events', { body, headers: { authorization: 'Klaviyo-API-Key pk_short' } })).status).toBe(403);
      expect((await call(open, 'POST', '/client/events', { body, query: { company_id: 'Zz9Yy8' } })).status).toBe(202);
      expect((await call(open, 'POST', '/client/events', { body, query: { company_id: 'TOOLONG7' } })).status).toBe(403);
    } finally {
      await open.close();
    }
  });
});

describe('events', () => {
  it('POST /api/events stores a server event', async () => {
    const res = await call(em, 'POST', '/api/events', { body: eventBody(relayEvent('Placed Order', 'a@b.co', 'o1')) });
    expect(res.status).toBe(202);
    expect(em.state.events()[0]).toMatchObject({ metric: 'Placed Order', value: 10, unique_id: 'o1', source: 'server' });
  });

  it('POST /api/event-bulk-create-jobs: events appear once the job completes; over 1,000 events is refused', async () => {
    const entries = [bulkEntry({ email: 'a@b.co' }, [relayEvent('Viewed', 'a@b.co', 'v1'), relayEvent('Viewed', 'a@b.co', 'v2')]), bulkEntry({ email: 'c@d.co' }, [relayEvent('Viewed', 'c@d.co', 'v3')])];
    const res = await call(em, 'POST', '/api/event-bulk-create-jobs', { body: eventBulkJobBody(entries) });
    expect(res.status).toBe(202);
    expect(em.state.events()).toHaveLength(0);
    await waitFor(() => em.state.events().length === 3, { what: 'three events stored' });
    expect(new Set(em.state.events().map((e) => e.profileId)).size).toBe(2);

    const many = Array.from({ length: 1001 }, (_, i) => relayEvent('Viewed', 'a@b.co', `m${i}`));
    const over = await call(em, 'POST', '/api/event-bulk-create-jobs', { body: eventBulkJobBody([bulkEntry({ email: 'a@b.co' }, many)]) });
    expect(over.status).toBe(400);
    expect(over.json.errors[0].detail).toContain('1000');
  });
});

describe('POST /api/profile-import', () => {
  it('creates (201) then updates (200), returning the profile', async () => {
    const created = await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'a@b.co', external_id: 'c-1', first_name: 'Ada' }) });
    expect(created.status).toBe(201);
    expect(created.json.data).toMatchObject({ type: 'profile', attributes: { email: 'a@b.co', external_id: 'c-1', first_name: 'Ada' } });
    const updated = await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ external_id: 'c-1', last_name: 'Lovelace' }) });
    expect(updated.status).toBe(200);
    expect(updated.json.data.id).toBe(created.json.data.id);
    expect(updated.json.data.attributes).toMatchObject({ first_name: 'Ada', last_name: 'Lovelace' });
  });

  it('answers 409 duplicate_profile with meta.duplicate_profile_id when identifiers belong to different profiles', async () => {
    const a = await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'a@b.co' }) });
    const b = await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ external_id: 'c-2' }) });
    const res = await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ external_id: 'c-2', email: 'a@b.co' }) });
    expect(res.status).toBe(409);
    expect(res.json.errors[0].code).toBe('duplicate_profile');
    expect([a.json.data.id, b.json.data.id]).toContain(res.json.errors[0].meta.duplicate_profile_id);
    expect(res.json.errors[0].meta.duplicate_profile_id).toBe(a.json.data.id);
  });
});

describe('lists', () => {
  const createList = async (name: string, opt_in_process?: string) =>
    (await call(em, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name, ...(opt_in_process ? { opt_in_process } : {}) } } } })).json.data;

  it('creates lists (double opt-in by default) and gets one by id', async () => {
    const list = await createList('VIP');
    expect(list).toMatchObject({ type: 'list', attributes: { name: 'VIP', opt_in_process: 'double_opt_in' } });
    const got = await call(em, 'GET', `/api/lists/${list.id}`, { query: { 'additional-fields[list]': 'profile_count' } });
    expect(got.json.data.attributes).toMatchObject({ name: 'VIP', profile_count: 0 });
    expect((await call(em, 'GET', '/api/lists/NOPE00')).status).toBe(404);
  });

  it('rejects a wrong opt_in_process enum', async () => {
    const res = await call(em, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name: 'X', opt_in_process: 'triple' } } } });
    expect(res.status).toBe(400);
    expect(res.json.errors[0].source.pointer).toBe('/data/attributes/opt_in_process');
  });

  it('filters by name, pages with page[size] ≤ 10 and cursors', async () => {
    for (let i = 0; i < 12; i++) await createList(`List ${i}`);
    await createList('Winners "2026"');
    const found = await call(em, 'GET', '/api/lists', { query: { filter: 'equals(name,"List 3")' } });
    expect(found.json.data.map((l: any) => l.attributes.name)).toEqual(['List 3']);
    const quoted = await call(em, 'GET', '/api/lists', { query: { filter: 'equals(name,"Winners \\"2026\\"")' } });
    expect(quoted.json.data).toHaveLength(1);
    const names: string[] = [];
    let res = await call(em, 'GET', '/api/lists', { query: { 'page[size]': '5' } });
    for (;;) {
      names.push(...res.json.data.map((l: any) => l.attributes.name));
      if (!res.json.links.next) break;
      res = await call(em, 'GET', res.json.links.next.slice(em.url.length));
    }
    expect(names).toHaveLength(13);
    expect(new Set(names).size).toBe(13);
    const big = await call(em, 'GET', '/api/lists', { query: { 'page[size]': '11' } });
    expect(big.status).toBe(400);
    expect(big.json.errors[0].source).toEqual({ parameter: 'page[size]' });
  });

  it('rejects a bad filter: unknown field, disallowed operator, bad syntax', async () => {
    for (const filter of ['equals(colour,"red")', 'greater-than(name,"a")', 'equals(name,"x"', 'equals(name,unquoted)']) {
      const res = await call(em, 'GET', '/api/lists', { query: { filter } });
      expect(res.status, filter).toBe(400);
      expect(res.json.errors[0].source).toEqual({ parameter: 'filter' });
    }
  });

  it('adds and removes members by profile id (≤ 1,000 per call) without changing consent', async () => {
    const list = await createList('Sync target', 'single_opt_in');
    const p = (await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'a@b.co' }) })).json.data;
    const q = (await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'c@d.co' }) })).json.data;
    const rel = (ids: string[]) => ({ data: ids.map((id) => ({ type: 'profile', id })) });
    expect((await call(em, 'POST', `/api/lists/${list.id}/relationships/profiles`, { body: rel([p.id, q.id]) })).status).toBe(204);
    const members = await call(em, 'GET', `/api/lists/${list.id}/profiles`, { query: { 'additional-fields[profile]': 'subscriptions' } });
    expect(members.json.data.map((m: any) => m.attributes.email)).toEqual(['a@b.co', 'c@d.co']);
    expect(members.json.data[0].attributes.subscriptions.email.marketing.consent).toBe('NEVER_SUBSCRIBED');
    expect(members.json.data[0].attributes.joined_group_at).toBeTruthy();
    const filtered = await call(em, 'GET', `/api/lists/${list.id}/profiles`, { query: { filter: 'equals(email,"C@D.co")' } });
    expect(filtered.json.data.map((m: any) => m.id)).toEqual([q.id]);
    const ids = await call(em, 'GET', `/api/lists/${list.id}/relationships/profiles`);
    expect(ids.json.data).toEqual([{ type: 'profile', id: p.id }, { type: 'profile', id: q.id }]);
    expect((await call(em, 'DELETE', `/api/lists/${list.id}/relationships/profiles`, { body: rel([p.id]) })).status).toBe(204);
    expect(em.state.listMembers(list.id).map((m) => m.email)).toEqual(['c@d.co']);
    const unknown = await call(em, 'POST', `/api/lists/${list.id}/relationships/profiles`, { body: rel(['01NOTAPROFILE']) });
    expect(unknown.status).toBe(404);
    const over = await call(em, 'POST', `/api/lists/${list.id}/relationships/profiles`, { body: rel(Array.from({ length: 1001 }, () => p.id)) });
    expect(over.status).toBe(400);
  });
});

describe('GET /api/profiles', () => {
  it('filters with equals and any on email, phone_number and external_id', async () => {
    for (const [email, phone, ext] of [['a@b.co', '+15005550001', 'x1'], ['c@d.co', '+15005550002', 'x2'], ['e@f.co', '+15005550003', 'x3']]) {
      await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ email, phone_number: phone, external_id: ext }) });
    }
    const get = async (filter: string) => (await call(em, 'GET', '/api/profiles', { query: { filter } })).json.data.map((p: any) => p.attributes.external_id).sort();
    expect(await get('equals(email,"c@d.co")')).toEqual(['x2']);
    expect(await get('any(email,["a@b.co","e@f.co"])')).toEqual(['x1', 'x3']);
    expect(await get('equals(phone_number,"+15005550003")')).toEqual(['x3']);
    expect(await get('any(external_id,["x1","x2","zzz"])')).toEqual(['x1', 'x2']);
    expect((await call(em, 'GET', '/api/profiles', { query: { filter: 'contains(email,"a")' } })).status).toBe(400);
    expect((await call(em, 'GET', '/api/profiles', { query: { 'page[size]': '101' } })).status).toBe(400);
  });
});

describe('profile bulk import jobs', () => {
  it('moves queued → complete with counts, import errors and list membership', async () => {
    const list = (await call(em, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name: 'Imported' } } } })).json.data;
    await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'taken@b.co' }) });
    await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ external_id: 'ext-taken' }) });
    const profiles = [
      { type: 'profile', attributes: { email: 'one@b.co', first_name: 'One' } },
      { type: 'profile', attributes: { email: 'bad-email' } },
      { type: 'profile', attributes: { email: 'taken@b.co', external_id: 'ext-taken' } },
      { type: 'profile', attributes: { phone_number: '+15005550009' } },
    ];
    const body = { data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: profiles } }, relationships: { lists: { data: [{ type: 'list', id: list.id }] } } } };
    const res = await call(em, 'POST', '/api/profile-bulk-import-jobs', { body });
    expect(res.status).toBe(202);
    expect(res.json.data).toMatchObject({ type: 'profile-bulk-import-job', attributes: { status: 'queued', total_count: 4 } });
    const id = res.json.data.id;
    const job = await waitFor(async () => {
      const polled = (await call(em, 'GET', `/api/profile-bulk-import-jobs/${id}`)).json.data;
      return polled.attributes.status === 'complete' && polled;
    }, { what: 'the bulk import job to complete' });
    expect(job.attributes).toMatchObject({ status: 'complete', total_count: 4, completed_count: 2, failed_count: 2 });
    const errors = (await call(em, 'GET', `/api/profile-bulk-import-jobs/${id}/import-errors`)).json.data;
    expect(errors.map((e: any) => e.attributes.source.pointer)).toEqual(['/data/attributes/profiles/data/1/attributes/email', '/data/attributes/profiles/data/2/attributes']);
    expect(errors[1].attributes.code).toBe('duplicate_profile');
    expect(errors[0].attributes.original_payload).toEqual(profiles[1]);
    expect(em.state.listMembers(list.id).map((p) => p.email ?? p.phone_number)).toEqual(['one@b.co', '+15005550009']);
    expect((await call(em, 'GET', '/api/profile-bulk-import-jobs/NOPE')).status).toBe(404);
  });

  it('refuses more than 10,000 profiles, a profile over 100 KB and an unknown list', async () => {
    const job = (profiles: unknown[], lists: unknown[] = []) => ({ data: { type: 'profile-bulk-import-job', attributes: { profiles: { data: profiles } }, relationships: { lists: { data: lists } } } });
    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ type: 'profile', attributes: { email: `p${i}@b.co` } }));
    expect((await call(em, 'POST', '/api/profile-bulk-import-jobs', { body: job(tooMany) })).status).toBe(400);
    const fat = await call(em, 'POST', '/api/profile-bulk-import-jobs', { body: job([{ type: 'profile', attributes: { email: 'a@b.co', properties: { blob: 'x'.repeat(101 * 1024) } } }]) });
    expect(fat.status).toBe(400);
    expect(fat.json.errors[0].source.pointer).toBe('/data/attributes/profiles/data/0');
    const noList = await call(em, 'POST', '/api/profile-bulk-import-jobs', { body: job([{ type: 'profile', attributes: { email: 'a@b.co' } }], [{ type: 'list', id: 'NOPE00' }]) });
    expect(noList.status).toBe(404);
  });
});

describe('sparse fieldsets', () => {
  it('returns only the requested attributes', async () => {
    await call(em, 'POST', '/api/profile-import', { body: profileImportBody({ email: 'a@b.co', external_id: 'x', first_name: 'Ada' }) });
    const res = await call(em, 'GET', '/api/profiles', { query: { 'fields[profile]': 'email,external_id' } });
    expect(res.json.data[0].attributes).toEqual({ email: 'a@b.co', external_id: 'x' });
    expect((await call(em, 'GET', '/api/profiles', { query: { 'fields[profile]': 'shoe_size' } })).status).toBe(400);
  });
});

describe('profile ids', () => {
  it('refuses an unknown profile id at request time, before any job is queued', async () => {
    const entry = bulkEntry({ email: 'a@b.co' }, [relayEvent('Viewed', 'a@b.co', 'z1')]) as any;
    entry.attributes.profile.data.id = '01UNKNOWNPROFILE000000000';
    const res = await call(em, 'POST', '/api/event-bulk-create-jobs', { body: eventBulkJobBody([entry]) });
    expect(res.status).toBe(404);
    expect(res.json.errors[0].source.pointer).toBe('/data/attributes/events-bulk-create/data/0/attributes/profile/data/id');
    expect(em.internals.state.jobs.all()).toHaveLength(0);
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runEmulator } from '../../src/emulator/cli.js';
import { call, clientEvent, start } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'emulator-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('JSON snapshot', () => {
  it('saves the state on close and loads it at the next start', async () => {
    const file = join(dir, 'state.json');
    const first = await start({ snapshotFile: file, rateLimits: false });
    await call(first, 'POST', '/client/events', { body: clientEvent('Viewed Product', { email: 'a@b.co' }, { unique_id: 'u1' }) });
    const list = (await call(first, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name: 'Kept', opt_in_process: 'single_opt_in' } } } })).json.data;
    const profileId = first.state.profiles()[0].id;
    await call(first, 'POST', `/api/lists/${list.id}/relationships/profiles`, { body: { data: [{ type: 'profile', id: profileId }] } });
    await first.close();
    expect(JSON.parse(readFileSync(file, 'utf8')).version).toBe(1);

    const second = await start({ snapshotFile: file, rateLimits: false });
    try {
      expect(second.state.events()).toHaveLength(1);
      expect(second.state.listMembers(list.id).map((p) => p.email)).toEqual(['a@b.co']);
      // Indexes and dedup are rebuilt: the same unique_id is still a duplicate, the email still resolves.
      await call(second, 'POST', '/client/events', { body: clientEvent('Viewed Product', { email: 'A@b.co' }, { unique_id: 'u1' }) });
      expect(second.state.events()).toHaveLength(1);
      expect(second.state.profiles()).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it('refuses a corrupt snapshot with a clear message', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{nope');
    await expect(start({ snapshotFile: file })).rejects.toThrow(/not valid JSON/);
  });
});

describe('admin extras', () => {
  it('confirms a pending double opt-in and flushes queued jobs over HTTP', async () => {
    const em = await start({ rateLimits: false, jobDelayMs: 60_000 });
    try {
      const list = (await call(em, 'POST', '/api/lists', { body: { data: { type: 'list', attributes: { name: 'VIP' } } } })).json.data;
      const job = { data: { type: 'profile-subscription-bulk-create-job', attributes: { profiles: { data: [{ type: 'profile', attributes: { email: 'a@b.co', subscriptions: { email: { marketing: { consent: 'SUBSCRIBED' } } } } }] } }, relationships: { list: { data: { type: 'list', id: list.id } } } } };
      await call(em, 'POST', '/api/profile-subscription-bulk-create-jobs', { body: job });
      expect(em.state.profiles()).toHaveLength(0);
      const flushed = await (await fetch(`${em.url}/__admin/jobs/flush`, { method: 'POST' })).json();
      expect(flushed.jobs[0].status).toBe('complete');
      const profileId = em.state.profiles()[0].id;
      const html = await (await fetch(`${em.url}/`)).text();
      expect(html).toContain('Pending double opt-in');
      const confirm = await fetch(`${em.url}/__admin/confirm-opt-in`, { method: 'POST', body: JSON.stringify({ profileId, listId: list.id }) });
      expect(confirm.status).toBe(200);
      expect(em.state.listMembers(list.id).map((p) => p.subscriptions.email.marketing.consent)).toEqual(['SUBSCRIBED']);
      const again = await fetch(`${em.url}/__admin/confirm-opt-in`, { method: 'POST', body: JSON.stringify({ profileId, listId: list.id }) });
      expect(again.status).toBe(409);
    } finally {
      await em.close();
    }
  });

  it('answers 501 for a real Klaviyo endpoint it does not emulate, naming it', async () => {
    const em = await start({ rateLimits: false });
    try {
      const res = await call(em, 'GET', '/api/campaigns');
      expect(res.status).toBe(501);
      expect(res.json.errors[0].detail).toContain('get_campaigns');
    } finally {
      await em.close();
    }
  });
});

describe('rate limits refill', () => {
  it('recovers after Retry-After', async () => {
    let now = Date.UTC(2026, 10, 28, 10, 0, 0, 300);
    const em = await start({ clock: () => now });
    try {
      const body = (i: number) => ({ data: { type: 'list', attributes: { name: `L${i}` } } });
      // create_list allows a burst of 10/s: of 20 in one second, 10 get through.
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => call(em, 'POST', '/api/lists', { body: body(i) }).then((r) => r.status)));
      expect(statuses.filter((s) => s === 201).length).toBe(10);
      expect(statuses.filter((s) => s === 429).length).toBe(10);
      expect(em.requests.find((r) => r.status === 429)!.error).toContain('throttled');
      now += 1000;
      expect((await call(em, 'POST', '/api/lists', { body: body(99) })).status).toBe(201);
    } finally {
      await em.close();
    }
  });
});

describe('klaviyo-relay emulator CLI', () => {
  it('rejects bad flags with a non-zero exit and usage', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await runEmulator(['--port', 'abc'])).toBe(1);
      expect(await runEmulator(['--bogus'])).toBe(1);
      expect(await runEmulator(['--job-delay', '-5'])).toBe(1);
      expect(err.mock.calls.flat().join('\n')).toMatch(/--port|Unknown option/);
    } finally {
      err.mockRestore();
    }
  });

  it('prints help with exit 0', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await runEmulator(['--help'])).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toContain('--snapshot');
    } finally {
      log.mockRestore();
    }
  });
});

// The admin audience routes on the real companion server (createServer), over HTTP, syncing into the sandbox.
// Segment members come from events posted to the server's own intake, so this covers intake → segment → list.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type RelayServer, type RelayConfigInput } from '../../src/server/index.js';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { PRIVATE_KEY } from './harness.js';
import { waitFor } from '../support/wait-for.js';

const TOKEN = 'admin-token-for-tests';
let emu: Emulator;
let server: RelayServer;
let url: string;
let dir: string;

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${url}/v1/admin${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers } });

const segmentDef = {
  name: 'shoe-lovers',
  source: { type: 'segment', rules: { all: [{ event: 'Viewed Product', count: { gte: 2 }, within: '7d', where: { Category: { eq: 'Shoes' } } }, { not: { event: 'Placed Order', within: '30d' } }] } },
  list: { create: 'Shoe lovers', optInProcess: 'single_opt_in' },
  mapping: [{ from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }, { from: 'event_count', to: 'properties.event_count' }],
};

beforeAll(async () => {
  emu = await startEmulator({ port: 0, rateLimits: false, jobDelayMs: 10, privateKey: PRIVATE_KEY });
  dir = mkdtempSync(join(tmpdir(), 'relay-admin-'));
  server = await createServer(
    { publicKey: 'ABC123', allowedOrigins: ['https://shop.example'], audiences: [{ ...segmentDef, name: 'from-config', enabled: false }] } as unknown as RelayConfigInput,
    { privateKey: PRIVATE_KEY, adminToken: TOKEN, klaviyoBaseUrl: emu.url, dataDir: dir, configDir: dir, forwardIntervalMs: 0 },
  );
  url = await server.listen({ port: 0, host: '127.0.0.1' });
  const now = Date.now();
  const ev = (n: number, email: string, name: string, category: string, daysAgo: number) => ({
    type: 'track', name, properties: { Category: category }, time: new Date(now - daysAgo * 864e5).toISOString(),
    unique_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, route: 'off', profile: { anonymous_id: `anon-${email}`, email, first_name: email.split('@')[0] },
  });
  const events = [
    ev(1, 'ada@example.com', 'Viewed Product', 'Shoes', 1), ev(2, 'ada@example.com', 'Viewed Product', 'Shoes', 2),
    ev(3, 'bob@example.com', 'Viewed Product', 'Shoes', 1), ev(4, 'bob@example.com', 'Viewed Product', 'Shoes', 3), ev(5, 'bob@example.com', 'Placed Order', 'Shoes', 1),
    ev(6, 'cy@example.com', 'Viewed Product', 'Hats', 1), ev(7, 'cy@example.com', 'Viewed Product', 'Hats', 2),
    ev(8, 'dee@example.com', 'Viewed Product', 'Shoes', 1), ev(9, 'dee@example.com', 'Viewed Product', 'Shoes', 20),
    ev(10, 'eve@example.com', 'Viewed Product', 'Shoes', 1), ev(11, 'eve@example.com', 'Viewed Product', 'Shoes', 4), ev(12, 'eve@example.com', 'Viewed Product', 'Shoes', 5),
  ];
  const res = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://shop.example' }, body: JSON.stringify({ public_key: 'ABC123', events }) });
  expect(res.status).toBe(202);
  expect(await res.json()).toMatchObject({ accepted: 12, rejected: [] });
});

afterAll(async () => {
  await server?.close();
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('admin audience routes', () => {
  it('refuses requests without the admin token', async () => {
    expect((await fetch(`${url}/v1/admin/audiences`)).status).toBe(401);
  });

  it('lists config definitions and 404s unknown ones', async () => {
    const res = await admin('/audiences');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.audiences.map((a: any) => [a.name, a.origin])).toEqual([['from-config', 'config']]);
    expect((await admin('/audiences/nope')).status).toBe(404);
    expect((await admin('/audiences/nope/sync', { method: 'POST' })).status).toBe(404);
  });

  it('PUT validates with zod and names the field', async () => {
    const bad = await admin('/audiences/bad', { method: 'PUT', body: JSON.stringify({ ...segmentDef, name: 'bad', consent: 'never_subscribed', subscription: ['sms'] }) });
    expect(bad.status).toBe(400);
    const body = await bad.json();
    expect(body.issues).toEqual([{ field: 'consent', message: expect.stringMatching(/email only/) }]);
    const combo = await admin('/audiences/bad', { method: 'PUT', body: JSON.stringify({ ...segmentDef, name: 'bad', allowAnonymous: true, excludeExternalId: true }) });
    expect((await combo.json()).issues[0].field).toBe('excludeExternalId');
    const mismatch = await admin('/audiences/bad', { method: 'PUT', body: JSON.stringify({ ...segmentDef, name: 'other' }) });
    expect(mismatch.status).toBe(400);
    expect((await admin('/audiences/bad')).status).toBe(404);
  });

  it('PUT saves a definition that overrides a config one of the same name', async () => {
    const res = await admin('/audiences/from-config', { method: 'PUT', body: JSON.stringify({ ...segmentDef, name: undefined, list: { create: 'Overridden' }, enabled: false }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name: 'from-config', origin: 'api', definition: { list: { create: 'Overridden' } } });
    const got = await (await admin('/audiences/from-config')).json();
    expect(got.definition.list).toEqual({ create: 'Overridden' });
  });

  it('Instant Sync of a disabled audience answers 409 saying so, sends nothing and logs no run; a dry run still works', async () => {
    const before = emu.requests.length;
    const res = await admin('/audiences/from-config/sync', { method: 'POST' });
    expect(res.status).toBe(409);
    expect((await res.json()).error).toMatch(/"from-config" is disabled/);
    expect(emu.requests.length).toBe(before);
    expect((await (await admin('/audiences/from-config/logs')).json()).logs).toHaveLength(0);
    expect((await admin('/audiences/from-config/sync?dry_run=true', { method: 'POST' })).status).toBe(200);
  });

  it('Instant Sync runs a segment into the list, refuses an overlapping run, and logs it', async () => {
    expect((await admin('/audiences/shoe-lovers', { method: 'PUT', body: JSON.stringify(segmentDef) })).status).toBe(200);

    const started = await admin('/audiences/shoe-lovers/sync', { method: 'POST' });
    const overlapping = await admin('/audiences/shoe-lovers/sync', { method: 'POST' });
    expect(started.status).toBe(202);
    const { run } = await started.json();
    expect(run).toMatchObject({ id: expect.any(Number), status: 'running', audience: 'shoe-lovers' });
    expect(overlapping.status).toBe(409);
    expect((await overlapping.json()).run.id).toBe(run.id);

    const log = await waitFor(async () => {
      const latest = (await (await admin('/audiences/shoe-lovers/logs')).json()).logs[0];
      return latest.status !== 'running' && latest;
    }, { what: 'the Instant Sync run to finish' });
    expect(log).toMatchObject({ id: run.id, status: 'success', counts: { read: 2, imported: 2 } });
    expect(log.duration_ms).toBeGreaterThanOrEqual(0);
    const list = emu.state.lists().find((l) => l.name === 'Shoe lovers')!;
    expect(emu.state.listMembers(list.id).map((p) => p.email).sort()).toEqual(['ada@example.com', 'eve@example.com']);
    expect(emu.state.profiles().find((p) => p.email === 'eve@example.com')!.properties).toMatchObject({ event_count: 3 });

    // ?wait=true answers with the finished run; nothing changed, so nothing is sent.
    const again = await (await admin('/audiences/shoe-lovers/sync?wait=true', { method: 'POST' })).json();
    expect(again.run).toMatchObject({ status: 'success', counts: { read: 2, unchanged: 2, imported: 0 } });
    const logs = (await (await admin('/audiences/shoe-lovers/logs')).json()).logs;
    expect(logs.map((l: any) => l.id)).toEqual([again.run.id, run.id]);

    // A dry run through the API reports the plan and writes no log row.
    const dry = await (await admin('/audiences/shoe-lovers/sync?dry_run=true', { method: 'POST' })).json();
    expect(dry).toMatchObject({ dry_run: true, status: 'success', counts: { read: 2, unchanged: 2 } });
    expect((await (await admin('/audiences/shoe-lovers/logs')).json()).logs).toHaveLength(2);
  });
});

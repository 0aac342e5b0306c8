// `klaviyo-relay sync` and `logs` in-process, against the sandbox: exit codes, dry-run output, log rows.
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach, vi } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { runSync, runLogs } from '../../src/server/audiences/cli.js';
import { PRIVATE_KEY, people } from './harness.js';
import { createTestDatabase } from '../support/postgres.js';
import { openStore } from '../../src/server/store/open.js';

let emu: Emulator;
let dir: string;
let out: string[];
const saved = { ...process.env };

const audience = (name: string, extra: Record<string, unknown> = {}) => ({
  name, source: { type: 'file', path: 'data/members.csv' }, list: { create: `List ${name}`, optInProcess: 'single_opt_in' },
  mapping: [{ from: 'id', to: 'external_id' }, { from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' }], ...extra,
});

beforeAll(async () => {
  emu = await startEmulator({ port: 0, rateLimits: false, jobDelayMs: 5, privateKey: PRIVATE_KEY });
  dir = mkdtempSync(join(tmpdir(), 'relay-cli-'));
  writeFileSync(join(dir, 'relay.config.json'), JSON.stringify({
    publicKey: 'ABC123',
    audiences: [
      audience('newsletter'), audience('subscribers', { consent: 'subscribed' }), audience('broken', { list: { id: 'MISSING' } }),
      audience('paused', { enabled: false }),
    ],
  }));
  const rows = people(0, 40);
  const csv = ['id,email,first_name', ...rows.map((r) => `${r.id},${r.email},${r.first_name}`)].join('\n');
  (await import('node:fs')).mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'data/members.csv'), csv);
});
afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  process.env.KLAVIYO_PRIVATE_KEY = PRIVATE_KEY;
  process.env.KLAVIYO_BASE_URL = emu.url;
  process.env.RELAY_DATA_DIR = join(dir, 'state');
  out = [];
  vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a) => void out.push(a.join(' ')));
});
afterEach(() => {
  vi.restoreAllMocks();
  process.env = { ...saved };
});

const config = ['--config', '' as string];
beforeAll(() => (config[1] = join(dir, 'relay.config.json')));

describe('klaviyo-relay sync', () => {
  it('--dry-run prints the plan, sends only GETs and writes no log row', async () => {
    const before = emu.requests.length;
    expect(await runSync(['newsletter', '--dry-run', ...config])).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/Dry run of "newsletter": nothing was sent or saved/);
    expect(text).toMatch(/list: would create "List newsletter"/);
    expect(text).toMatch(/read=40 .*imported=40/);
    expect(text).toMatch(/would send: 1 import job\(s\)/);
    expect(text).toContain('{"type":"profile","attributes":{"external_id":"C-0","email":"person0@example.com","first_name":"P0"}}');
    expect(emu.requests.slice(before).every((r) => r.method === 'GET')).toBe(true);
    out = [];
    expect(await runLogs(['newsletter', ...config])).toBe(0);
    expect(out.join('\n')).toMatch(/No runs of "newsletter" yet/);
  });

  it('exits 0 on success, 2 on partial, 1 on failed', async () => {
    expect(await runSync(['newsletter', ...config])).toBe(0);
    expect(out.join('\n')).toMatch(/success .*read=40 .*imported=40/);
    emu.faults.add({ method: 'POST', path: '/api/profile-subscription-bulk-create-jobs', status: 400, count: 1 });
    expect(await runSync(['subscribers', ...config])).toBe(2);
    expect(await runSync(['broken', ...config])).toBe(1);
    expect(out.join('\n')).toMatch(/list MISSING does not exist/);
  });

  it('names unknown audiences, config errors and a missing key', async () => {
    expect(await runSync(['nope', ...config])).toBe(1);
    expect(out.join('\n')).toMatch(/No audience named "nope".*Known: broken, newsletter, paused, subscribers/);
    const bad = join(dir, 'bad.config.json');
    writeFileSync(bad, JSON.stringify({ publicKey: 'ABC123', audiences: [audience('x', { consent: 'never_subscribed', subscription: ['sms'] })] }));
    expect(await runSync(['x', '--config', bad])).toBe(1);
    expect(out.join('\n')).toMatch(/audiences\[0\]\.consent: never_subscribed is allowed for email only/);
    delete process.env.KLAVIYO_PRIVATE_KEY;
    expect(await runSync(['newsletter', ...config])).toBe(1);
    expect(out.join('\n')).toMatch(/KLAVIYO_PRIVATE_KEY is not set/);
    expect(await runSync([...config])).toBe(1);
  });
  it('refuses a disabled audience unless --force; --help documents --force', async () => {
    const before = emu.requests.length;
    expect(await runSync(['paused', ...config])).toBe(1);
    expect(out.join('\n')).toMatch(/"paused" is disabled.*--force/);
    expect(emu.requests.length).toBe(before);
    expect(await runSync(['paused', '--force', ...config])).toBe(0);
    expect(out.join('\n')).toMatch(/success .*read=40/);
    out = [];
    expect(await runSync(['--help'])).toBe(0);
    expect(out.join('\n')).toMatch(/--force\s+sync even when the audience is disabled/);
  });
});

describe('klaviyo-relay logs', () => {
  it('prints one row per run, newest first, with the status word and every count; --json as JSON lines', async () => {
    expect(await runSync(['newsletter', ...config])).toBe(0); // second run of newsletter: unchanged
    out = [];
    expect(await runLogs(['newsletter', ...config])).toBe(0);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^#\d+ \S+ success \d+\.\ds read=40 skipped_anonymous=0 invalid=0 invalid_fields=0 unchanged=40 imported=0 subscribed=0 unsubscribed=0 removed=0 failed=0/);
    expect(out[1]).toMatch(/ success .* unchanged=0 imported=40 /);
    out = [];
    expect(await runLogs(['newsletter', '--json', ...config])).toBe(0);
    const rows = out.map((l) => JSON.parse(l));
    expect(rows.map((r) => r.counts.unchanged)).toEqual([40, 0]);
    expect(rows[0].id).toBeGreaterThan(rows[1].id);
    expect(rows[1]).toMatchObject({ status: 'success', trigger: 'cli', job_ids: [expect.any(String)] });
    out = [];
    await runLogs(['subscribers', ...config]);
    expect(out[0]).toMatch(/ partial .* failed=40/);
  });
});

describe('sync beside a running serve', () => {
  it('shares the data folder serve has claimed (it opens the database, not the claim)', async () => {
    const dataDir = join(dir, 'state-shared');
    const serving = await openStore({ dataDir }); // what serve holds while it runs
    try {
      process.env.RELAY_DATA_DIR = dataDir;
      expect(await runSync(['newsletter', ...config])).toBe(0);
      expect(await runLogs(['newsletter', ...config])).toBe(0);
      expect((await serving.audiences.runs.list('newsletter', 5)).map((r) => r.status)).toEqual(['success']);
    } finally {
      await serving.close();
    }
  });
});

describe('sync and logs on PostgreSQL (DATABASE_URL)', () => {
  it('keep the sync state and the log rows in the database, and write no SQLite file', async () => {
    const database = await createTestDatabase();
    try {
      process.env.DATABASE_URL = database.url;
      process.env.RELAY_DATA_DIR = join(dir, 'state-pg');
      expect(await runSync(['newsletter', ...config])).toBe(0);
      expect(await runSync(['newsletter', ...config])).toBe(0);
      out = [];
      expect(await runLogs(['newsletter', '--json', ...config])).toBe(0);
      expect(out.map((l) => JSON.parse(l).counts)).toEqual([
        expect.objectContaining({ read: 40, unchanged: 40, imported: 0 }),
        expect.objectContaining({ read: 40, unchanged: 0, imported: 40 }),
      ]);
      expect(existsSync(join(dir, 'state-pg'))).toBe(false);
    } finally {
      await database.drop();
    }
  });
});

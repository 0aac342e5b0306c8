// `klaviyo-relay doctor` against the Klaviyo sandbox: exit 0 when every check passes, 1 naming what to fix for a
// foreign public key, a wrong private key or a missing list id, and never a secret in its output.
// Klaviyo's key errors: https://developers.klaviyo.com/en/docs/authenticate_#troubleshooting
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { runDoctor } from '../../src/server/doctor.js';
import { definitionRegistry, parseDefinition } from '../../src/server/audiences/definitions.js';
import { openStore } from '../../src/server/store/open.js';
import { createTestDatabase } from '../support/postgres.js';
import { ADMIN_TOKEN, PRIVATE_KEY, PUBLIC_KEY, SHOP } from './helpers.js';

let sandbox: Emulator;
let listId: string;
const dir = mkdtempSync(join(tmpdir(), 'relay-doctor-'));

beforeAll(async () => {
  sandbox = await startEmulator({ privateKey: PRIVATE_KEY, publicKey: PUBLIC_KEY });
  listId = sandbox.internals.state.lists.create('Doctor VIPs', 'single_opt_in').id;
});
afterAll(async () => {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

let configs = 0;
async function doctor(config: Record<string, unknown>, env: Record<string, string> = {}) {
  const path = join(dir, `relay-${++configs}.json`);
  writeFileSync(path, JSON.stringify({ publicKey: PUBLIC_KEY, allowedOrigins: [SHOP], ...config }));
  const lines: string[] = [];
  const code = await runDoctor(['--config', path], {
    env: { KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, RELAY_ADMIN_TOKEN: ADMIN_TOKEN, KLAVIYO_BASE_URL: sandbox.url, RELAY_DATA_DIR: join(dir, 'data'), ...env },
    out: (line) => lines.push(line),
  });
  const output = lines.join('\n');
  expect(output).not.toContain(PRIVATE_KEY);
  expect(output).not.toContain(ADMIN_TOKEN);
  return { code, output, line: (check: string) => lines.find((l) => l.includes(`  ${check}:`)) ?? '' };
}

const audience = (name: string, list: unknown) => ({ name, source: { type: 'file', path: 'members.csv' }, list });

describe('klaviyo-relay doctor', () => {
  it('exits 0 when the keys, the lists and the store are all right', async () => {
    const { code, output, line } = await doctor({ audiences: [audience('vips', { id: listId }), audience('new-list', { create: 'Made at first sync' })] });
    expect(code).toBe(0);
    expect(line('private key')).toMatch(/^ok\s+private key: works for the Klaviyo account “Sandbox Outfitters”/);
    expect(line('public key')).toMatch(/^ok/);
    expect(line('list of audience "vips"')).toContain('Doctor VIPs');
    expect(line('list of audience "new-list"')).toContain('the first sync creates it');
    expect(line('store')).toMatch(/^ok\s+store: SQLite at .* is writable/);
    expect(output).toContain('All checks passed.');
  });

  it('exits 1 for a foreign public key, naming the key to set', async () => {
    const { code, line } = await doctor({ publicKey: 'XyZ987' });
    expect(code).toBe(1);
    expect(line('public key')).toMatch(/^FAIL\s+public key: publicKey "XyZ987" .* set publicKey to "Ab12Cd"/);
  });

  it('exits 1 for a wrong private key, naming KLAVIYO_PRIVATE_KEY and never printing it', async () => {
    const wrong = 'pk_notTheSandboxKey00000000000000';
    const { code, output, line } = await doctor({ audiences: [audience('vips', { id: listId })] }, { KLAVIYO_PRIVATE_KEY: wrong });
    expect(code).toBe(1);
    expect(line('private key')).toMatch(/^FAIL\s+private key: Klaviyo refused KLAVIYO_PRIVATE_KEY \(40[13]/);
    expect(line('public key')).toMatch(/^skip/);
    expect(line('list of audience "vips"')).toMatch(/^skip/);
    expect(output).not.toContain(wrong);
  });

  it('exits 1 for an audience whose list id does not exist, naming the audience and the id', async () => {
    const { code, line } = await doctor({ audiences: [audience('vips', { id: listId }), audience('lost', { id: 'Gone42' })] });
    expect(code).toBe(1);
    expect(line('list of audience "vips"')).toMatch(/^ok/);
    expect(line('list of audience "lost"')).toMatch(/^FAIL\s+list of audience "lost": list id Gone42 does not exist in this Klaviyo account: pick an existing list/);
  });

  it('checks the lists of audiences saved from the console too', async () => {
    const dataDir = join(dir, 'saved-audiences');
    const opened = await openStore({ dataDir });
    await definitionRegistry(opened.audiences, []).put(parseDefinition(audience('saved-here', { id: 'Missing7' })));
    await opened.close();
    const { code, line } = await doctor({}, { RELAY_DATA_DIR: dataDir });
    expect(code).toBe(1);
    expect(line('list of audience "saved-here"')).toMatch(/^FAIL\s.*list id Missing7 does not exist/);
  });

  it('exits 1 without a private key and for an unreadable config, saying which to set', async () => {
    const { code, line } = await doctor({}, { KLAVIYO_PRIVATE_KEY: '' });
    expect(code).toBe(1);
    expect(line('private key')).toContain('KLAVIYO_PRIVATE_KEY is unset');

    const lines: string[] = [];
    expect(await runDoctor(['--config', join(dir, 'missing.json')], { env: {}, out: (l) => lines.push(l) })).toBe(1);
    expect(lines.join('\n')).toMatch(/^FAIL\s+config: Cannot read config file .*missing\.json/);
  });

  it('prints its usage for --help and refuses a mistyped flag', async () => {
    const lines: string[] = [];
    expect(await runDoctor(['--help'], { env: {}, out: (l) => lines.push(l) })).toBe(0);
    expect(lines.join('\n')).toContain('Usage: klaviyo-relay doctor [--config FILE]');
    expect(await runDoctor(['--confg', 'x.json'], { env: {}, out: () => {} })).toBe(1);
  });

  it('checks PostgreSQL instead of the SQLite folder when DATABASE_URL is set, never printing its password', async () => {
    const database = await createTestDatabase();
    try {
      const url = new URL(database.url);
      const { code, line, output } = await doctor({}, { DATABASE_URL: database.url });
      expect(code).toBe(0);
      expect(line('store')).toMatch(/^ok\s+store: PostgreSQL at postgres(ql)?:\/\/.* is writable/);
      if (url.password) expect(output).not.toContain(url.password);

      // Nothing listens on port 1: the store check fails naming DATABASE_URL.
      url.port = '1';
      const down = await doctor({}, { DATABASE_URL: url.href });
      expect(down.code).toBe(1);
      expect(down.line('store')).toMatch(/^FAIL\s+store: PostgreSQL at .* cannot be written .*check DATABASE_URL/);
    } finally {
      await database.drop();
    }
  });
});

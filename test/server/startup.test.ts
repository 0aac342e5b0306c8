// `serve` refuses to start on a setting it cannot work with: it exits non-zero with one line naming the setting,
// no stack trace, no hang. Built CLI, real processes (`npm run build` first).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, StartupError } from '../../src/server/index.js';
import { redactingStream, REDACTED } from '../../src/server/logger.js';
import { ADMIN_TOKEN, PRIVATE_KEY, baseConfig } from './helpers.js';
import { spawnRelay as spawn, type RelayProcess } from './spawn.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-startup-'));
/** Every process started here, killed at the end even when a test failed before it exited (e.g. a hang). */
const started: RelayProcess[] = [];
const spawnRelay = (...args: Parameters<typeof spawn>) => {
  const relay = spawn(...args);
  started.push(relay);
  return relay;
};
afterAll(() => {
  for (const relay of started) if (relay.child.exitCode === null && relay.child.signalCode === null) relay.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
const config = join(dir, 'relay.config.json');
writeFileSync(config, JSON.stringify(baseConfig));

async function serveExpectingRefusal(env: Record<string, string>, args: string[] = []) {
  const relay = spawnRelay(['serve', '--config', config, '--port', '0', '--host', '127.0.0.1', ...args], { RELAY_ADMIN_TOKEN: ADMIN_TOKEN, KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, KLAVIYO_BASE_URL: 'http://127.0.0.1:9', ...env });
  const code = await relay.exited;
  const lines = relay.output().trim().split('\n');
  return { code, lines, output: relay.output() };
}

function expectOneLine(result: { code: number | null; lines: string[]; output: string }, naming: RegExp) {
  expect(result.code, result.output).toBe(1);
  expect(result.lines, result.output).toHaveLength(1);
  expect(result.lines[0]).toMatch(naming);
  expect(result.output).not.toMatch(/\n\s+at /);
}

describe('a second serve on one RELAY_DATA_DIR', () => {
  it('is refused while the first runs, naming the folder; the first keeps serving', async () => {
    const dataDir = join(dir, 'shared-data');
    const first = spawnRelay(['serve', '--config', config, '--port', '0', '--host', '127.0.0.1'], { RELAY_DATA_DIR: dataDir, RELAY_ADMIN_TOKEN: ADMIN_TOKEN });
    const url = await first.url;
    try {
      const second = await serveExpectingRefusal({ RELAY_DATA_DIR: dataDir });
      expectOneLine(second, /RELAY_DATA_DIR .*shared-data is in use by another klaviyo-relay serve/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    // The kernel dropped the dead process's lock: a restart takes the folder at once.
    const restarted = spawnRelay(['serve', '--config', config, '--port', '0', '--host', '127.0.0.1'], { RELAY_DATA_DIR: dataDir, RELAY_ADMIN_TOKEN: ADMIN_TOKEN });
    await restarted.url;
    restarted.child.kill('SIGTERM');
    expect(await restarted.exited).toBe(0);
  });

  it('is refused in the same process too, and the folder is free again once the first closes', async () => {
    const dataDir = join(dir, 'in-process');
    const first = await createServer(baseConfig, { dataDir, forwardIntervalMs: 0 });
    await expect(createServer(baseConfig, { dataDir, forwardIntervalMs: 0 })).rejects.toThrow(StartupError);
    await first.close();
    const again = await createServer(baseConfig, { dataDir, forwardIntervalMs: 0 });
    await again.close();
  });
});

describe('a data folder that cannot be used', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a folder');
  const cases: [string, string, RegExp][] = [
    ['under /proc, where mkdir answers ENOENT (Node\'s recursive mkdir never returns)', '/proc/relay-data', /RELAY_DATA_DIR \/proc\/relay-data cannot be created \(ENOENT\)/],
    ['an existing folder that cannot be written', '/proc/1', /RELAY_DATA_DIR \/proc\/1 is not writable/],
    ['a read-only file system', '/sys/relay-data', /RELAY_DATA_DIR \/sys\/relay-data cannot be created \((EPERM|EROFS|EACCES)\)/],
    ['a path through a file', join(file, 'data'), /RELAY_DATA_DIR .*a-file\/data cannot be (read|created) \(ENOTDIR\)/],
    ['a file', file, /RELAY_DATA_DIR .*a-file is not a folder/],
  ];
  for (const [what, dataDir, message] of cases) {
    it(`exits naming RELAY_DATA_DIR: ${what}`, async () => {
      expectOneLine(await serveExpectingRefusal({ RELAY_DATA_DIR: dataDir }), message);
    });
  }
});

describe('a port already taken', () => {
  it('exits naming the port and how to change it', async () => {
    const taken: Server = createNetServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const result = await serveExpectingRefusal({ RELAY_DATA_DIR: join(dir, 'port-data') }, ['--port', String(port)]);
      expectOneLine(result, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use; choose another with --port or PORT`));
    } finally {
      taken.close();
    }
  });
});

describe('RELAY_ADMIN_TOKEN', () => {
  it('unset: serve starts and says at once that the admin API and the console are off', async () => {
    const relay = spawnRelay(['serve', '--config', config, '--port', '0', '--host', '127.0.0.1'], { RELAY_DATA_DIR: join(dir, 'no-token-data'), KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, KLAVIYO_BASE_URL: 'http://127.0.0.1:9' });
    await relay.url;
    expect(relay.output()).toContain('RELAY_ADMIN_TOKEN is unset: the admin API and the operator console at /admin are off until it is set');
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('set: no such warning', async () => {
    const relay = spawnRelay(['serve', '--config', config, '--port', '0', '--host', '127.0.0.1'], { RELAY_DATA_DIR: join(dir, 'token-set-data'), RELAY_ADMIN_TOKEN: ADMIN_TOKEN, KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, KLAVIYO_BASE_URL: 'http://127.0.0.1:9' });
    await relay.url;
    expect(relay.output()).not.toContain('RELAY_ADMIN_TOKEN is unset');
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('shorter than 16 characters: serve refuses to start, naming it, and never prints it', async () => {
    const result = await serveExpectingRefusal({ RELAY_DATA_DIR: join(dir, 'token-data'), RELAY_ADMIN_TOKEN: 'abc' });
    expectOneLine(result, /RELAY_ADMIN_TOKEN is 3 characters long; use at least 16/);
    expect(result.output).not.toContain('abc');
  });

  it('createServer refuses one too', async () => {
    await expect(createServer(baseConfig, { dataDir: ':memory:', adminToken: 'x'.repeat(15) })).rejects.toThrow(/RELAY_ADMIN_TOKEN is 15 characters/);
  });

  it('the log redactor blanks even a very short secret', () => {
    const lines: string[] = [];
    const stream = redactingStream(['abc'], { write: (line: string) => lines.push(line) > 0 });
    stream.write('{"msg":"token abc"}\n');
    expect(lines).toEqual([`{"msg":"token ${REDACTED}"}\n`]);
  });
});

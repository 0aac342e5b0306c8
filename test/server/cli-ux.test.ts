// What a newcomer meets first on the command line: typos answered with what was meant, and --help that lists
// every option and exit code. Built CLI, real processes (`npm run build` first).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { baseConfig } from './helpers.js';
import { spawnRelay } from './spawn.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-cli-ux-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(args: string[], config: unknown = baseConfig, env: Record<string, string> = {}) {
  const path = join(dir, 'relay.config.json');
  writeFileSync(path, JSON.stringify(config));
  const relay = spawnRelay([...args, '--config', path], { RELAY_DATA_DIR: join(dir, 'data'), ...env });
  // A serve that starts when it should have refused is 'running', and stopped: it must not outlive the test.
  const code = await Promise.race([relay.exited, relay.url.then(() => 'running' as const, () => relay.exited)]);
  if (code === 'running') {
    relay.child.kill('SIGKILL');
    await relay.exited;
  }
  return { code, output: relay.output() };
}

describe('typos', () => {
  it('a config key one letter off names the key meant', async () => {
    const { allowedOrigins, ...rest } = baseConfig;
    const { code, output } = await run(['serve', '--port', '0'], { ...rest, allowedOrigin: allowedOrigins });
    expect(code).toBe(1);
    expect(output).toContain('Unrecognized key "allowedOrigin": did you mean "allowedOrigins"?');
  });

  it('an unknown key inside an audience names the key meant too', async () => {
    const audience = { name: 'a', source: { type: 'segment', rules: { trait: 'plan', eq: 'gold' } }, list: { create: 'A' }, refreshIntervall: '6h' };
    const { code, output } = await run(['serve', '--port', '0'], { ...baseConfig, audiences: [audience] });
    expect(code).toBe(1);
    expect(output).toContain('- audiences[0]: Unrecognized key "refreshIntervall": did you mean "refreshInterval"?');
  });

  it('a rateLimit written as a string says what it takes, not "Invalid input"', async () => {
    const { code, output } = await run(['serve', '--port', '0'], { ...baseConfig, rateLimit: '600' });
    expect(code).toBe(1);
    expect(output).toContain('- rateLimit: must be a whole number of requests per minute per IP, such as 600 (not "600"), or {"max": 600, "windowMs": 60000}');
  });

  it('a Private API Key pasted as publicKey is refused: the snippet would publish it in every page', async () => {
    const { code, output } = await run(['serve', '--port', '0'], { ...baseConfig, publicKey: 'pk_0123456789abcdef0123456789abcdef' });
    expect(code).toBe(1);
    expect(output).toContain('- publicKey: this is a Private API Key (pk_…): publicKey is the 6-character Public API Key (site id)');
    expect(output).not.toContain('0123456789abcdef0123456789abcdef');
  });

  it('a JSON syntax error names its line and column, not only its character offset', async () => {
    const path = join(dir, 'trailing-comma.json');
    writeFileSync(path, '{\n  "publicKey": "ABC123",\n  "allowedOrigins": [],\n}\n');
    const relay = spawnRelay(['doctor', '--config', path], { RELAY_DATA_DIR: join(dir, 'data') });
    expect(await relay.exited).toBe(1);
    expect(relay.output()).toMatch(/is not valid JSON: .*\(?line 4 column 1\)?/);
  });

  it('--dryrun suggests --dry-run instead of printing parseArgs internals', async () => {
    const { code, output } = await run(['sync', 'x', '--dryrun']);
    expect(code).toBe(1);
    expect(output.split('\n')[0]).toBe('unknown option --dryrun; did you mean --dry-run?');
    expect(output).not.toMatch(/positional argument|ERR_PARSE_ARGS/);
  });

  it('logs --limit that is not a whole number ≥ 1 is refused, naming the flag, instead of read as "no limit"', async () => {
    for (const limit of ['abc', '0', '-5', '2.5']) {
      const { code, output } = await run(['logs', 'x', `--limit=${limit}`]);
      expect(code, limit).toBe(1);
      expect(output.split('\n')[0], limit).toBe(`--limit must be a whole number of runs, at least 1; got "${limit}"`);
    }
  });

  it('serve --prot suggests --port', async () => {
    const { code, output } = await run(['serve', '--prot', '8080']);
    expect(code).toBe(1);
    expect(output.split('\n')[0]).toBe('unknown option --prot; did you mean --port?');
  });
});

describe('a bad environment variable', () => {
  for (const command of [['serve', '--port', '0'], ['doctor'], ['sync', 'x'], ['logs', 'x']]) {
    it(`${command[0]}: one line naming it, no stack trace`, async () => {
      const { code, output } = await run(command, baseConfig, { RELAY_AUDIENCE_LEASE_MS: '5' });
      expect(code).toBe(1);
      expect(output.trim()).toBe('RELAY_AUDIENCE_LEASE_MS must be a whole number of milliseconds ≥ 1000, got "5"');
    });
  }

  it('KLAVIYO_BASE_URL without its scheme is refused at start, not reported later as "cannot reach Klaviyo"', async () => {
    for (const command of [['serve', '--port', '0'], ['doctor']]) {
      const { code, output } = await run(command, baseConfig, { KLAVIYO_BASE_URL: 'localhost:4010' });
      expect(code, output).toBe(1);
      expect(output.trim()).toBe('KLAVIYO_BASE_URL must be an http:// or https:// URL such as https://a.klaviyo.com or http://127.0.0.1:4010, got "localhost:4010"');
    }
  });
});

describe('--help', () => {
  it('the top-level help documents serve --port/--host, logs --limit, LOG_LEVEL and the sync exit codes', async () => {
    const { code, output } = await run(['--help']);
    expect(code).toBe(0);
    expect(output).toMatch(/serve .*--port N.*--host ADDRESS/);
    expect(output).toMatch(/logs <name> .*--limit N/);
    expect(output).toContain('LOG_LEVEL');
    expect(output).toMatch(/exit 0 success, 2 partial, 1 failed/);
  });

  it('sync --help gives the exit codes and how invalid rows count', async () => {
    const { code, output } = await run(['sync', '--help']);
    expect(code).toBe(0);
    expect(output).toContain('Exit codes: 0 success, 2 partial');
    expect(output).toContain('1 failed');
    expect(output).toMatch(/Invalid source rows .* counted under "invalid"/s);
  });

  it('serve --help and logs --help document their options', async () => {
    const serve = await run(['serve', '--help']);
    expect(serve.output).toMatch(/--port N/);
    expect(serve.output).toMatch(/--host ADDRESS/);
    expect(serve.output).toContain('LOG_LEVEL');
    const logs = await run(['logs', '--help']);
    expect(logs.output).toMatch(/--limit N/);
  });

  it('serve --help names every variable of the configuration reference’s environment table', async () => {
    const reference = readFileSync(fileURLToPath(new URL('../../docs/configuration.md', import.meta.url)), 'utf8');
    const table = reference.slice(reference.indexOf('## Environment'), reference.indexOf('## The config file'));
    const documented = [...table.matchAll(/^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|/gm)].flatMap((m) => m.slice(1).filter(Boolean));
    expect(documented).toContain('RELAY_AUDIENCE_LEASE_MS');
    const { output } = await run(['serve', '--help']);
    expect(documented.filter((name) => !output.includes(name))).toEqual([]);
  });

  it('sync --help and logs --help say they read the data where serve keeps it (DATABASE_URL, else RELAY_DATA_DIR)', async () => {
    for (const command of ['sync', 'logs']) {
      const { output } = await run([command, '--help']);
      expect(output, command).toContain('DATABASE_URL');
      expect(output, command).toContain('RELAY_DATA_DIR');
    }
  });
});

// `klaviyo-relay serve` as a user runs it: built CLI, real process. `npm test` builds dist/ first.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { baseConfig } from './helpers.js';
import { spawnRelay } from './spawn.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

async function serveExpectingFailure(config: string, env: Record<string, string> = {}) {
  const relay = spawnRelay(['serve', '--config', config, '--port', '0'], { RELAY_DATA_DIR: join(dir, 'data'), ...env });
  const code = await relay.exited;
  return { code, output: relay.output() };
}

describe('serve: config errors exit non-zero naming the field', () => {
  it('names an event turned on both ways', async () => {
    const path = configFile('both.json', { ...baseConfig, workflow: { events: { 'Placed Order': { client: true, server: true } } } });
    const { code, output } = await serveExpectingFailure(path);
    expect(code).toBe(1);
    expect(output).toContain('workflow.events.Placed Order');
    expect(output).toMatch(/sent twice/);
  });

  it('names a missing publicKey and a bad origin together', async () => {
    const path = configFile('missing.json', { allowedOrigins: ['https://shop.example/path'] });
    const { code, output } = await serveExpectingFailure(path);
    expect(code).toBe(1);
    expect(output).toContain('publicKey');
    expect(output).toContain('allowedOrigins[0]');
  });

  it('reports unreadable and non-JSON files', async () => {
    expect((await serveExpectingFailure(join(dir, 'nope.json'))).output).toMatch(/Cannot read config file .*nope\.json/);
    const bad = await serveExpectingFailure(configFile('bad.json', '{ "publicKey": '));
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/not valid JSON/);
  });
});

describe('serve: DATABASE_URL errors exit non-zero without showing the password', () => {
  it('names an unreachable PostgreSQL server', async () => {
    const { code, output } = await serveExpectingFailure(configFile('pg.json', baseConfig), { DATABASE_URL: 'postgres://relay:s3cret-pw@127.0.0.1:1/relay' });
    expect(code).toBe(1);
    expect(output).toMatch(/cannot open the PostgreSQL store at postgres:\/\/relay:\*\*\*@127\.0\.0\.1:1\/relay: .*ECONNREFUSED/);
    expect(output).not.toContain('s3cret-pw');
  });

  it('refuses a URL of another database', async () => {
    const { code, output } = await serveExpectingFailure(configFile('mysql.json', baseConfig), { DATABASE_URL: 'mysql://relay:pw@db/relay' });
    expect(code).toBe(1);
    expect(output).toMatch(/DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
  });
});

describe('serve: a good config', () => {
  it('prints its URL, answers, and exits 0 on SIGTERM', async () => {
    const path = configFile('good.json', baseConfig);
    const relay = spawnRelay(['serve', '--config', path, '--port', '0', '--host', '127.0.0.1'], { RELAY_DATA_DIR: join(dir, 'data-good') });
    const url = await relay.url;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(relay.output()).toMatch(/KLAVIYO_PRIVATE_KEY is unset/);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });
});

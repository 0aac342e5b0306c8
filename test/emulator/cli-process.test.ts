// `klaviyo-relay emulator` as a user runs it: the built CLI in a real process. `npm test` builds dist/ first.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KLAVIYO_REVISION } from '../../src/shared/revision.js';
import { clientEvent } from './helpers.js';

const BIN = fileURLToPath(new URL('../../bin/klaviyo-relay.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'emulator-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('klaviyo-relay emulator (process)', () => {
  it('starts with flags, applies a --fault rule, and saves its snapshot on SIGTERM', async () => {
    const snapshot = join(dir, 'state.json');
    const child = spawn(process.execPath, [BIN, 'emulator', '--port', '0', '--public-key', 'Zz9Yy8', '--snapshot', snapshot, '--fault', '{"path":"/client/events","status":503,"count":1}'], {
      env: { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        out += chunk;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const post = () =>
      fetch(`${url}/client/events?company_id=Zz9Yy8`, {
        method: 'POST',
        headers: { 'content-type': 'application/vnd.api+json', revision: KLAVIYO_REVISION },
        body: JSON.stringify(clientEvent('Viewed Product', { email: 'a@b.co' })),
      });
    expect((await post()).status).toBe(503);
    expect((await post()).status).toBe(202);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(snapshot)).toBe(true);
    expect(JSON.parse(readFileSync(snapshot, 'utf8')).events).toHaveLength(1);
  });

  it('a port in use exits non-zero naming the port and --port', async () => {
    const squatter = createServer();
    await new Promise<void>((ok) => squatter.listen(0, '127.0.0.1', ok));
    const port = (squatter.address() as AddressInfo).port;
    try {
      const child = spawn(process.execPath, [BIN, 'emulator', '--port', String(port)], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c) => (err += c));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(1);
      expect(err.trim()).toBe(`Could not start the Klaviyo sandbox: port ${port} on 127.0.0.1 is already in use; choose another with --port, or stop the process using it`);
    } finally {
      await new Promise((ok) => squatter.close(ok));
    }
  });

  it('exits non-zero on a malformed --fault', async () => {
    const child = spawn(process.execPath, [BIN, 'emulator', '--port', '0', '--fault', '{oops'], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toContain('--fault');
  });
});

// The real process: `klaviyo-relay serve` killed with SIGKILL mid-forwarding, restarted on the same data dir.
// Everything must arrive in the sandbox exactly once, and the private key must never show in output or answers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { ADMIN_TOKEN, PRIVATE_KEY, PUBLIC_KEY, SHOP, baseConfig, batch, postEvents, wireEvent } from './helpers.js';
import { killRelays, spawnRelay, type RelayProcess } from './spawn.js';
import { waitFor } from '../support/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-crash-'));
const configPath = join(dir, 'relay.config.json');
let emulator: Emulator;
const running: RelayProcess[] = [];

beforeAll(() => writeFileSync(configPath, JSON.stringify(baseConfig)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await killRelays(running.splice(0));
  await emulator?.close();
});

function serve(dataDir: string): RelayProcess {
  const relay = spawnRelay(['serve', '--config', configPath, '--port', '0', '--host', '127.0.0.1'], {
    KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, RELAY_ADMIN_TOKEN: ADMIN_TOKEN, KLAVIYO_BASE_URL: emulator.url, RELAY_DATA_DIR: dataDir, LOG_LEVEL: 'debug',
  });
  running.push(relay);
  return relay;
}

const bulkPath = '/api/event-bulk-create-jobs';

describe('crash and restart', () => {
  it('kill -9 mid-forwarding, restart: forwarding resumes at start and every event arrives once', async () => {
    emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 10 });
    // Slow jobs keep several in flight when the process dies.
    emulator.faults.add({ path: bulkPath, latencyMs: 400 });
    const dataDir = join(dir, 'crash-data');
    const first = serve(dataDir);
    const url = await first.url;

    const events = Array.from({ length: 3000 }, (_, i) => wireEvent({ profile: { anonymous_id: `v${i % 40}`, email: `v${i % 40}@example.com` } }));
    for (let i = 0; i < events.length; i += 100) {
      const res = await postEvents(url, batch(events.slice(i, i + 100)), { origin: SHOP });
      expect(res.status).toBe(202);
    }
    await waitFor(() => emulator.requests.some((r) => r.path === bulkPath && r.status === 202), { timeoutMs: 15_000, what: 'a first bulk job' });
    first.child.kill('SIGKILL');
    await first.exited;
    emulator.state.flushJobs();
    const beforeRestart = emulator.state.events({ metric: 'Placed Order' }).length;
    expect(beforeRestart).toBeLessThan(events.length); // really mid-forwarding

    const requestsBefore = emulator.requests.length;
    const second = serve(dataDir);
    // The new process frees the dead one's claims as it starts: it says so, then sends them.
    await waitFor(() => /resuming \d+ outbox item\(s\) left in flight/.test(second.output()), { timeoutMs: 15_000, what: "the restart to free the dead run's claims" });
    await second.url;
    await waitFor(() => emulator.requests.slice(requestsBefore).find((r) => r.path === bulkPath), { timeoutMs: 15_000, what: 'forwarding to resume' });

    await waitFor(() => {
      emulator.state.flushJobs();
      return emulator.state.events({ metric: 'Placed Order' }).length >= events.length;
    }, { timeoutMs: 30_000, what: 'all events in the sandbox' });
    const ids = emulator.state.events({ metric: 'Placed Order' }).map((e) => e.unique_id);
    expect(ids.length).toBe(events.length);
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.unique_id)));

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const db = new Database(join(dataDir, 'relay.sqlite3'), { readonly: true });
    expect(db.prepare('SELECT status, COUNT(*) AS n FROM forward_outbox GROUP BY status').all()).toEqual([{ status: 'sent', n: events.length }]);
    db.close();
    for (const relay of [first, second]) expect(relay.output()).not.toContain(PRIVATE_KEY);
  });
});

describe('secrecy', () => {
  it('the private key never appears in any answer or log line, whatever Klaviyo answers', async () => {
    emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 10 });
    emulator.faults.add({ path: '/api/events', status: 400, count: 1 });
    emulator.faults.add({ path: '/api/events', status: 429, retryAfter: 0, count: 1 });
    emulator.faults.add({ path: '/api/events', status: 503, count: 1 });
    emulator.faults.add({ path: '/api/events', drop: true, count: 1 });
    const relay = serve(join(dir, 'secret-data'));
    const url = await relay.url;

    const bodies: string[] = [];
    const record = async (res: Response) => bodies.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`);
    await record(await fetch(`${url}/v1/config?key=${PUBLIC_KEY}`, { headers: { origin: SHOP } }));
    await record(await fetch(`${url}/v1/config?key=nope`));
    await record(await fetch(`${url}/healthz`));
    await record(await postEvents(url, batch([wireEvent(), wireEvent(), wireEvent({ type: 'identify', name: undefined })]), { origin: SHOP }));
    await record(await postEvents(url, batch([wireEvent({ profile: {} })])));
    await record(await postEvents(url, '{bad json'));
    await record(await postEvents(url, batch([wireEvent()]), { origin: 'https://evil.example' }));
    await record(await fetch(`${url}/v1/admin/audiences`, { headers: { authorization: `Bearer ${PRIVATE_KEY}` } }));
    await record(await fetch(`${url}/v1/admin/audiences`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    for (let i = 0; i < 3; i++) await postEvents(url, batch([wireEvent()]));

    // Let every fault fire and be logged.
    await waitFor(() => emulator.requests.filter((r) => r.path === '/api/events').length >= 6, { timeoutMs: 20_000, what: 'faults to fire' });
    await waitFor(() => /Klaviyo refused 1 item/.test(relay.output()) && /Klaviyo 503/.test(relay.output()) && /rate-limited/.test(relay.output()), { timeoutMs: 20_000, what: 'the event faults to be logged' });
    // A refused key pauses all forwarding, so it comes last.
    emulator.faults.add({ path: '/api/profile-import', status: 403, count: 1 });
    await postEvents(url, batch([wireEvent({ type: 'identify', name: undefined, profile: { anonymous_id: 'a-403', email: 'key@example.com' } })]));
    await waitFor(() => /Klaviyo 403/.test(relay.output()), { timeoutMs: 20_000, what: 'the refused key to be logged' });
    relay.child.kill('SIGTERM');
    await relay.exited;

    const output = relay.output();
    if (process.env.DEBUG_RELAY) console.log(output);
    expect(bodies.join('\n')).not.toContain(PRIVATE_KEY);
    expect(output).not.toContain(PRIVATE_KEY);
    expect(output).not.toContain(ADMIN_TOKEN);
  });
});

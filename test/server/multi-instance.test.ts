// Two real `klaviyo-relay serve` processes on one PostgreSQL database, no balancer: load posted to both in turn,
// the forwarding instance killed with SIGKILL mid-stream. Every accepted event must reach the sandbox once, no
// event may be sent by both instances while both are alive, the survivor must take the forwarding over, and
// nothing may be written to a SQLite data folder.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startRecordingProxy, type RecordingProxy } from '../support/recording-proxy.js';
import { ADMIN_TOKEN, PRIVATE_KEY, SHOP, baseConfig, batch, postEvents, wireEvent } from './helpers.js';
import { killRelays, spawnRelay, type RelayProcess } from './spawn.js';
import { waitFor } from '../support/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'relay-multi-'));
const configPath = join(dir, 'relay.config.json');
const dataDir = join(dir, 'must-stay-empty');
let database: TestDatabase;
let emulator: Emulator;
let proxy: RecordingProxy;
const running: RelayProcess[] = [];

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify(baseConfig));
  database = await createTestDatabase();
  emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 10 });
  // Slow bulk jobs keep requests in flight when the forwarder dies.
  emulator.faults.add({ path: '/api/event-bulk-create-jobs', latencyMs: 300 });
  proxy = await startRecordingProxy(emulator.url);
}, 60_000);

afterAll(async () => {
  await killRelays(running);
  await proxy?.close();
  await emulator?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function serve(): RelayProcess {
  const relay = spawnRelay(['serve', '--config', configPath, '--port', '0', '--host', '127.0.0.1'], {
    DATABASE_URL: database.url, RELAY_DATA_DIR: dataDir, RELAY_FORWARD_LEASE_MS: '3000',
    KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, RELAY_ADMIN_TOKEN: ADMIN_TOKEN, KLAVIYO_BASE_URL: proxy.url,
  });
  running.push(relay);
  return relay;
}

const LEADING = /this instance now forwards the outbox/;
const BULK = '/api/event-bulk-create-jobs';
const accepted = (r: { status: number }) => r.status >= 200 && r.status < 300;

describe('two instances on one PostgreSQL database', () => {
  it('deliver every accepted event once, one forwarder at a time, even when the forwarder is killed mid-stream', async () => {
    const a = serve();
    const b = serve();
    const urls = new Map([[a, await a.url], [b, await b.url]]);
    expect(a.output()).toContain('data postgres://');
    const leader = await waitFor(() => [a, b].find((r) => LEADING.test(r.output())), { timeoutMs: 15_000, what: 'one instance to lead forwarding' });
    const survivor = leader === a ? b : a;

    const acceptedIds: string[] = [];
    const post = async (relay: RelayProcess, events: ReturnType<typeof wireEvent>[]) => {
      const res = await postEvents(urls.get(relay)!, batch(events), { origin: SHOP });
      expect(res.status).toBe(202);
      expect((await res.json()).accepted).toBe(events.length);
      acceptedIds.push(...events.map((e) => e.unique_id));
    };
    const someEvents = (n: number, offset: number) =>
      Array.from({ length: n }, (_, i) => wireEvent({ profile: { anonymous_id: `v${(offset + i) % 60}`, email: `v${(offset + i) % 60}@example.com` } }));

    // Phase 1: both alive, load alternately to each.
    for (let i = 0; i < 30; i++) await post(i % 2 ? a : b, someEvents(50, i * 50));
    await waitFor(() => proxy.requests.some((r) => r.path === BULK && accepted(r)), { timeoutMs: 15_000, what: 'a first accepted bulk job' });
    expect(LEADING.test(survivor.output())).toBe(false); // only one instance forwards

    // What is recorded as delivered just before the forwarder dies must never be sent again.
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    const sentNow = async () => new Set((await db.query(
      "SELECT e.unique_id FROM forward_outbox o JOIN events e ON e.id = o.event_id WHERE o.status = 'sent'")).rows.map((r) => r.unique_id as string));
    const deliveredBeforeKill = await waitFor(async () => {
      const ids = await sentNow();
      return ids.size > 0 && ids;
    }, { timeoutMs: 15_000, what: 'a first delivery to be recorded' });

    // Kill the forwarder while it has jobs in flight.
    leader.child.kill('SIGKILL');
    await leader.exited;
    const killedAt = Date.now();
    const left = (await db.query("SELECT COUNT(*)::int AS n FROM forward_outbox WHERE status <> 'sent'")).rows[0].n;
    await db.end();
    expect(left).toBeGreaterThan(0); // really mid-stream

    // Phase 2: the survivor keeps accepting, takes the forwarding over and sends everything.
    for (let i = 30; i < 45; i++) await post(survivor, someEvents(50, i * 50));
    await waitFor(() => LEADING.test(survivor.output()), { timeoutMs: 20_000, what: 'the survivor to take forwarding over' });
    const delivered = await waitFor(() => {
      emulator.state.flushJobs();
      const ids = emulator.state.events({ metric: 'Placed Order' }).map((e) => e.unique_id);
      return ids.length >= acceptedIds.length && ids;
    }, { timeoutMs: 60_000, what: 'every accepted event in the sandbox' });

    // Every accepted event reached the sandbox exactly once.
    expect(delivered.length).toBe(acceptedIds.length);
    expect(new Set(delivered)).toEqual(new Set(acceptedIds));

    // While both were alive, no event went out in two accepted requests.
    const sentBeforeKill = proxy.requests.filter((r) => r.startedAt < killedAt && accepted(r)).flatMap((r) => r.uniqueIds);
    expect(sentBeforeKill.length).toBeGreaterThan(0);
    expect(new Set(sentBeforeKill).size).toBe(sentBeforeKill.length);
    // After the kill, only what the dead instance had in flight may go out a second time (Klaviyo keeps the first).
    const sentAfterKill = proxy.requests.filter((r) => r.startedAt >= killedAt && accepted(r)).flatMap((r) => r.uniqueIds);
    expect(new Set(sentAfterKill).size).toBe(sentAfterKill.length);
    expect(sentAfterKill.filter((id) => deliveredBeforeKill.has(id))).toEqual([]);

    // The shared outbox settles at all sent: the dead instance's claims (delivered or not, it cannot say) are
    // taken over once their lease lapses. Nothing was written to a SQLite data folder.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const outbox = async () => (await client.query('SELECT status, COUNT(*)::int AS n FROM forward_outbox GROUP BY status')).rows;
    const settled = await waitFor(async () => {
      const rows = await outbox();
      return rows.length === 1 && rows[0].status === 'sent' && rows;
    }, { timeoutMs: 30_000, what: 'the outbox to settle' });
    await client.end();
    expect(settled).toEqual([{ status: 'sent', n: acceptedIds.length }]);
    expect(existsSync(dataDir)).toBe(false);

    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
    for (const relay of [a, b]) expect(relay.output()).not.toContain(PRIVATE_KEY);
  }, 120_000);
});

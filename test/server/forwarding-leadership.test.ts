// Forwarding with two servers on one PostgreSQL database: only the elected forwarder sends, and when its database
// session dies mid-send it stops, frees its claims, and the other server takes over and delivers everything.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import type { RelayServer } from '../../src/server/index.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { waitFor } from '../support/wait-for.js';
import { PRIVATE_KEY, SHOP, batch, postEvents, startServer, wireEvent } from './helpers.js';

let database: TestDatabase;
let emulator: Emulator;
const servers: RelayServer[] = [];
let gate: Server | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
}, 60_000);
afterAll(() => database?.drop());
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await emulator?.close();
  gate?.closeAllConnections();
  await new Promise((done) => (gate ? gate.close(done) : done(undefined)));
  gate = undefined;
});

async function instance({ leaseMs = 2_000, leaderRetryMs = 100, klaviyoBaseUrl = emulator.url } = {}) {
  const started = await startServer({}, {
    databaseUrl: database.url, klaviyoBaseUrl, forwardIntervalMs: 50, forwardLeaseMs: leaseMs,
    forwarder: { leaderRetryMs }, klaviyoRetry: { baseMs: 50, capMs: 200 },
  });
  servers.push(started.server);
  return started;
}

async function query(sql: string) {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * A Klaviyo address that never answers a send: each POST is held open, and noted as given up once its sender closes
 * it. GETs pass through to the sandbox.
 */
async function holdingSends(): Promise<{ url: string; held: { givenUp: boolean }[] }> {
  const held: { givenUp: boolean }[] = [];
  gate = createServer(async (req, res) => {
    if (req.method !== 'POST') {
      const answer = await fetch(emulator.url + req.url, { headers: { authorization: req.headers.authorization!, revision: String(req.headers.revision) } });
      return void res.writeHead(answer.status, { 'content-type': 'application/vnd.api+json' }).end(await answer.text());
    }
    const send = { givenUp: false };
    held.push(send);
    res.on('close', () => (send.givenUp = true));
  });
  await new Promise<void>((listening) => gate!.listen(0, '127.0.0.1', listening));
  return { url: `http://127.0.0.1:${(gate.address() as AddressInfo).port}`, held };
}

const delivered = () => {
  emulator.state.flushJobs();
  return emulator.state.events({ metric: 'Placed Order' }).map((e) => e.unique_id);
};

describe('forwarder leadership on PostgreSQL', () => {
  it('only the elected server sends; the other takes over when the leader\'s session dies mid-send', async () => {
    emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 5 });
    const a = await instance();
    const b = await instance();
    expect(a.server.forwarder.stats().leader).toBe(true);
    expect(b.server.forwarder.stats().leader).toBe(false);

    // Events posted to the follower are forwarded by the leader.
    const first = [wireEvent(), wireEvent(), wireEvent()];
    expect((await postEvents(b.url, batch(first), { origin: SHOP })).status).toBe(202);
    // The leader counts a send once its answer is recorded, a moment after the sandbox stored it: wait on the count.
    await waitFor(() => a.server.forwarder.stats().sent === 3, { what: 'the leader to forward the follower\'s events' });
    expect(delivered()).toHaveLength(3);
    await b.server.forwarder.flush();
    expect(b.server.forwarder.stats().requests).toEqual({ bulk: 0, event: 0, profile: 0 });

    // Hold the next sends in the sandbox, then kill the leader's lock session while it waits on them.
    emulator.faults.add({ path: '/api/events', latencyMs: 1_500 });
    const second = [wireEvent(), wireEvent()];
    expect((await postEvents(a.url, batch(second), { origin: SHOP })).status).toBe(202);
    await waitFor(async () => (await query("SELECT COUNT(*)::int AS n FROM forward_outbox WHERE status = 'inflight'"))[0].n > 0, { what: 'the leader to claim' });
    await query(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1802270329 AND objid = 2 AND granted`);

    // Nothing is lost, and one of the two leads again (A may win the lock back).
    await waitFor(() => delivered().length === 5, { timeoutMs: 15_000, what: 'every event in the sandbox' });
    expect(new Set(delivered())).toEqual(new Set([...first, ...second].map((e) => e.unique_id)));
    const leaders = () => [a, b].filter((s) => s.server.forwarder.stats().leader).length;
    await waitFor(() => leaders() === 1, { what: 'one leader again' });
    await waitFor(async () => (await query('SELECT status, COUNT(*)::int AS n FROM forward_outbox GROUP BY status')).length === 1, { what: 'the outbox to settle' });
    expect(await query('SELECT status, COUNT(*)::int AS n FROM forward_outbox GROUP BY status')).toEqual([{ status: 'sent', n: 5 }]);

    // A leader that stops hands over at once: the other server forwards what is posted next.
    emulator.faults.clear();
    const [leader, follower] = a.server.forwarder.stats().leader ? [a, b] : [b, a];
    await leader.server.close();
    await waitFor(() => follower.server.forwarder.stats().leader, { what: 'the follower to take over' });
    const third = [wireEvent(), wireEvent()];
    expect((await postEvents(follower.url, batch(third), { origin: SHOP })).status).toBe(202);
    await waitFor(() => delivered().length === 7, { what: 'the new leader to forward' });
  });

  it('a forwarder whose session dies aborts its sends and frees its claims at once, so the next one need not wait out the lease', async () => {
    emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 5 });
    // A long lease: if the claims were left to lapse, the other server could not send for a minute. The first
    // server's sends never get an answer, so only an abort ends them.
    const klaviyo = await holdingSends();
    const a = await instance({ leaseMs: 60_000, leaderRetryMs: 60_000, klaviyoBaseUrl: klaviyo.url });
    const b = await instance({ leaseMs: 60_000, leaderRetryMs: 100 });
    expect(a.server.forwarder.stats().leader).toBe(true);
    await query("DELETE FROM forward_outbox WHERE status = 'sent'"); // what an earlier test left

    const events = [wireEvent(), wireEvent()];
    expect((await postEvents(a.url, batch(events), { origin: SHOP })).status).toBe(202);
    await waitFor(async () => (await query("SELECT COUNT(*)::int AS n FROM forward_outbox WHERE status = 'inflight'"))[0].n === 2, { what: 'the leader to claim' });
    await waitFor(() => klaviyo.held.length > 0, { what: 'the leader to be sending' });
    await query(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1802270329 AND objid = 2 AND granted`);

    // B takes over and sends both items itself, long before A's 60 s claims could have lapsed.
    await waitFor(() => klaviyo.held.every((send) => send.givenUp), { what: 'the old leader to abort its sends' });
    await waitFor(() => b.server.forwarder.stats().sent === 2, { timeoutMs: 15_000, what: 'the new leader to send the freed items' });
    expect(a.server.forwarder.stats()).toMatchObject({ leader: false, sent: 0 });
    await waitFor(() => delivered().length === 2, { what: 'both events in the sandbox' });
  });
});

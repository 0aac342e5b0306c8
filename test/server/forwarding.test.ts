// Forwarding `server` items to the Klaviyo sandbox over real HTTP: batching, retries, refusals, stitching.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import type { RelayServer } from '../../src/server/index.js';
import { ADMIN_TOKEN, PRIVATE_KEY, batch, postEvents, startServer, wireEvent } from './helpers.js';
import { waitFor } from '../support/wait-for.js';
import { fakeClock } from '../support/fake-clock.js';

let emulator: Emulator;
let server: RelayServer;
let url: string;

beforeEach(async () => {
  emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 20 });
});
afterEach(async () => {
  await server?.close();
  await emulator.close();
});

async function start(forwardIntervalMs = 0, options: Parameters<typeof startServer>[1] = {}) {
  ({ server, url } = await startServer({}, { klaviyoBaseUrl: emulator.url, forwardIntervalMs, klaviyoRetry: { baseMs: 200 }, ...options }));
}

const apiRequests = (path: string) => emulator.requests.filter((r) => r.path === path);
const sandboxIds = () => {
  emulator.state.flushJobs();
  return emulator.state.events({ metric: 'Placed Order' }).map((e) => e.unique_id);
};

/** The forwarder's log lines from now on, as the server's logger receives them. */
function recordLogs(relay: RelayServer): { level: string; message: string }[] {
  const lines: { level: string; message: string }[] = [];
  for (const level of ['info', 'warn', 'error'] as const) relay.app.log[level] = ((_fields: unknown, message: string) => void lines.push({ level, message })) as never;
  return lines;
}

/** Each expected id exactly once in the sandbox. */
function expectDeliveredOnce(ids: string[]) {
  const got = sandboxIds();
  expect(got.length).toBe(ids.length);
  expect(new Set(got)).toEqual(new Set(ids));
}

describe('forwarding to Klaviyo', () => {
  it('sends a backlog as bulk jobs grouped by profile, with the key and revision, and marks it sent', async () => {
    await start();
    const events = Array.from({ length: 60 }, (_, i) => wireEvent({ profile: { anonymous_id: `a${i % 3}`, email: `p${i % 3}@example.com` } }));
    for (let i = 0; i < 60; i += 20) expect((await postEvents(url, batch(events.slice(i, i + 20)))).status).toBe(202);
    await server.forwarder.flush();

    const jobs = apiRequests('/api/event-bulk-create-jobs');
    expect(jobs.map((r) => r.status)).toEqual([202]);
    const entries = (jobs[0]!.body as any).data.attributes['events-bulk-create'].data;
    expect(entries).toHaveLength(3);
    expect(apiRequests('/api/events')).toHaveLength(0);
    expect((await server.store.counts()).outbox).toMatchObject({ sent: 60, pending: 0, inflight: 0, failed: 0 });
    expectDeliveredOnce(events.map((e) => e.unique_id));
  });

  it('sends a trickle one by one to /api/events and forwards client items never', async () => {
    await start();
    const server1 = wireEvent();
    const server2 = wireEvent();
    await postEvents(url, batch([server1, wireEvent({ route: 'client' }), wireEvent({ route: 'off' }), server2]));
    await server.forwarder.flush();
    expect(apiRequests('/api/events').map((r) => r.status)).toEqual([202, 202]);
    expect(apiRequests('/api/event-bulk-create-jobs')).toHaveLength(0);
    expectDeliveredOnce([server1.unique_id, server2.unique_id]);
  });

  it('survives 429 then 503 then recovers: nothing lost, nothing twice, Retry-After honoured', async () => {
    // Time is the test's: each flush sends only what is due at the clock's "now".
    const clock = fakeClock();
    await start(0, { clock });
    emulator.faults.add({ path: '/api/event-bulk-create-jobs', status: 429, retryAfter: 1, count: 1 });
    emulator.faults.add({ path: '/api/event-bulk-create-jobs', status: 503, count: 2 });
    const events = Array.from({ length: 40 }, () => wireEvent());
    await postEvents(url, batch(events));

    await server.forwarder.flush();
    const t429 = clock.now();
    const [afterThrottle] = await server.store.listOutbox({ status: 'pending', limit: 1 });
    expect(afterThrottle!.next_attempt_at).toBe(t429 + 1000); // Retry-After: 1
    clock.set(t429 + 999);
    await server.forwarder.flush();
    expect(apiRequests('/api/event-bulk-create-jobs')).toHaveLength(1); // not a millisecond early

    for (let rounds = 0; (await server.store.counts()).outbox.sent < 40; rounds++) {
      expect(rounds).toBeLessThan(5);
      const [next] = await server.store.listOutbox({ status: 'pending', limit: 1 });
      clock.set(next!.next_attempt_at);
      await server.forwarder.flush();
    }
    const jobs = apiRequests('/api/event-bulk-create-jobs');
    expect(jobs.map((r) => r.status)).toEqual([429, 503, 503, 202]);
    expectDeliveredOnce(events.map((e) => e.unique_id));
    expect(emulator.internals.state.events.metrics.get('Placed Order')!.duplicates).toBe(0);
    const stats = server.forwarder.stats();
    expect(stats.sent).toBe(40);
    expect(stats.failed).toBe(0);
  });

  it('never retries sooner than 250 ms, even when Klaviyo says Retry-After: 0', async () => {
    // https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling: a 429 carries Retry-After in seconds;
    // "0" must not become a tight loop against a throttled endpoint. A frozen clock makes "sooner" exact.
    const clock = fakeClock();
    await start(0, { clock });
    emulator.faults.add({ path: '/api/events', status: 429, retryAfter: 0, count: 5 });
    await postEvents(url, batch([wireEvent()]));
    await server.forwarder.flush();
    expect(apiRequests('/api/events').map((r) => r.status)).toEqual([429]);
    const [row] = await server.store.listOutbox({ status: 'pending' });
    expect(row!.next_attempt_at).toBe(clock.now() + 250);
    clock.advance(249);
    await server.forwarder.flush();
    expect(apiRequests('/api/events')).toHaveLength(1);
    clock.advance(1);
    await server.forwarder.flush();
    expect(apiRequests('/api/events')).toHaveLength(2);
  });

  it("stays inside Klaviyo's per-account fixed windows: 25 bulk jobs at 10/s burst meet no 429", async () => {
    // https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling: per account, fixed 1 s and 60 s windows.
    // The sandbox enforces bulk_create_events' 10/s; one event per job makes 25 jobs, more than two bursts.
    await start(0, { forwarder: { maxEventsPerJob: 1, trickle: 0 } });
    const events = Array.from({ length: 25 }, (_, i) => wireEvent({ profile: { anonymous_id: `v${i}`, email: `v${i}@example.com` } }));
    await postEvents(url, batch(events));
    await server.forwarder.flush();
    const jobs = apiRequests('/api/event-bulk-create-jobs');
    expect(jobs).toHaveLength(25);
    expect(jobs.filter((r) => r.status === 429)).toEqual([]);
    expectDeliveredOnce(events.map((e) => e.unique_id));
  });

  it('retries a dropped connection and a timeout-like failure without losing the item', async () => {
    await start(100);
    emulator.faults.add({ path: '/api/events', drop: true, count: 1 });
    const ev = wireEvent();
    await postEvents(url, batch([ev]));
    await waitFor(async () => (await server.store.counts()).outbox.sent === 1, { what: 'sent after a dropped connection' });
    expectDeliveredOnce([ev.unique_id]);
  });

  it('retries a request that timed out, with the same unique_id, and it counts once', async () => {
    await start(100, { klaviyoTimeoutMs: 300 });
    // Held far past the 300 ms timeout, so the first attempt can only end by timing out.
    emulator.faults.add({ path: '/api/events', latencyMs: 60_000, count: 1 });
    const ev = wireEvent();
    await postEvents(url, batch([ev]));
    await waitFor(async () => (await server.store.counts()).outbox.sent === 1, { what: 'sent after a timeout' });
    const [row] = await server.store.listOutbox();
    expect(row!.attempts).toBe(2);
    // The timed-out original was abandoned mid-request, so it never reaches the sandbox's handler here; were it to
    // land late at Klaviyo, the shared unique_id makes it count once (the sandbox's own event tests pin that).
    expect(apiRequests('/api/events').filter((r) => r.status === 202)).toHaveLength(1);
    expectDeliveredOnce([ev.unique_id]);
  });

  it("marks a refused event failed with Klaviyo's detail and does not retry it", async () => {
    await start();
    emulator.faults.add({ path: '/api/events', status: 400, count: 1 });
    const ev = wireEvent();
    await postEvents(url, batch([ev]));
    await server.forwarder.flush();
    await server.forwarder.flush();
    const [failed] = await server.store.listOutbox({ status: 'failed' });
    expect(failed).toMatchObject({ unique_id: ev.unique_id, attempts: 1 });
    expect(failed!.last_error).toMatch(/^Klaviyo 400: Injected fault/);
    expect(apiRequests('/api/events')).toHaveLength(1);

    // An operator sees why, fixes the cause, and resends through the admin API.
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const listed = await (await fetch(`${url}/v1/admin/outbox?status=failed`, { headers: auth })).json();
    expect(listed.counts.failed).toBe(1);
    expect(listed.items[0]).toMatchObject({ unique_id: ev.unique_id, last_error: expect.stringMatching(/Injected fault/) });
    expect((await fetch(`${url}/v1/admin/outbox`)).status).toBe(401);
    const retried = await fetch(`${url}/v1/admin/outbox/retry-failed`, { method: 'POST', headers: auth });
    expect(await retried.json()).toEqual({ requeued: 1 });
    await server.forwarder.flush();
    expectDeliveredOnce([ev.unique_id]);
  });

  it('retries a refused bulk job event by event so only bad events fail', async () => {
    await start();
    emulator.faults.add({ path: '/api/event-bulk-create-jobs', status: 400, count: 1 });
    emulator.faults.add({ path: '/api/events', status: 400, count: 1 }); // the first single is "bad"
    const events = Array.from({ length: 15 }, () => wireEvent());
    await postEvents(url, batch(events));
    await server.forwarder.flush();
    expect(apiRequests('/api/event-bulk-create-jobs').map((r) => r.status)).toEqual([400]);
    expect(apiRequests('/api/events')).toHaveLength(15);
    expect((await server.store.counts()).outbox).toMatchObject({ sent: 14, failed: 1 });
    expect(sandboxIds()).toHaveLength(14);
  });

  it('imports server identifies as profiles, fails an anonymous-only one with a reason, and stitches earlier events', async () => {
    ({ server, url } = await startServer(
      { workflow: { default: 'server' } },
      { klaviyoBaseUrl: emulator.url, forwardIntervalMs: 0 },
    ));
    const early = wireEvent({ profile: { anonymous_id: 'visitor-7' } }); // tracked before the visitor identified
    const identify = wireEvent({ type: 'identify', name: undefined, profile: { anonymous_id: 'visitor-7', email: 'grace@example.com', first_name: 'Grace' } });
    const anonymous = wireEvent({ type: 'identify', name: undefined, profile: { anonymous_id: 'visitor-8', first_name: 'Nobody' } });
    await postEvents(url, batch([early, identify, anonymous]));
    await server.forwarder.flush();

    const imports = apiRequests('/api/profile-import');
    expect(imports.map((r) => r.status)).toEqual([201]);
    expect((imports[0]!.body as any).data.attributes).toEqual({ email: 'grace@example.com', first_name: 'Grace' });
    const [failed] = await server.store.listOutbox({ status: 'failed' });
    expect(failed!.unique_id).toBe(anonymous.unique_id);
    expect(failed!.last_error).toMatch(/needs email, phone_number or external_id/);

    const [event] = emulator.state.events({ metric: 'Placed Order' });
    const profile = emulator.state.profiles().find((p) => p.id === event!.profileId)!;
    expect(profile.email).toBe('grace@example.com');
  });

  it('pauses forwarding when Klaviyo refuses the key, keeps the items, and says why on /healthz and in the outbox view', async () => {
    await emulator.close();
    emulator = await startEmulator({ port: 0, privateKey: 'pk_someOtherAccountKey0123456789', jobDelayMs: 20 });
    const clock = fakeClock();
    await start(0, { clock });
    await postEvents(url, batch([wireEvent(), wireEvent({ type: 'identify', name: undefined })]));
    await server.forwarder.flush();
    // Both requests of the round were tried; after that nothing is sent until the pause ends.
    expect(emulator.requests.map((r) => r.status)).toEqual([403, 403]);
    const rows = await server.store.listOutbox({ status: 'pending' });
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.next_attempt_at).toBe(clock.now() + 60_000);
      expect(row.last_error).toMatch(/^(single events|profile imports): Klaviyo 403: .*Check KLAVIYO_PRIVATE_KEY/);
      expect(row.last_error).not.toContain(PRIVATE_KEY);
    }
    await postEvents(url, batch([wireEvent()]));
    await server.forwarder.flush();
    expect(emulator.requests).toHaveLength(2); // paused: the new item waits too

    const health = await (await fetch(`${url}/healthz`)).json();
    // Another account's key is refused alike everywhere: both operations are named with the one refusal.
    expect(health).toMatchObject({ status: 'degraded', forwarding: expect.stringMatching(/^paused: (single events, profile imports|profile imports, single events): Klaviyo 403: [^;]*\. Check KLAVIYO_PRIVATE_KEY/) });
    expect(server.forwarder.stats().paused).toMatchObject({ status: 403, retryAt: new Date(clock.now() + 60_000).toISOString() });
    const view = await (await fetch(`${url}/v1/admin/outbox?status=pending`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    expect(view.forwarding).toMatchObject({ state: 'paused', reason: expect.stringContaining('403') });
    expect(view.counts.failed).toBe(0);
  });

  // A key created without profiles:write: Klaviyo answers 403 permission_denied on profile imports and accepts
  // events (https://developers.klaviyo.com/en/docs/authenticate_). Only the refused operation may wait.
  it('a key lacking one scope pauses only that operation: events keep flowing while identifies wait, and fixing the key resumes them', async () => {
    await emulator.close();
    emulator = await startEmulator({ port: 0, privateKey: PRIVATE_KEY, jobDelayMs: 20, privateKeyScopes: ['accounts:read', 'events:write'] });
    const clock = fakeClock();
    await start(0, { clock });
    const logged = recordLogs(server);
    const t0 = clock.now();
    const identify = (email: string) => wireEvent({ type: 'identify', name: undefined, profile: { email } });
    const delivered: string[] = [];
    const sendEvents = async (n: number, ...identifies: ReturnType<typeof wireEvent>[]) => {
      const events = Array.from({ length: n }, () => wireEvent());
      delivered.push(...events.map((e) => e.unique_id));
      await postEvents(url, batch([...events, ...identifies]));
      await server.forwarder.flush();
    };
    const health = async () => (await fetch(`${url}/healthz`)).json();

    const grace = identify('grace@example.com');
    await sendEvents(2, grace);
    expect(apiRequests('/api/events').map((r) => r.status)).toEqual([202, 202]);
    expect(apiRequests('/api/profile-import').map((r) => r.status)).toEqual([403]);
    const [waiting] = await server.store.listOutbox({ status: 'pending' });
    expect(waiting).toMatchObject({ unique_id: grace.unique_id, next_attempt_at: t0 + 60_000 });
    expect(waiting!.last_error).toMatch(/^profile imports: Klaviyo 403: You do not have permission to perform this action\. Check KLAVIYO_PRIVATE_KEY and its scopes/);
    const pausedNow = {
      status: 403,
      since: new Date(t0).toISOString(),
      retryAt: new Date(t0 + 60_000).toISOString(),
      reason: expect.stringMatching(/^profile imports: Klaviyo 403: /),
      operations: [{ operationId: 'create_or_update_profile', label: 'profile imports', status: 403, retryAt: new Date(t0 + 60_000).toISOString() }],
    };
    expect(server.forwarder.stats().paused).toEqual({ ...pausedNow, operations: [expect.objectContaining(pausedNow.operations[0])] });
    expect(await health()).toEqual({ status: 'degraded', store: 'ok', forwarding: expect.stringMatching(/^paused: profile imports: Klaviyo 403: .*KLAVIYO_PRIVATE_KEY/), retry_at: new Date(t0 + 60_000).toISOString() });

    // Within the pause: events are sent at once and do not end it; a new identify waits for the same retry, unsent.
    clock.advance(10_000);
    const lin = identify('lin@example.com');
    await sendEvents(3, lin);
    expect(apiRequests('/api/events')).toHaveLength(5);
    expect(apiRequests('/api/profile-import')).toHaveLength(1);
    expect((await server.store.listOutbox({ status: 'pending' })).map((r) => [r.unique_id, r.next_attempt_at])).toEqual(
      expect.arrayContaining([[grace.unique_id, t0 + 60_000], [lin.unique_id, t0 + 60_000]]),
    );
    expect(server.forwarder.stats().paused).toMatchObject({ since: new Date(t0).toISOString(), retryAt: new Date(t0 + 60_000).toISOString() });
    expect((await health()).status).toBe('degraded');
    const view = await (await fetch(`${url}/v1/admin/outbox?status=pending`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    expect(view.forwarding).toEqual({ state: 'paused', reason: expect.stringMatching(/^profile imports: Klaviyo 403: /), retryAt: new Date(t0 + 60_000).toISOString() });

    // The retry (both identifies at once) is refused again: still paused, since unchanged, logged once; the
    // round's events still go.
    clock.set(t0 + 60_000);
    await sendEvents(1);
    expect(apiRequests('/api/profile-import').map((r) => r.status)).toEqual([403, 403, 403]);
    expect(server.forwarder.stats().paused).toMatchObject({ since: new Date(t0).toISOString(), retryAt: new Date(t0 + 120_000).toISOString() });

    // The key gets profiles:write: the next retry imports both identifies and forwarding is all on again.
    emulator.setPrivateKeyScopes(['accounts:read', 'events:write', 'profiles:write']);
    clock.set(t0 + 120_000);
    await sendEvents(1);
    expect(apiRequests('/api/profile-import').map((r) => r.status)).toEqual([403, 403, 403, 201, 201]);
    expect(server.forwarder.stats().paused).toBeNull();
    expect(await health()).toEqual({ status: 'ok', store: 'ok', forwarding: 'on' });
    expect((await server.store.counts()).outbox).toMatchObject({ sent: 9, pending: 0, failed: 0 });
    expectDeliveredOnce(delivered);
    // Every event went on its first try: the profile pause never held one back.
    expect(apiRequests('/api/events').map((r) => r.status)).toEqual(Array(7).fill(202));
    expect(logged.filter((l) => /paused:/.test(l.message))).toEqual([{ level: 'error', message: expect.stringMatching(/^profile imports paused: Klaviyo 403: .*other operations keep flowing/) }]);
    expect(logged.filter((l) => /resume/.test(l.message))).toEqual([{ level: 'info', message: 'profile imports resume: Klaviyo accepts the key again' }]);
  });

  it('a 401 (the key itself is wrong) pauses every operation; it resumes once Klaviyo accepts the key again, and /healthz says ok', async () => {
    const clock = fakeClock();
    await start(0, { clock });
    emulator.faults.add({ path: '/api/events', status: 401, count: 1 });
    const ev = wireEvent();
    await postEvents(url, batch([ev]));
    await server.forwarder.flush();
    expect(server.forwarder.forwarding()).toMatchObject({ state: 'paused', reason: expect.stringMatching(/^all operations: Klaviyo 401: /) });
    expect(server.forwarder.stats().paused!.operations).toMatchObject([{ operationId: '*', label: 'all operations', status: 401 }]);
    // An identify waits too, without a request: a 401 speaks for every operation.
    const identify = wireEvent({ type: 'identify', name: undefined, profile: { email: 'lin@example.com' } });
    await postEvents(url, batch([identify]));
    await server.forwarder.flush();
    expect(apiRequests('/api/profile-import')).toHaveLength(0);
    clock.advance(60_000);
    await server.forwarder.flush();
    expect(apiRequests('/api/events').map((r) => r.status)).toEqual([401, 202]);
    expect(apiRequests('/api/profile-import').map((r) => r.status)).toEqual([201]);
    expect(server.forwarder.stats().paused).toBeNull();
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok', store: 'ok', forwarding: 'on' });
    expectDeliveredOnce([ev.unique_id]);
  });
});

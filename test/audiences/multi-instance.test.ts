// Two companion servers (createServer) on one PostgreSQL database, each with its own connection pool, over HTTP:
// definitions saved through one are read through the other; Instant Syncs sent to both at once never overlap
// (one 202, one 409); the scheduler runs a due sync once, not once per instance.
// The sandbox holds import jobs until the test releases them (flushJobs), so a run stays in progress exactly as
// long as a test needs it to.
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { createServer, type RelayConfigInput } from '../../src/server/index.js';
import { openStore, type OpenedStore } from '../../src/server/store/open.js';
import type { SchedulerClock } from '../../src/server/audiences/index.js';
import { runLogStore, type RunLog } from '../../src/server/audiences/runs.js';
import type { AudienceStore } from '../../src/server/store/audience-types.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { waitFor } from '../support/wait-for.js';
import { manualClock, type ManualClock } from '../support/manual-clock.js';
import { PRIVATE_KEY } from './harness.js';

const HOLD_JOBS = 3_600_000;
const TOKEN = 'admin-token-for-multi-instance-tests';

let emu: Emulator;
let database: TestDatabase;
let dir: string;
/** The test's own view of the shared database, to read run rows. */
let observer: OpenedStore;

interface Instance {
  url: string;
  close(): Promise<void>;
}

/** One companion server (createServer) on the shared database: its own pool, routes and scheduler. */
async function startInstance(opts: { definitions?: unknown[]; clock?: SchedulerClock; scheduler?: boolean } = {}): Promise<Instance> {
  const server = await createServer(
    { publicKey: 'Ab12Cd', allowedOrigins: ['https://shop.example'], audiences: opts.definitions ?? [] } as RelayConfigInput,
    {
      databaseUrl: database.url, privateKey: PRIVATE_KEY, adminToken: TOKEN, klaviyoBaseUrl: emu.url, configDir: dir, forwardIntervalMs: 0,
      audiences: { scheduler: opts.scheduler ?? false, clock: opts.clock, tuning: { pollIntervalMs: 10, pollMaxMs: 20 } },
    },
  );
  const url = await server.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => server.close() };
}

const call = async (instance: Instance, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${instance.url}/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};

/** Let the sandbox finish held jobs until every run of `audience` has ended; returns the runs, newest first. */
const settled = (store: AudienceStore, audience: string, count: number) =>
  waitFor(async () => {
    emu.state.flushJobs();
    const runs = await runLogStore(store).list(audience);
    return runs.length === count && runs.every((r) => r.status !== 'running') && runs;
  }, { what: `${count} finished runs of ${audience}` });

const definition = (name: string, extra: Record<string, unknown> = {}) => ({
  name, source: { type: 'file', path: 'members.csv' }, list: { create: `List ${name}` },
  mapping: [{ from: 'email', to: 'email' }], ...extra,
});

beforeAll(async () => {
  emu = await startEmulator({ port: 0, rateLimits: false, jobDelayMs: HOLD_JOBS, privateKey: PRIVATE_KEY });
  database = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'relay-multi-'));
  observer = await openStore({ databaseUrl: database.url, dataDir: dir });
  writeFileSync(join(dir, 'members.csv'), 'email\n' + Array.from({ length: 30 }, (_, i) => `member${i}@example.com`).join('\n') + '\n');
});
afterAll(async () => {
  await emu?.close();
  await observer?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

let a: Instance;
let b: Instance;
afterEach(async () => {
  await a?.close();
  await b?.close();
  emu.state.flushJobs();
});

describe('two instances on one PostgreSQL database', () => {
  beforeEach(() => emu.reset());

  it('a definition saved through one instance is read, listed and synced through the other', async () => {
    [a, b] = await Promise.all([startInstance(), startInstance()]);
    const put = await call(a, 'PUT', '/audiences/shared', definition('shared'));
    expect(put.status).toBe(200);
    expect((await call(b, 'GET', '/audiences/shared')).body).toMatchObject({ name: 'shared', origin: 'api', definition: { list: { create: 'List shared' } } });
    expect((await call(b, 'GET', '/audiences')).body.audiences.map((x: { name: string }) => x.name)).toContain('shared');
    // A change through the second instance is what the first one reads next.
    expect((await call(b, 'PUT', '/audiences/shared', definition('shared', { list: { create: 'Renamed' } }))).status).toBe(200);
    expect((await call(a, 'GET', '/audiences/shared')).body.definition.list).toEqual({ create: 'Renamed' });
    // Logs written by a run on one instance are read through the other.
    expect((await call(b, 'POST', '/audiences/shared/sync')).status).toBe(202);
    const [run] = await settled(observer.audiences, 'shared', 1);
    expect(run).toMatchObject({ status: 'success', counts: { imported: 30 } });
    expect((await call(a, 'GET', '/audiences/shared/logs')).body.logs).toEqual([expect.objectContaining({ id: run.id, status: 'success' })]);
  });

  it('Instant Sync sent to both instances at the same moment: one run starts, the other answers 409', async () => {
    [a, b] = await Promise.all([startInstance(), startInstance()]);
    expect((await call(a, 'PUT', '/audiences/race', definition('race', { source: { type: 'file', path: 'race.csv' } }))).status).toBe(200);
    for (let round = 0; round < 3; round++) {
      // New members every round, so every run has an import job for the sandbox to hold.
      writeFileSync(join(dir, 'race.csv'), 'email\n' + Array.from({ length: 30 }, (_, i) => `round${round}-${i}@example.com`).join('\n') + '\n');
      const answers = await Promise.all([call(a, 'POST', '/audiences/race/sync'), call(b, 'POST', '/audiences/race/sync')]);
      expect(answers.map((r) => r.status).sort()).toEqual([202, 409]);
      const started = answers.find((r) => r.status === 202)!.body.run as RunLog;
      const refused = answers.find((r) => r.status === 409)!.body;
      expect(refused.error).toMatch(/already running/);
      // The refusal names the other instance's run when its log row is already written (it may be starting).
      expect([null, started.id]).toContain(refused.run?.id ?? null);
      // Both instances show it running while its import job is held.
      const seen = [await call(a, 'GET', '/audiences/race'), await call(b, 'GET', '/audiences/race')];
      expect(seen.map((r) => [r.body.running, r.body.last_run?.id, r.body.last_run?.status])).toEqual([[true, started.id, 'running'], [true, started.id, 'running']]);
      await settled(observer.audiences, 'race', round + 1);
    }
    const runs = await runLogStore(observer.audiences).list('race');
    // Never two at once: each run started after the previous one ended.
    for (let i = 1; i < runs.length; i++) expect(Date.parse(runs[i - 1].started_at)).toBeGreaterThanOrEqual(Date.parse(runs[i].ended_at!));
    expect(runs.map((r) => [r.status, r.counts.imported, r.counts.removed])).toEqual([['success', 30, 30], ['success', 30, 30], ['success', 30, 0]]);
  });

  it('the scheduler runs each due sync once across instances, not once per instance', async () => {
    const start = Date.parse('2026-06-01T00:00:00Z');
    const clocks: ManualClock[] = [manualClock(start), manualClock(start)];
    const defs = [definition('hourly', { refreshInterval: '1h' })];
    [a, b] = await Promise.all(clocks.map((clock) => startInstance({ definitions: defs, clock, scheduler: true })));
    await waitFor(() => clocks.every((c) => c.pending() === 1), { what: 'both schedulers to set their first timer' });

    // Both instances' timers fire together: one run.
    for (const c of clocks) c.advance(10_000);
    await waitFor(async () => (await runLogStore(observer.audiences).list('hourly')).length === 1, { what: 'the first scheduled run' });
    const [first] = await settled(observer.audiences, 'hourly', 1);
    expect(first).toMatchObject({ trigger: 'schedule', status: 'success' });
    await waitFor(() => clocks.every((c) => c.pending() === 1), { what: 'both schedulers to plan the next run' });
    expect(clocks.map((c) => c.nextAt())).toEqual([Date.parse(first.started_at) + 3_600_000, Date.parse(first.started_at) + 3_600_000]);

    // One instance's timer fires first and its run completes before the other's fires: still one run, because
    // the late one re-reads the log under the lease and finds this slot already run.
    clocks[0].advance(3_600_000);
    const [second] = await settled(observer.audiences, 'hourly', 2);
    expect(second.trigger).toBe('schedule');
    clocks[1].advance(3_600_000);
    await waitFor(() => clocks[1].pending() === 1 && clocks[0].pending() === 1, { what: 'both schedulers to plan the third run' });
    expect(await runLogStore(observer.audiences).list('hourly')).toHaveLength(2);
    expect(clocks.map((c) => c.nextAt())).toEqual([Date.parse(second.started_at) + 3_600_000, Date.parse(second.started_at) + 3_600_000]);
  });
});

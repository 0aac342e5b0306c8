// The refreshInterval scheduler on an injected clock: enabled syncs run on their interval, disabled ones never,
// and close() stops the timers and waits for a run in progress.
import { describe, it, expect } from 'vitest';
import Fastify from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../src/emulator/index.js';
import { createKlaviyoClient } from '../../src/server/klaviyo-client.js';
import { openDatabase } from '../../src/server/store/db.js';
import { createSqliteAudienceStore } from '../../src/server/store/sqlite-audiences.js';
import { parseDefinition } from '../../src/server/audiences/definitions.js';
import { registerAudiences } from '../../src/server/audiences/index.js';
import { runLogStore } from '../../src/server/audiences/runs.js';
import { waitFor } from '../support/wait-for.js';
import { manualClock } from '../support/manual-clock.js';
import { PRIVATE_KEY } from './harness.js';

describe('scheduler', () => {
  it('runs enabled syncs every refreshInterval, skips disabled ones, and close() waits for the run in progress', async () => {
    const emu = await startEmulator({ port: 0, rateLimits: false, jobDelayMs: 5, privateKey: PRIVATE_KEY });
    const dir = mkdtempSync(join(tmpdir(), 'relay-scheduler-'));
    writeFileSync(join(dir, 'm.csv'), 'email\na@example.com\nb@example.com\n');
    const db = openDatabase(':memory:');
    const store = createSqliteAudienceStore(db);
    const logs = runLogStore(store);
    const clock = manualClock(Date.parse('2026-03-01T00:00:00Z'));
    const app = Fastify();
    const base = { source: { type: 'file', path: 'm.csv' }, list: { create: 'Scheduled' }, refreshInterval: '1h' };
    const audiences = registerAudiences(app, {
      store,
      klaviyo: createKlaviyoClient({ privateKey: PRIVATE_KEY, baseUrl: emu.url }),
      definitions: [parseDefinition({ ...base, name: 'hourly' }), parseDefinition({ ...base, name: 'off', enabled: false })],
      configDir: dir,
      log: () => {},
      tuning: { pollIntervalMs: 10 },
      clock,
    });
    const finished = (n: number) => waitFor(async () => {
      const runs = await logs.list('hourly');
      return runs.length === n && runs.every((r) => r.status !== 'running') && runs;
    }, { what: `${n} finished runs` });
    try {
      // Only the enabled audience gets a timer; a never-run audience starts soon after boot, not an hour later.
      await waitFor(() => clock.pending() === 1, { what: 'the first timer' });
      clock.advance(9_999);
      expect(await logs.list('hourly')).toEqual([]);
      clock.advance(1);
      const [first] = await finished(1);
      expect(first).toMatchObject({ trigger: 'schedule', status: 'success', started_at: new Date(clock.now()).toISOString() });
      expect(first.counts.imported).toBe(2);

      // The next run is due one interval after the last one started, not earlier.
      await waitFor(() => clock.pending() === 1, { what: 'the next timer' });
      expect(clock.nextAt()).toBe(Date.parse(first.started_at) + 3_600_000);
      clock.advance(3_600_000 - 1);
      expect(await logs.list('hourly')).toHaveLength(1);
      clock.advance(1);
      const [second] = await finished(2);
      expect(second.counts).toMatchObject({ unchanged: 2, imported: 0 });
      expect(await logs.list('off')).toEqual([]);

      // A run in progress when close() is called: close waits for it.
      await waitFor(() => clock.pending() === 1, { what: 'the third timer' });
      clock.advance(3_600_000);
      await waitFor(async () => (await logs.list('hourly')).length === 3, { what: 'the third run to start' });
    } finally {
      await audiences.close();
    }
    // Closed: the run ended, no timer is left, and no new one starts.
    const afterClose = await logs.list('hourly');
    expect(afterClose.every((r) => r.status !== 'running')).toBe(true);
    expect(audiences.pendingTimers()).toBe(0);
    clock.advance(10 * 3_600_000);
    expect(await logs.list('hourly')).toHaveLength(afterClose.length);
    await app.close();
    await emu.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

// The refreshInterval scheduler: enabled syncs run on their interval, disabled ones never, and close() stops
// the timers and waits for a run in progress.
import { describe, it, expect } from 'vitest';
import Fastify from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../src/emulator/index.js';
import { createKlaviyoClient } from '../../src/server/klaviyo-client.js';
import { openDatabase } from '../../src/server/store/db.js';
import { parseDefinition } from '../../src/server/audiences/definitions.js';
import { registerAudiences } from '../../src/server/audiences/index.js';
import { runLogStore } from '../../src/server/audiences/runs.js';
import { PRIVATE_KEY } from './harness.js';

describe('scheduler', () => {
  it('runs enabled syncs every refreshInterval, skips disabled ones, and close() waits for the run in progress', async () => {
    const emu = await startEmulator({ port: 0, rateLimits: false, jobDelayMs: 5, privateKey: PRIVATE_KEY });
    const dir = mkdtempSync(join(tmpdir(), 'relay-scheduler-'));
    writeFileSync(join(dir, 'm.csv'), 'email\na@example.com\nb@example.com\n');
    const db = openDatabase(':memory:');
    const app = Fastify();
    const base = { source: { type: 'file', path: 'm.csv' }, list: { create: 'Scheduled' }, refreshInterval: '300ms' };
    const audiences = registerAudiences(app, {
      db,
      klaviyo: createKlaviyoClient({ privateKey: PRIVATE_KEY, baseUrl: emu.url }),
      definitions: [parseDefinition({ ...base, name: 'every-300ms' }), parseDefinition({ ...base, name: 'off', enabled: false })],
      configDir: dir,
      log: () => {},
      tuning: { pollIntervalMs: 10 },
    });
    try {
      await new Promise((r) => setTimeout(r, 1300));
      const runs = runLogStore(db).list('every-300ms');
      expect(runs.length).toBeGreaterThanOrEqual(2);
      expect(runs.every((r) => r.trigger === 'schedule')).toBe(true);
      expect(runs.at(-1)!.counts.imported).toBe(2);
      expect(runs[0].counts.unchanged).toBe(2);
      expect(runLogStore(db).list('off')).toEqual([]);
    } finally {
      await audiences.close();
    }
    // Closed: no run is left running and no new one starts.
    const afterClose = runLogStore(db).list('every-300ms');
    expect(afterClose.every((r) => r.status !== 'running')).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(runLogStore(db).list('every-300ms')).toHaveLength(afterClose.length);
    await app.close();
    await emu.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

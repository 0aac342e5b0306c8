// Real `klaviyo-relay serve` processes on one PostgreSQL database: an instance killed with SIGKILL in the middle
// of an audience run leaves its run lease behind; the other instance is refused (409) until that lease lapses,
// then its run closes the dead run's log row and resumes it, folding in the import job Klaviyo already accepted
// instead of importing those members again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { killRelays, spawnRelay, type RelayProcess } from '../server/spawn.js';
import { openStore } from '../../src/server/store/open.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { waitFor } from '../support/wait-for.js';
import { PRIVATE_KEY } from './harness.js';

const TOKEN = 'admin-token-for-crash-tests';
// Long enough that the dead instance's lease cannot lapse on its own during the test: the test makes it lapse.
const LEASE_MS = 600_000;
let emu: Emulator;
let database: TestDatabase;
let dir: string;
const running: RelayProcess[] = [];

beforeAll(async () => {
  // Import jobs finish only when the test says so (flushJobs): the first instance dies with one in flight.
  emu = await startEmulator({ port: 0, rateLimits: false, jobDelayMs: 3_600_000, privateKey: PRIVATE_KEY });
  database = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'relay-crash-audience-'));
  writeFileSync(join(dir, 'members.csv'), 'id,email\n' + Array.from({ length: 60 }, (_, i) => `C${i},member${i}@example.com`).join('\n') + '\n');
  writeFileSync(join(dir, 'relay.config.json'), JSON.stringify({
    publicKey: 'Ab12Cd',
    allowedOrigins: ['https://shop.example'],
    audiences: [{
      name: 'members', source: { type: 'file', path: 'members.csv' }, list: { create: 'Members' },
      mapping: [{ from: 'id', to: 'external_id' }, { from: 'email', to: 'email' }],
    }],
  }));
});
afterAll(async () => {
  await killRelays(running);
  await emu?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function serve(): RelayProcess {
  const relay = spawnRelay(['serve', '--config', join(dir, 'relay.config.json'), '--port', '0', '--host', '127.0.0.1'], {
    KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, KLAVIYO_BASE_URL: emu.url, RELAY_ADMIN_TOKEN: TOKEN, DATABASE_URL: database.url,
    RELAY_AUDIENCE_LEASE_MS: String(LEASE_MS),
  });
  running.push(relay);
  return relay;
}

const admin = async (url: string, method: string, path: string) => {
  const res = await fetch(`${url}/v1/admin${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as any };
};

describe('an instance killed mid-run', () => {
  it('leaves a lease that lapses; the next run on another instance resumes without importing again', async () => {
    const [first, second] = [serve(), serve()];
    const [urlA, urlB] = await Promise.all([first.url, second.url]);

    const started = await admin(urlA, 'POST', '/audiences/members/sync');
    expect(started.status).toBe(202);
    // Killed once the job Klaviyo accepted is on record (between Klaviyo's answer and that record a crash cannot
    // know the job exists, and the members are simply imported again).
    const observer = await openStore({ databaseUrl: database.url, dataDir: dir });
    try {
      await waitFor(async () => (await observer.audiences.members('members').inflight()).length === 1, { what: 'the accepted import job on record' });
    } finally {
      await observer.close();
    }
    first.child.kill('SIGKILL');
    await first.exited;

    // The dead instance's lease still holds: the other instance refuses, naming when it lapses.
    const refused = await admin(urlB, 'POST', '/audiences/members/sync');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(/another process; if that process died, its lease lapses at/);

    // Once it lapsed, the next Instant Sync runs; Klaviyo finishes the job the dead instance submitted. Leases are
    // read on the database clock: setting the lease's end to now is the same as that clock reaching it.
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    try {
      expect((await db.query("UPDATE audience_leases SET expires_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint WHERE audience = 'members'")).rowCount).toBe(1);
    } finally {
      await db.end();
    }
    const resumedAnswer = await admin(urlB, 'POST', '/audiences/members/sync');
    expect(resumedAnswer.status).toBe(202);
    const resumed = resumedAnswer.body.run;
    const finished = await waitFor(async () => {
      emu.state.flushJobs();
      const { body } = await admin(urlB, 'GET', '/audiences/members/logs');
      return body.logs.find((log: any) => log.id === resumed.id && log.status !== 'running');
    }, { what: 'the resumed run to finish' });

    expect(finished).toMatchObject({ status: 'success', counts: { read: 60, imported: 60, unchanged: 0 } });
    expect(finished.job_ids).toHaveLength(1);
    // One import job in all: the resumed run folded in the dead one's job instead of sending the members again.
    expect(emu.requests.filter((r) => r.operationId === 'bulk_import_profiles' && r.status === 202)).toHaveLength(1);
    expect(emu.state.listMembers(finished.list_id)).toHaveLength(60);
    // The dead run's row no longer says running.
    const { body } = await admin(urlB, 'GET', '/audiences/members/logs');
    expect(body.logs.find((log: any) => log.id === started.body.run.id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/interrupted/) });
  });
});

// The store contract, run against both backends: the embedded SQLite database and a real PostgreSQL server.
// Then what only a shared PostgreSQL store must add: several instances on one database.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/server/store/db.js';
import { createSqliteStore, EVENT_SAMPLE_SQL as SQLITE_EVENT_SAMPLE, PROFILE_SAMPLE_SQL as SQLITE_PROFILE_SAMPLE } from '../../src/server/store/sqlite.js';
import { EVENT_SAMPLE_SQL as PG_EVENT_SAMPLE, PROFILE_SAMPLE_SQL as PG_PROFILE_SAMPLE } from '../../src/server/store/postgres/relay-store.js';
import { openStore, type OpenedStore } from '../../src/server/store/open.js';
import type { RelayStore } from '../../src/server/store/types.js';
import { parseWireEvent, type ValidEvent } from '../../src/shared/wire-schema.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { waitFor } from '../support/wait-for.js';
import { PUBLIC_KEY, wireEvent } from './helpers.js';

interface Opened {
  store: RelayStore;
  /** A read-only query in SQL both backends accept. */
  sql(query: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
}, 60_000);
afterAll(() => database?.drop());

/** Open a PostgreSQL store on the test database (each call is one more "instance"). */
async function openPostgres(claimLeaseMs?: number): Promise<Opened & { opened: OpenedStore }> {
  const opened = await openStore({ databaseUrl: database.url, dataDir: '/nonexistent', claimLeaseMs });
  if (opened.backend.kind !== 'postgres') throw new Error('expected PostgreSQL');
  const { pool } = opened.backend;
  return { opened, store: opened.relay, sql: async (q) => (await pool.query(q)).rows, close: () => opened.close() };
}

const backends: [string, () => Promise<Opened>][] = [
  ['SQLite', async () => {
    const db = openDatabase(':memory:');
    return { store: createSqliteStore(db), sql: async (q) => db.prepare(q).all() as Record<string, unknown>[], close: async () => void db.close() };
  }],
  ['PostgreSQL', async () => {
    const opened = await openPostgres();
    await opened.sql('TRUNCATE events, profiles, profile_aliases, forward_outbox, event_name_counts, settings RESTART IDENTITY CASCADE');
    return opened;
  }],
];

const valid = (overrides: Parameters<typeof wireEvent>[0]): ValidEvent => {
  const parsed = parseWireEvent(wireEvent(overrides));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.event;
};
const at = (minute: number) => new Date(Date.UTC(2026, 10, 28, 10, minute)).toISOString();

describe.each(backends)('%s store', (_name, open) => {
  let store: RelayStore;
  let sql: Opened['sql'];
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ store, sql, close } = await open());
  });
  afterEach(() => close());

  describe('profile stitching', () => {
    it('links an anonymous visitor to the email they identify with, keeping one profile', async () => {
      await store.ingest(PUBLIC_KEY, [valid({ time: at(0), profile: { anonymous_id: 'anon-a' } })]);
      await store.ingest(PUBLIC_KEY, [
        valid({ type: 'identify', name: undefined, time: at(1), profile: { anonymous_id: 'anon-a', email: 'Ada@Example.com', first_name: 'Ada', properties: { plan: 'gold' } } }),
      ]);
      const byAnon = await store.findProfile('anonymous_id', 'anon-a');
      const byEmail = await store.findProfile('email', 'ada@example.com');
      expect(byAnon!.id).toBe(byEmail!.id);
      expect(byEmail).toMatchObject({ email: 'Ada@Example.com', first_name: 'Ada', properties: { plan: 'gold' } });
      expect((await store.counts()).profiles).toBe(1);
      expect(await sql('SELECT DISTINCT profile_id FROM events')).toEqual([{ profile_id: byAnon!.id }]);
    });

    it('merges two profiles when an event proves they are one person', async () => {
      // Same person on a laptop (identified) and a phone (anonymous so far).
      await store.ingest(PUBLIC_KEY, [valid({ time: at(0), profile: { anonymous_id: 'laptop', email: 'bo@example.com', last_name: 'Lee' } })]);
      await store.ingest(PUBLIC_KEY, [valid({ time: at(1), profile: { anonymous_id: 'phone', properties: { size: 'M' } } })]);
      expect((await store.counts()).profiles).toBe(2);

      await store.ingest(PUBLIC_KEY, [valid({ time: at(2), profile: { anonymous_id: 'phone', email: 'bo@example.com' } })]);
      expect((await store.counts()).profiles).toBe(1);
      const merged = await store.findProfile('anonymous_id', 'phone');
      expect(merged).toMatchObject({ email: 'bo@example.com', last_name: 'Lee', properties: { size: 'M' } });
      expect(merged!.aliases).toEqual(
        expect.arrayContaining([{ kind: 'anonymous_id', value: 'laptop' }, { kind: 'anonymous_id', value: 'phone' }, { kind: 'email', value: 'bo@example.com' }]),
      );
      expect(await sql('SELECT DISTINCT profile_id FROM events')).toEqual([{ profile_id: merged!.id }]);
    });

    it('stitches within one batch: a new visitor, then the same visitor identifying, then a merge', async () => {
      await store.ingest(PUBLIC_KEY, [valid({ time: at(0), profile: { anonymous_id: 'tablet', email: 'cy@example.com', first_name: 'Cy' } })]);
      await store.ingest(PUBLIC_KEY, [
        valid({ time: at(1), profile: { anonymous_id: 'kiosk' } }),
        valid({ time: at(2), profile: { anonymous_id: 'kiosk', phone_number: '+15005550006' } }),
        valid({ time: at(3), profile: { anonymous_id: 'kiosk', email: 'cy@example.com', last_name: 'Young' } }),
      ]);
      expect((await store.counts()).profiles).toBe(1);
      const cy = await store.findProfile('phone_number', '+15005550006');
      expect(cy).toMatchObject({ email: 'cy@example.com', first_name: 'Cy', last_name: 'Young', anonymous_id: 'kiosk' });
      expect(await sql('SELECT DISTINCT profile_id FROM events')).toEqual([{ profile_id: cy!.id }]);
    });

    it('never merges two people with different emails; the browser follows the newly identified one', async () => {
      await store.ingest(PUBLIC_KEY, [valid({ time: at(0), profile: { anonymous_id: 'shared-pc', email: 'x@example.com' } })]);
      await store.ingest(PUBLIC_KEY, [valid({ time: at(1), profile: { email: 'y@example.com', external_id: 'cust-y' } })]);
      await store.ingest(PUBLIC_KEY, [valid({ time: at(2), profile: { anonymous_id: 'shared-pc', email: 'y@example.com' } })]);
      expect((await store.counts()).profiles).toBe(2);
      const y = await store.findProfile('email', 'y@example.com');
      expect((await store.findProfile('anonymous_id', 'shared-pc'))!.id).toBe(y!.id);
      expect((await store.findProfile('email', 'x@example.com'))!.id).not.toBe(y!.id);
    });
  });

  describe('ingest and the outbox', () => {
    it('queues only server-routed events, ignores repeated unique_ids', async () => {
      const server = valid({ route: 'server' });
      const result = await store.ingest(PUBLIC_KEY, [server, valid({ route: 'client' }), valid({ route: 'off' }), server]);
      expect(result).toEqual({ stored: 3, duplicates: 1, queued: 1 });
      expect(await store.ingest(PUBLIC_KEY, [server])).toEqual({ stored: 0, duplicates: 1, queued: 0 });
      const rows = await store.listOutbox();
      expect(rows.map((r) => r.unique_id)).toEqual([server.unique_id]);
      expect((await store.counts()).routes).toEqual({ server: 1, client: 1, off: 1 });
    });

    it('a client event handed over as "server" (the browser could not reach Klaviyo) is forwarded once', async () => {
      const client = valid({ route: 'client' });
      await store.ingest(PUBLIC_KEY, [client]);
      expect(await store.listOutbox()).toEqual([]);
      const handedOver = { ...client, route: 'server' as const };
      expect(await store.ingest(PUBLIC_KEY, [handedOver])).toEqual({ stored: 0, duplicates: 0, queued: 1 });
      expect((await store.listOutbox()).map((r) => r.unique_id)).toEqual([client.unique_id]);
      expect(await sql(`SELECT route FROM events WHERE unique_id = '${client.unique_id}'`)).toEqual([{ route: 'server' }]);
      // Sent again (a retry of that batch), it is a duplicate: one forward, never two.
      expect(await store.ingest(PUBLIC_KEY, [handedOver])).toEqual({ stored: 0, duplicates: 1, queued: 0 });
      expect(await store.listOutbox()).toHaveLength(1);
    });

    it('a hand-over inside one batch stores the event once, routed to the server', async () => {
      const client = valid({ route: 'client' });
      const handedOver = { ...client, route: 'server' as const };
      expect(await store.ingest(PUBLIC_KEY, [client, handedOver, handedOver])).toEqual({ stored: 1, duplicates: 1, queued: 1 });
      expect((await store.listOutbox()).map((r) => r.unique_id)).toEqual([client.unique_id]);
      expect((await store.counts()).routes).toEqual({ server: 1 });
    });

    it('writes nothing of a batch when one write fails', async () => {
      const good = valid({});
      const broken = { ...valid({}), route: undefined } as unknown as ValidEvent; // violates NOT NULL
      await expect(store.ingest(PUBLIC_KEY, [good, broken])).rejects.toThrow();
      expect((await store.counts()).events).toBe(0);
      expect((await store.counts()).profiles).toBe(0);
    });

    it('stores concurrent batches, yet a failing batch rolls back alone', async () => {
      const broken = { ...valid({}), route: undefined } as unknown as ValidEvent;
      const [a, b, c] = await Promise.allSettled([
        store.ingest(PUBLIC_KEY, [valid({}), valid({})]),
        store.ingest(PUBLIC_KEY, [valid({}), broken]),
        store.ingest(PUBLIC_KEY, [valid({ route: 'client' })]),
      ]);
      expect(a).toMatchObject({ status: 'fulfilled', value: { stored: 2, queued: 2 } });
      expect(b.status).toBe('rejected');
      expect(c).toMatchObject({ status: 'fulfilled', value: { stored: 1, queued: 0 } });
      expect((await store.counts()).events).toBe(3);
      expect((await store.counts()).outbox.pending).toBe(2);
    });

    it('claims due items, reschedules, fails and releases claims after a crash', async () => {
      const [a, b, c] = [valid({}), valid({}), valid({})];
      await store.ingest(PUBLIC_KEY, [a, b, c]);
      const claimed = await store.claimDue(10);
      expect(claimed.map((i) => i.event.unique_id)).toEqual([a.unique_id, b.unique_id, c.unique_id]);
      expect(claimed[0]).toMatchObject({ attempts: 1, known: { email: 'ada@example.com' }, event: { route: 'server', name: 'Placed Order' } });
      expect(await store.claimDue(10)).toEqual([]); // in flight: not claimed twice
      expect(await store.renewClaims()).toBe(3);

      await store.markSent([claimed[0]!.eventId], 'Klaviyo 409 duplicate_profile: updated profile 01ABC');
      await store.markFailed([claimed[1]!.eventId], 'Klaviyo 400: bad');
      // c stays in flight, as if the process died here; the next start releases it.
      expect(await store.releaseClaims()).toBe(1);
      const again = await store.claimDue(10);
      expect(again.map((i) => i.event.unique_id)).toEqual([c.unique_id]);
      expect(again[0]!.attempts).toBe(2);

      await store.reschedule([again[0]!.eventId], Date.now() + 60_000, 'Klaviyo 503');
      expect(await store.claimDue(10)).toEqual([]);
      expect(await store.claimDue(10, Date.now() + 61_000)).toHaveLength(1);
      expect((await store.counts()).outbox).toEqual({ pending: 0, inflight: 1, sent: 1, failed: 1 });
      expect((await store.listOutbox({ status: 'failed' }))[0]).toMatchObject({ unique_id: b.unique_id, last_error: 'Klaviyo 400: bad', note: null });
      expect((await store.listOutbox({ status: 'sent' }))[0]).toMatchObject({ unique_id: a.unique_id, note: 'Klaviyo 409 duplicate_profile: updated profile 01ABC' });
      expect(await store.requeueFailed()).toBe(1);
      expect((await store.counts()).outbox).toEqual({ pending: 1, inflight: 1, sent: 1, failed: 0 });
    });

    it('gives a claimed event the identifiers its profile learned later', async () => {
      const early = valid({ time: at(0), profile: { anonymous_id: 'anon-z' } });
      await store.ingest(PUBLIC_KEY, [early]);
      await store.ingest(PUBLIC_KEY, [valid({ route: 'client', time: at(1), profile: { anonymous_id: 'anon-z', external_id: 'cust-9' } })]);
      const [item] = await store.claimDue(10);
      expect(item!.event.profile).toEqual({ anonymous_id: 'anon-z' });
      expect(item!.known).toEqual({ external_id: 'cust-9' });
    });

    it('stores an event whose strings carry U+0000 (which PostgreSQL text cannot hold) instead of refusing it', async () => {
      const nul = valid({ name: 'Nul\u0000Name', properties: { note: 'a\u0000b', path: 'C:\\u0000dir' }, profile: { anonymous_id: 'anon\u0000x', first_name: 'A\u0000da' } });
      expect(await store.ingest(PUBLIC_KEY, [nul])).toEqual({ stored: 1, duplicates: 0, queued: 1 });
      const [item] = await store.claimDue(10);
      expect(item!.event.properties).toMatchObject({ path: 'C:\\u0000dir' }); // a backslash and text, kept as is
      expect(String(item!.event.properties!.note)).toMatch(/^a[\u0000\ufffd]b$/);
      expect(await store.findProfile('anonymous_id', item!.event.profile.anonymous_id!)).toMatchObject({ first_name: expect.stringMatching(/^A[\u0000\ufffd]da$/) });
    });

    it('lists the newest events first with their forwarding state', async () => {
      const [first, second] = [valid({ route: 'server' }), valid({ route: 'client', name: 'Viewed Product' })];
      await store.ingest(PUBLIC_KEY, [first, second], 1_000);
      expect(await store.recentEvents(5)).toEqual([
        { unique_id: second.unique_id, type: 'track', name: 'Viewed Product', route: 'client', received_at: 1_000, forward_status: null, forward_attempts: null, last_error: null },
        { unique_id: first.unique_id, type: 'track', name: 'Placed Order', route: 'server', received_at: 1_000, forward_status: 'pending', forward_attempts: 0, last_error: null },
      ]);
    });
  });

  describe('settings and event names', () => {
    it('counts stored events per name (identify under $identify) with the newest event time; repeats do not count', async () => {
      const repeat = valid({ name: 'Viewed Product', route: 'client', time: at(5) });
      await store.ingest(PUBLIC_KEY, [repeat, valid({ time: at(1) }), valid({ type: 'identify', name: undefined, time: at(2) })]);
      await store.ingest(PUBLIC_KEY, [repeat, valid({ time: at(9) }), valid({ time: at(3) })]);
      const counts = (await store.eventCounts()).sort((a, b) => a.name.localeCompare(b.name));
      expect(counts).toEqual([
        { name: '$identify', count: 1, lastSeenAt: Date.parse(at(2)) },
        { name: 'Placed Order', count: 3, lastSeenAt: Date.parse(at(9)) },
        { name: 'Viewed Product', count: 1, lastSeenAt: Date.parse(at(5)) },
      ]);
    });

    it('counts events per asked name within [from, to) by event time, 0 for a name without any, $identify for identify calls', async () => {
      await store.ingest(PUBLIC_KEY, [
        valid({ name: 'Viewed Product', route: 'client', time: at(0) }), // at `from`: inside
        valid({ name: 'Viewed Product', route: 'client', time: at(5) }),
        valid({ name: 'Viewed Product', route: 'client', time: at(10) }), // at `to`: outside
        valid({ time: at(3) }),
        valid({ time: at(59) }),
        valid({ type: 'identify', name: undefined, time: at(4) }),
      ], Date.parse(at(59)));
      expect(await store.eventCountsBetween(['Viewed Product', 'Placed Order', 'Never Seen', '$identify'], Date.parse(at(0)), Date.parse(at(10)))).toEqual([
        { name: 'Viewed Product', count: 2 },
        { name: 'Placed Order', count: 1 },
        { name: 'Never Seen', count: 0 },
        { name: '$identify', count: 1 },
      ]);
      expect(await store.eventCountsBetween([], 0, Date.parse(at(59)))).toEqual([]);
    });

    it('keeps the workflow saved from the console, the latest save winning', async () => {
      expect(await store.loadWorkflowOverride()).toBeUndefined();
      await store.saveWorkflowOverride({ default: 'client', events: { 'Placed Order': 'server' } });
      await store.saveWorkflowOverride({ default: 'off', events: { 'Viewed Product': 'client' } });
      const saved = await store.loadWorkflowOverride();
      expect(saved).toEqual({ workflow: { default: 'off', events: { 'Viewed Product': 'client' } }, updatedAt: expect.any(Number) });
      await store.clearWorkflowOverride();
      expect(await store.loadWorkflowOverride()).toBeUndefined();
      // Clearing when nothing is saved is not an error.
      await store.clearWorkflowOverride();
    });
  });
});

// The property keys the console suggests are counted over the newest events of a name (or the newest profiles):
// a read that must stay bounded on a store of any size, so it walks an index and stops, never scans and sorts.
describe('the property-key samples are index reads that stop after the sample', () => {
  it('on SQLite', () => {
    const db = openDatabase(':memory:');
    try {
      const plan = (sql: string, ...params: unknown[]) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('\n');
      const events = plan(SQLITE_EVENT_SAMPLE, 'Placed Order', 500);
      expect(events).toMatch(/SEARCH events USING INDEX events_name_time \(name=\?\)/);
      expect(events).not.toMatch(/TEMP B-TREE/);
      // A rowid walk in reverse order, streamed (a co-routine, no sort): the LIMITs stop it.
      expect(plan(SQLITE_PROFILE_SAMPLE, 500)).toBe('CO-ROUTINE newest\nSCAN profiles\nSCAN newest');
    } finally {
      db.close();
    }
  });

  it('on PostgreSQL (with sequential scans priced out, the plan an empty test table would not show otherwise)', async () => {
    const opened = await openStore({ databaseUrl: database.url, dataDir: '/nonexistent' });
    if (opened.backend.kind !== 'postgres') throw new Error('expected PostgreSQL');
    const client = await opened.backend.pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const plan = async (sql: string, params: unknown[]) => (await client.query(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
      const events = await plan(PG_EVENT_SAMPLE, ['Placed Order', 500]);
      expect(events).toMatch(/Index Scan Backward using events_name_time on events/);
      expect(events).not.toMatch(/Sort|Seq Scan/);
      const profiles = await plan(PG_PROFILE_SAMPLE, [500]);
      expect(profiles).toMatch(/Index Scan Backward using profiles_pkey on profiles/);
      expect(profiles).not.toMatch(/Sort|Seq Scan/);
    } finally {
      await client.query('RESET enable_seqscan');
      client.release();
      await opened.close();
    }
  });
});

describe('PostgreSQL store shared by several instances', () => {
  const instances: Opened[] = [];
  const instance = async (claimLeaseMs?: number) => {
    const opened = await openPostgres(claimLeaseMs);
    instances.push(opened);
    return opened;
  };
  beforeEach(async () => {
    const { sql } = await instance();
    await sql('TRUNCATE events, profiles, profile_aliases, forward_outbox, event_name_counts, settings RESTART IDENTITY CASCADE');
  });
  afterEach(async () => {
    await Promise.all(instances.splice(0).map((i) => i.close()));
  });

  it('stores a unique_id once when two instances receive it at the same moment', async () => {
    const [a, b] = [await instance(), await instance()];
    const events = Array.from({ length: 30 }, (_, i) => valid({ profile: { anonymous_id: `dup-${i}` } }));
    const results = await Promise.all(events.flatMap((e) => [a.store.ingest(PUBLIC_KEY, [e]), b.store.ingest(PUBLIC_KEY, [e])]));
    expect(results.reduce((n, r) => n + r.stored, 0)).toBe(30);
    expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(30);
    expect((await a.store.counts()).outbox.pending).toBe(30);
  });

  it('queues a handed-over event once when two instances receive the hand-over at the same moment', async () => {
    const [a, b] = [await instance(), await instance()];
    const clients = Array.from({ length: 20 }, () => valid({ route: 'client' }));
    await a.store.ingest(PUBLIC_KEY, clients);
    const handOvers = clients.map((e) => ({ ...e, route: 'server' as const }));
    const results = await Promise.all(handOvers.flatMap((e) => [a.store.ingest(PUBLIC_KEY, [e]), b.store.ingest(PUBLIC_KEY, [e])]));
    expect(results.reduce((n, r) => n + r.queued, 0)).toBe(20);
    expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(20);
    expect((await a.store.counts()).outbox.pending).toBe(20);
  });

  it('stitches one person consistently while two instances ingest their events concurrently', async () => {
    const [a, b] = [await instance(), await instance()];
    // 20 people, each seen anonymously on two devices, then identifying on both, events spread over both instances.
    const batches: [Opened, ValidEvent[]][] = [];
    for (let p = 0; p < 20; p++) {
      const email = `p${p}@example.com`;
      batches.push([a, [valid({ time: at(0), profile: { anonymous_id: `p${p}-phone`, first_name: `P${p}` } })]]);
      batches.push([b, [valid({ time: at(0), profile: { anonymous_id: `p${p}-laptop`, properties: { n: p } } })]]);
      batches.push([a, [valid({ time: at(1), profile: { anonymous_id: `p${p}-phone`, email } })]]);
      batches.push([b, [valid({ time: at(2), profile: { anonymous_id: `p${p}-laptop`, email: email.toUpperCase() } })]]);
    }
    // Everyone's batches in flight together, in an order that interleaves the instances.
    await Promise.all(batches.map(([inst, events]) => inst.store.ingest(PUBLIC_KEY, events)));
    // Ordering may leave a device's profile unmerged only if its identify ran before the anonymous event: the
    // anonymous event then finds the alias and joins the person. So each person ends as exactly one profile.
    expect((await a.store.counts()).profiles).toBe(20);
    for (let p = 0; p < 20; p++) {
      const person = await b.store.findProfile('email', `p${p}@example.com`);
      expect(person).toMatchObject({ first_name: `P${p}`, properties: { n: p } });
      expect((await a.store.findProfile('anonymous_id', `p${p}-phone`))!.id).toBe(person!.id);
      expect((await a.store.findProfile('anonymous_id', `p${p}-laptop`))!.id).toBe(person!.id);
    }
    const orphans = await a.sql('SELECT COUNT(*) AS n FROM events e LEFT JOIN profiles p ON p.id = e.profile_id WHERE p.id IS NULL');
    expect(orphans).toEqual([{ n: 0 }]);
  });

  /**
   * Leases are read against the database clock, which a test cannot move; moving every lease back by `ms` is the
   * same as that clock moving on by `ms`.
   */
  const LEASE_MS = 30_000;
  const leaseTimePasses = (ms: number) => instances[0]!.sql(`UPDATE forward_outbox SET lease_until = lease_until - ${ms} WHERE lease_until IS NOT NULL`);

  it('never hands an item to two instances; a dead holder\'s claims are taken over once its lease runs out', async () => {
    const holder = await instance(LEASE_MS);
    const other = await instance(LEASE_MS);
    await holder.store.ingest(PUBLIC_KEY, Array.from({ length: 10 }, () => valid({})));
    const [claimedA, claimedB] = await Promise.all([holder.store.claimDue(6), other.store.claimDue(6)]);
    expect(claimedA.length + claimedB.length).toBe(10);
    expect(new Set([...claimedA, ...claimedB].map((i) => i.eventId)).size).toBe(10);
    await other.store.markSent(claimedB.map((i) => i.eventId));

    // The holder stops renewing (it died): its claims are not due until the lease lapses, then the other takes them.
    expect(await other.store.claimDue(10)).toEqual([]);
    await leaseTimePasses(LEASE_MS - 5_000);
    expect(await other.store.claimDue(10)).toEqual([]);
    await leaseTimePasses(5_000);
    const takenOver = await other.store.claimDue(10);
    expect(takenOver.map((i) => i.eventId).sort()).toEqual(claimedA.map((i) => i.eventId).sort());
    expect(takenOver.every((i) => i.attempts === 2)).toBe(true);

    // The old holder coming back cannot settle what is no longer its own, except to say it was delivered.
    await holder.store.reschedule([takenOver[0]!.eventId], 0, 'late');
    await holder.store.markFailed([takenOver[1]!.eventId], 'late');
    expect(await holder.store.releaseClaims()).toBe(0);
    expect((await other.store.counts()).outbox).toMatchObject({ inflight: takenOver.length, failed: 0 });
  });

  it('keeps renewed claims out of other instances\' reach', async () => {
    const holder = await instance(LEASE_MS);
    const other = await instance(LEASE_MS);
    await holder.store.ingest(PUBLIC_KEY, [valid({})]);
    const [item] = await holder.store.claimDue(10);
    // Renew past several lease lengths, checking each time that the other instance still cannot claim the item.
    const step = (LEASE_MS * 2) / 3;
    for (let renewal = 0; renewal < 4; renewal++) {
      expect(await holder.store.renewClaims()).toBe(1);
      await leaseTimePasses(step);
      expect(await other.store.claimDue(10)).toEqual([]);
    }
    // The same time without a renewal lets the lease lapse: the steps above were long enough to matter.
    await leaseTimePasses(step);
    expect((await other.store.claimDue(10)).map((i) => i.eventId)).toEqual([item!.eventId]);
  });

  it('elects one forwarder; when its session dies, another instance takes over', async () => {
    const [a, b] = [await instance(), await instance()];
    const leaderA = a.store.forwarderLeadership();
    const leaderB = b.store.forwarderLeadership();
    expect(await leaderA.acquire()).toBe(true);
    expect(await leaderB.acquire()).toBe(false);
    expect(await leaderA.acquire()).toBe(true); // still held

    const lost = new Promise<string>((resolve) => leaderA.onLost(resolve));
    // Kill A's leadership session from the server side, as if its process had died.
    await b.sql(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1802270329 AND objid = 2 AND granted`);
    expect(await lost).toMatch(/leadership connection/);
    expect(leaderA.held).toBe(false);
    await waitFor(() => leaderB.acquire(), { what: 'B to take the leadership' });
    expect(await leaderA.acquire()).toBe(false);

    await leaderB.release();
    expect(await leaderA.acquire()).toBe(true);
  });
});

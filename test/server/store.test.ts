import { beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/server/store/db.js';
import { createSqliteStore } from '../../src/server/store/sqlite.js';
import type { RelayStore } from '../../src/server/store/types.js';
import { parseWireEvent, type ValidEvent } from '../../src/shared/wire-schema.js';
import { PUBLIC_KEY, wireEvent } from './helpers.js';

let db: Db;
let store: RelayStore;
beforeEach(() => {
  db = openDatabase(':memory:');
  store = createSqliteStore(db);
});

const valid = (overrides: Parameters<typeof wireEvent>[0]): ValidEvent => {
  const parsed = parseWireEvent(wireEvent(overrides));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.event;
};
const at = (minute: number) => new Date(Date.UTC(2026, 10, 28, 10, minute)).toISOString();

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
    expect(db.prepare('SELECT DISTINCT profile_id FROM events').pluck().all()).toEqual([byAnon!.id]);
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
    expect(db.prepare('SELECT COUNT(DISTINCT profile_id) FROM events').pluck().get()).toBe(1);
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
    const rows = await store.listOutbox();
    expect(rows.map((r) => r.unique_id)).toEqual([server.unique_id]);
  });

  it('a client event handed over as "server" (the browser could not reach Klaviyo) is forwarded once', async () => {
    const client = valid({ route: 'client' });
    await store.ingest(PUBLIC_KEY, [client]);
    expect(await store.listOutbox()).toEqual([]);
    const handedOver = { ...client, route: 'server' as const };
    expect(await store.ingest(PUBLIC_KEY, [handedOver])).toEqual({ stored: 0, duplicates: 0, queued: 1 });
    expect((await store.listOutbox()).map((r) => r.unique_id)).toEqual([client.unique_id]);
    expect(db.prepare('SELECT route FROM events WHERE unique_id = ?').pluck().get(client.unique_id)).toBe('server');
    // Sent again (a retry of that batch), it is a duplicate: one forward, never two.
    expect(await store.ingest(PUBLIC_KEY, [handedOver])).toEqual({ stored: 0, duplicates: 1, queued: 0 });
    expect(await store.listOutbox()).toHaveLength(1);
  });

  it('writes nothing of a batch when one write fails', async () => {
    const good = valid({});
    const broken = { ...valid({}), route: undefined } as unknown as ValidEvent; // violates NOT NULL
    await expect(store.ingest(PUBLIC_KEY, [good, broken])).rejects.toThrow();
    expect((await store.counts()).events).toBe(0);
    expect((await store.counts()).profiles).toBe(0);
  });

  it('commits concurrent batches together, yet a failing batch rolls back alone', async () => {
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

    await store.markSent([claimed[0]!.eventId]);
    await store.markFailed([claimed[1]!.eventId], 'Klaviyo 400: bad');
    // c stays in flight, as if the process died here; the next start releases it.
    expect(await store.releaseClaims()).toBe(1);
    const again = await store.claimDue(10);
    expect(again.map((i) => i.event.unique_id)).toEqual([c.unique_id]);
    expect(again[0]!.attempts).toBe(2);

    await store.reschedule([again[0]!.eventId], Date.now() + 60_000, 'Klaviyo 503');
    expect(await store.claimDue(10)).toEqual([]);
    expect(await store.nextDueAt()).toBeGreaterThan(Date.now());
    expect((await store.counts()).outbox).toEqual({ pending: 1, inflight: 0, sent: 1, failed: 1 });
    expect((await store.listOutbox({ status: 'failed' }))[0]).toMatchObject({ unique_id: b.unique_id, last_error: 'Klaviyo 400: bad' });
  });

  it('gives a claimed event the identifiers its profile learned later', async () => {
    const early = valid({ time: at(0), profile: { anonymous_id: 'anon-z' } });
    await store.ingest(PUBLIC_KEY, [early]);
    await store.ingest(PUBLIC_KEY, [valid({ route: 'client', time: at(1), profile: { anonymous_id: 'anon-z', external_id: 'cust-9' } })]);
    const [item] = await store.claimDue(10);
    expect(item!.event.profile).toEqual({ anonymous_id: 'anon-z' });
    expect(item!.known).toEqual({ external_id: 'cust-9' });
  });
});

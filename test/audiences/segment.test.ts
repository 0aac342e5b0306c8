// Segment rules over the core store, the same contract on SQLite and PostgreSQL: event counts in time windows
// with property filters, traits, all/any/not, computed fields, bound values, and streaming while the sync writes.
import { describe, it, expect, beforeAll, beforeEach, afterAll } from 'vitest';
import { openDatabase } from '../../src/server/store/db.js';
import { streamSegment, segmentQuery as sqliteQuery } from '../../src/server/store/sqlite-segment.js';
import { segmentQuery as postgresQuery } from '../../src/server/store/postgres/segment.js';
import { profileToMember } from '../../src/server/audiences/segment.js';
import type { RuleNode } from '../../src/server/audiences/definition.js';
import type { SegmentProfile } from '../../src/server/store/audience-types.js';
import { BACKENDS, ingest, type AudienceBackend } from './backends.js';
import { waitFor } from '../support/wait-for.js';

const NOW = Date.parse('2026-11-28T12:00:00Z');
const DAY = 864e5;
const iso = (daysAgo: number) => new Date(NOW - daysAgo * DAY).toISOString();
type Who = { email?: string; anonymous_id?: string };

/** A person as the store learns them: one identify 90 days ago with their traits. */
const person = (who: Who, traits: { first_name?: string; location?: Record<string, string>; properties?: Record<string, unknown> } = {}) =>
  ({ type: 'identify' as const, time: iso(90), profile: { ...who, ...traits } });
const viewed = (who: Who, name: string, daysAgo: number, properties: Record<string, unknown> = {}) =>
  ({ type: 'track' as const, name, time: iso(daysAgo), properties, profile: who });

const INJECTION: RuleNode = { all: [{ event: "x'); DROP TABLE profiles; --", where: { "a'b": { eq: "'" } } }, { trait: "t'", eq: "'" }, { trait: "location.'", contains: "%'_" }] };

describe.each(BACKENDS)('segment rules on $name', ({ open }) => {
  let backend: AudienceBackend;
  beforeAll(async () => {
    backend = await open();
  });
  afterAll(() => backend.close());

  async function collect(rules: RuleNode) {
    const out = [];
    for await (const p of backend.store.segment(rules, NOW)) out.push(profileToMember(p));
    return out;
  }
  const members = async (rules: RuleNode) => (await collect(rules)).map((m) => m.email ?? m.anonymous_id);

  const ada = { email: 'ada@x.co' };
  const bob = { email: 'bob@x.co' };
  const cy = { email: 'cy@x.co' };
  const dee = { anonymous_id: 'anon-dee' };
  beforeEach(async () => {
    await backend.reset();
    await ingest(backend.relay, [
      person(ada, { first_name: 'Ada', location: { country: 'US', city: 'Austin' }, properties: { plan: 'gold', tags: ['vip', 'early'], orders: 5 } }),
      person(bob, { location: { country: 'GB' }, properties: { plan: 'silver' } }),
      person(cy, { location: { country: 'US' }, properties: { plan: 'Gold Plus' } }),
      person(dee),
      viewed(ada, 'Viewed Product', 1, { Categories: ['Shoes', 'Sale'], Price: 80 }),
      viewed(ada, 'Viewed Product', 2, { Categories: ['Shoes'], Price: 120 }),
      viewed(ada, 'Viewed Product', 20, { Categories: ['Shoes'] }),
      viewed(bob, 'Viewed Product', 1, { Categories: ['Hats'], Price: 20 }),
      viewed(bob, 'Placed Order', 3, { Total: 40 }),
      viewed(cy, 'Viewed Product', 5, { Categories: 'Running Shoes', Price: 60 }),
      viewed(cy, 'Viewed Product', 6, { Categories: 'Running Shoes', Price: 70 }),
      viewed(dee, 'Viewed Product', 1, {}),
    ]);
  });

    it('runs the spec example: event count within a window with a property filter, not, and a trait', async () => {
      const rules: RuleNode = {
        all: [
          { event: 'Viewed Product', count: { gte: 2 }, within: '7d', where: { Categories: { contains: 'Shoes' } } },
          { not: { event: 'Placed Order', within: '30d' } },
          { trait: 'country', eq: 'US' },
        ],
      };
      // Ada: 2 shoe views in 7 days (array contains); Cy: 2 in 7 days (string contains); Bob is GB and ordered.
      expect(await members(rules)).toEqual(['ada@x.co', 'cy@x.co']);
    });

    it('counts with gte, lte and eq; default is at least once; windows exclude older events', async () => {
      expect(await members({ event: 'Viewed Product', count: { gte: 3 } })).toEqual(['ada@x.co']);
      expect(await members({ event: 'Viewed Product', count: { gte: 3 }, within: '7d' })).toEqual([]);
      expect(await members({ event: 'Viewed Product', count: { lte: 1 } })).toEqual(['bob@x.co', 'anon-dee']);
      expect(await members({ event: 'Placed Order', count: { eq: 0 } })).toEqual(['ada@x.co', 'cy@x.co', 'anon-dee']);
      expect(await members({ event: 'Placed Order' })).toEqual(['bob@x.co']);
      expect(await members({ event: 'Viewed Product', within: '36h' })).toEqual(['ada@x.co', 'bob@x.co', 'anon-dee']);
    });

    it('filters event properties with eq, gt and lt', async () => {
      expect(await members({ event: 'Viewed Product', where: { Price: { gt: 100 } } })).toEqual(['ada@x.co']);
      expect(await members({ event: 'Viewed Product', where: { Price: { lt: 65 } } })).toEqual(['bob@x.co', 'cy@x.co']);
      expect(await members({ event: 'Viewed Product', where: { Price: { eq: 70 } } })).toEqual(['cy@x.co']);
      expect(await members({ event: 'Placed Order', where: { Total: { gt: 30, lt: 50 } } })).toEqual(['bob@x.co']);
    });

    it('gt and lt compare numbers and numeric texts; any other value matches neither, the same on both backends', async () => {
      await ingest(backend.relay, [
        viewed(dee, 'Rated', 1, { Score: ' 12.5 ' }),
        viewed(dee, 'Rated', 1, { Score: '1e1' }),
        viewed(bob, 'Rated', 1, { Score: 'abc' }),
        viewed(bob, 'Rated', 1, { Score: '12abc' }),
        viewed(bob, 'Rated', 1, { Score: true }),
        viewed(bob, 'Rated', 1, { Score: [5] }),
        viewed(bob, 'Rated', 1, { Score: '\u00a05' }),
        viewed(bob, 'Rated', 1, { Score: '1e999' }),
        viewed(bob, 'Rated', 1, { Score: '0.' + '0'.repeat(400) + '1' }),
        viewed(cy, 'Rated', 1, { Score: -3 }),
      ]);
      const scores = async (filter: { gt?: number; lt?: number }) =>
        (await collect({ event: 'Rated', count: { gte: 1 }, where: { Score: filter } })).map((m) => m.email ?? m.anonymous_id);
      // "abc", "12abc", true, [5], a no-break space and out-of-range texts are no numbers: not above, not below.
      expect(await scores({ gt: -1e9 })).toEqual(['cy@x.co', 'anon-dee']);
      expect(await scores({ lt: 1e9 })).toEqual(['cy@x.co', 'anon-dee']);
      expect(await scores({ gt: 11 })).toEqual(['anon-dee']);
      expect(await scores({ lt: 0 })).toEqual(['cy@x.co']);
    });

    it('matches traits with eq, contains and exists, on columns, location and custom properties', async () => {
      expect(await members({ trait: 'plan', eq: 'gold' })).toEqual(['ada@x.co']);
      expect(await members({ trait: 'properties.plan', contains: 'gold' })).toEqual(['ada@x.co', 'cy@x.co']);
      expect(await members({ trait: 'tags', contains: 'vip' })).toEqual(['ada@x.co']);
      expect(await members({ trait: 'orders', eq: 5 })).toEqual(['ada@x.co']);
      expect(await members({ trait: 'email', exists: false })).toEqual(['anon-dee']);
      expect(await members({ trait: 'first_name', exists: true })).toEqual(['ada@x.co']);
      expect(await members({ trait: 'location.city', contains: 'aus' })).toEqual(['ada@x.co']);
      expect(await members({ trait: 'email', contains: 'BOB' })).toEqual(['bob@x.co']);
    });

    it('combines any and not', async () => {
      expect(await members({ any: [{ trait: 'country', eq: 'GB' }, { trait: 'plan', eq: 'gold' }] })).toEqual(['ada@x.co', 'bob@x.co']);
      expect(await members({ not: { any: [{ trait: 'country', eq: 'GB' }, { trait: 'plan', eq: 'gold' }] } })).toEqual(['cy@x.co', 'anon-dee']);
    });

    it('yields members with traits, identifiers and computed fields', async () => {
      const [m] = await collect({ trait: 'plan', eq: 'gold' });
      expect(m).toMatchObject({
        email: 'ada@x.co', first_name: 'Ada', plan: 'gold', orders: 5, location: { country: 'US', city: 'Austin' },
        properties: { plan: 'gold' }, event_count: 4, last_event_time: new Date(NOW - DAY).toISOString(), profile_id: (await backend.relay.findProfile('email', 'ada@x.co'))!.id,
      });
    });

  it('binds every value as a parameter (no injection through names or values)', async () => {
    expect(await members(INJECTION)).toEqual([]);
    expect(await members({ trait: 'plan', eq: 'gold' })).toEqual(['ada@x.co']);
  });

  it('a read stopped early (a run that failed midway) gives its connection back', async () => {
    await ingest(backend.relay, Array.from({ length: 2500 }, (_, i) => person({ email: `many${i}@x.co` }, { properties: { plan: 'many' } })));
    for (let attempt = 0; attempt < 8; attempt++) {
      for await (const m of backend.store.segment({ trait: 'plan', eq: 'many' }, NOW)) {
        expect(m.email).toBe('many0@x.co');
        break;
      }
    }
    // Every connection is back in the pool (PostgreSQL: a cursor left open would hold one each time).
    if ('pool' in backend) {
      const pool = (backend as { pool: { totalCount: number; idleCount: number } }).pool;
      await waitFor(() => pool.totalCount === pool.idleCount, { what: 'every connection idle again' });
    }
    expect((await collect({ trait: 'plan', eq: 'many' })).length).toBe(2500);
  });

  it('streams while the sync writes through other statements, in id order', async () => {
    await ingest(backend.relay, Array.from({ length: 25 }, (_, i) => person({ email: `bulk${i}@x.co` }, { properties: { plan: 'bulk' } })));
    const seen: string[] = [];
    const state = backend.store.members('bulk');
    for await (const m of backend.store.segment({ trait: 'plan', eq: 'bulk' }, NOW)) {
      // A write between reads, as the sync does: it must not wait on, or trip over, the open read.
      await state.rememberList('{"id":"L"}', 'L');
      seen.push(m.email as string);
    }
    expect(seen.sort()).toEqual(Array.from({ length: 25 }, (_, i) => `bulk${i}@x.co`).sort());
  });
});

describe('segment SQL', () => {
  it('never carries a rule value or key in the statement text, on either backend', () => {
    for (const q of [sqliteQuery(INJECTION, NOW), postgresQuery(INJECTION, NOW)]) {
      expect(q.sql).not.toContain('DROP');
      expect(q.sql).not.toContain("a'b");
      expect(q.sql).not.toContain("%'_");
      expect(q.params).toEqual(expect.arrayContaining(["x'); DROP TABLE profiles; --"]));
    }
  });

  it('SQLite pages through large segments in keyset pages, so a write between reads never meets an open cursor', async () => {
    const db = openDatabase(':memory:');
    const insert = db.prepare(`INSERT INTO profiles (email, properties, first_seen, last_seen, updated_at) VALUES (?, '{"plan":"bulk"}', 0, 0, 0)`);
    for (let i = 0; i < 25; i++) insert.run(`bulk${i}@x.co`);
    const seen: string[] = [];
    for await (const m of streamSegment(db, { trait: 'plan', eq: 'bulk' }, NOW, 10)) {
      db.prepare('UPDATE profiles SET updated_at = updated_at + 1 WHERE id = ?').run(m.id);
      seen.push((m as SegmentProfile).email!);
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `bulk${i}@x.co`));
    db.close();
  });
});

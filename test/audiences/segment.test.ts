import { describe, it, expect, beforeEach } from 'vitest';
import { openDatabase, type Db } from '../../src/server/store/db.js';
import { streamSegment, segmentQuery } from '../../src/server/store/sqlite-segment.js';
import { profileToMember } from '../../src/server/audiences/segment.js';
import type { RuleNode } from '../../src/server/audiences/definition.js';

const NOW = Date.parse('2026-11-28T12:00:00Z');
const DAY = 864e5;
let db: Db;
let nextEvent = 0;

function profile(p: { email?: string; external_id?: string; anonymous_id?: string; first_name?: string; location?: object; properties?: object }): number {
  return Number(
    db.prepare(`INSERT INTO profiles (email, external_id, anonymous_id, first_name, location, properties, first_seen, last_seen, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(p.email ?? null, p.external_id ?? null, p.anonymous_id ?? null, p.first_name ?? null,
      p.location ? JSON.stringify(p.location) : null, p.properties ? JSON.stringify(p.properties) : null, NOW - 90 * DAY, NOW, NOW).lastInsertRowid,
  );
}

function event(profileId: number, name: string, daysAgo: number, properties: object = {}) {
  db.prepare(`INSERT INTO events (unique_id, public_key, type, name, properties, time, route, profile_id, profile, received_at)
    VALUES (?, 'PK1234', 'track', ?, ?, ?, 'server', ?, '{}', ?)`).run(`u${nextEvent++}`, name, JSON.stringify(properties), NOW - daysAgo * DAY, profileId, NOW);
}

async function collect(rules: RuleNode) {
  const out = [];
  for await (const p of streamSegment(db, rules, NOW)) out.push(profileToMember(p));
  return out;
}
const members = async (rules: RuleNode) => (await collect(rules)).map((m) => m.email ?? m.anonymous_id);

describe('segment rules over the store', () => {
  let ada: number, bob: number, cy: number, dee: number;
  beforeEach(() => {
    db = openDatabase(':memory:');
    ada = profile({ email: 'ada@x.co', first_name: 'Ada', location: { country: 'US', city: 'Austin' }, properties: { plan: 'gold', tags: ['vip', 'early'], orders: 5 } });
    bob = profile({ email: 'bob@x.co', location: { country: 'GB' }, properties: { plan: 'silver' } });
    cy = profile({ email: 'cy@x.co', location: { country: 'US' }, properties: { plan: 'Gold Plus' } });
    dee = profile({ anonymous_id: 'anon-dee' });
    event(ada, 'Viewed Product', 1, { Categories: ['Shoes', 'Sale'], Price: 80 });
    event(ada, 'Viewed Product', 2, { Categories: ['Shoes'], Price: 120 });
    event(ada, 'Viewed Product', 20, { Categories: ['Shoes'] });
    event(bob, 'Viewed Product', 1, { Categories: ['Hats'], Price: 20 });
    event(bob, 'Placed Order', 3, { Total: 40 });
    event(cy, 'Viewed Product', 5, { Categories: 'Running Shoes', Price: 60 });
    event(cy, 'Viewed Product', 6, { Categories: 'Running Shoes', Price: 70 });
    event(dee, 'Viewed Product', 1, {});
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
      properties: { plan: 'gold' }, event_count: 3, last_event_time: new Date(NOW - DAY).toISOString(), profile_id: ada,
    });
  });

  it('binds every value as a parameter (no injection through names or values)', async () => {
    const q = segmentQuery({ all: [{ event: "x'); DROP TABLE profiles; --", where: { "a'b": { eq: "'" } } }, { trait: "t'", eq: "'" }] }, NOW);
    expect(q.sql).not.toContain('DROP');
    expect(db.prepare(q.sql).all(0, ...q.params)).toEqual([]);
  });

  it('pages through large segments in id order without holding a cursor open', async () => {
    for (let i = 0; i < 25; i++) profile({ email: `bulk${i}@x.co`, properties: { plan: 'bulk' } });
    const seen: string[] = [];
    for await (const m of streamSegment(db, { trait: 'plan', eq: 'bulk' }, NOW, 10)) {
      // A write between reads, as the sync does: it must not trip over an open statement.
      db.prepare('UPDATE profiles SET updated_at = updated_at WHERE id = ?').run(m.id);
      seen.push(m.email as string);
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `bulk${i}@x.co`));
  });
});

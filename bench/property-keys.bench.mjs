// Property-key suggestions benchmark (built dist/node; run `npm run build` first): how long the console's
// GET /v1/admin/events/properties and /profiles/properties store reads take on a small store and on a large one,
// on SQLite and on PostgreSQL (a throwaway local cluster). The reads are bounded (the newest 500 events of a name,
// the newest 500 profiles with custom data among the newest 10,000), so the large store must answer about as fast
// as the small one. Targets: median ≤ 50 ms per read on the large store, and ≤ 3× the small store's median
// (floored at 1 ms).
// BENCH_PROPERTY_KEYS_LARGE=200000 sizes the large store (default 1,000,000 events and as many profiles).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => join(root, 'dist/node', p);
if (!existsSync(dist('server/store/open.js'))) {
  console.error('dist/node is missing: run `npm run build` (or `npx tsc -p tsconfig.node.json`) first.');
  process.exit(1);
}
const { openStore } = await import(dist('server/store/open.js'));

const SMALL = 10_000;
const LARGE = Number(process.env.BENCH_PROPERTY_KEYS_LARGE ?? 1_000_000);
const TARGET_MS = 50;
const TARGET_RATIO = 3;
const READS = 25;
const work = mkdtempSync(join(tmpdir(), 'relay-property-keys-bench-'));

/**
 * `size` events (every other one a Placed Order with four properties, the rest Viewed Product) and `size` profiles
 * (one in ten identified with custom properties and a city, the rest anonymous visitors carrying none), written
 * straight into the store's tables as intake would leave them. `series`/`json`/`text` adapt the SQL per backend.
 */
const seedSql = (size, series, json, text) => [
  `INSERT INTO events (unique_id, public_key, type, name, properties, time, route, profile, received_at)
    SELECT 'u' || ${text('i')}, 'Ab12Cd', 'track', CASE WHEN i % 2 = 0 THEN 'Placed Order' ELSE 'Viewed Product' END,
      CASE WHEN i % 2 = 0 THEN ${json("'Total'", 'i % 500', "'Categories'", `'Shoes'`, "'OrderId'", `'o' || ${text('i')}`, "'Coupon'", `'C' || ${text('i % 7')}`)}
        ELSE ${json("'ProductName'", `'Hat ' || ${text('i % 100')}`)} END,
      ${Date.UTC(2026, 0, 1)} + i * 1000, 'client', ${json()}, ${Date.UTC(2026, 0, 1)} + i * 1000
    FROM ${series(size)}`,
  `INSERT INTO profiles (email, anonymous_id, location, properties, first_seen, last_seen, updated_at)
    SELECT CASE WHEN i % 10 = 0 THEN 'p' || ${text('i')} || '@example.com' END, 'anon-' || ${text('i')},
      CASE WHEN i % 10 = 0 THEN ${json("'city'", `'City' || ${text('i % 300')}`)} END,
      CASE WHEN i % 10 = 0 THEN ${json("'plan'", `'gold'`, "'Loyalty Tier'", 'i % 5')} END,
      ${Date.UTC(2026, 0, 1)}, ${Date.UTC(2026, 0, 1)}, ${Date.UTC(2026, 0, 1)}
    FROM ${series(size)}`,
];

async function seedSqlite(dataDir, size) {
  const { openDatabase } = await import(dist('server/store/db.js'));
  const db = openDatabase(dataDir);
  for (const sql of seedSql(size,
    (n) => `(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ${n}) SELECT i FROM s)`,
    (...kv) => `json_object(${kv.join(', ')})`, (x) => `CAST(${x} AS TEXT)`)) db.exec(sql);
  db.close();
  return openStore({ dataDir });
}

async function seedPostgres(url, size) {
  const opened = await openStore({ databaseUrl: url, dataDir: join(work, 'unused') }); // applies every migration
  const { pool } = opened.backend;
  await pool.query('TRUNCATE events, profiles RESTART IDENTITY CASCADE');
  for (const sql of seedSql(size, (n) => `generate_series(0, ${n - 1}) AS i`, (...kv) => `jsonb_build_object(${kv.join(', ')})`, (x) => `(${x})::text`)) {
    await pool.query(sql);
  }
  await pool.query('ANALYZE');
  return opened;
}

/** Median wall time of READS reads (after one warm-up). */
async function median(read) {
  await read();
  const times = [];
  for (let i = 0; i < READS; i++) {
    const start = performance.now();
    await read();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const checks = [];
const fmt = (n) => Math.round(n).toLocaleString('en-US');
let cluster;
try {
  const { startPostgresCluster } = await import(join(root, 'demo/postgres-cluster.mjs'));
  cluster = await startPostgresCluster();
  for (const [backend, seed, store] of [['SQLite', seedSqlite, (size) => join(work, `sqlite-${size}`)], ['PostgreSQL', seedPostgres, () => cluster.url]]) {
    const medians = {};
    for (const size of [SMALL, LARGE]) {
      const opened = await seed(store(size), size);
      try {
        const events = await opened.relay.eventPropertyKeys('Placed Order', 500);
        const profiles = await opened.relay.profilePropertyKeys(500);
        if (events.sampled !== 500 || events.keys[0]?.count !== 500) throw new Error(`${backend}: unexpected event sample ${JSON.stringify(events)}`);
        if (profiles.sampled !== 500 || !profiles.keys.some((k) => k.key === 'properties.plan' && k.count === 500)) throw new Error(`${backend}: unexpected profile sample ${JSON.stringify(profiles)}`);
        medians[size] = {
          events: await median(() => opened.relay.eventPropertyKeys('Placed Order', 500)),
          profiles: await median(() => opened.relay.profilePropertyKeys(500)),
        };
      } finally {
        await opened.close();
      }
    }
    for (const read of ['events', 'profiles']) {
      const small = medians[SMALL][read];
      const large = medians[LARGE][read];
      checks.push({ what: `${backend} ${read}/properties, ${fmt(LARGE)} ${read}: median`, value: `${large.toFixed(1)} ms`, target: `≤ ${TARGET_MS} ms`, pass: large <= TARGET_MS });
      checks.push({ what: `${backend} ${read}/properties: ${fmt(LARGE)} vs ${fmt(SMALL)} ${read}`, value: `${large.toFixed(1)} vs ${small.toFixed(1)} ms (${(large / small).toFixed(2)}×)`, target: `≤ ${TARGET_RATIO}× (the small store's floored at 1 ms: sub-millisecond noise)`, pass: large <= Math.max(small, 1) * TARGET_RATIO });
    }
  }
} finally {
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
}

console.log('| check | measured | target | |\n|---|---|---|---|');
for (const c of checks) console.log(`| ${c.what} | ${c.value} | ${c.target} | ${c.pass ? 'ok' : 'MISSED'} |`);
process.exitCode = checks.every((c) => c.pass) ? 0 : 1;

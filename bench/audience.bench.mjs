// Audience sync benchmark (built dist/node; run `npm run build` or `npx tsc -p tsconfig.node.json` first).
// Generates file audiences of 100,000 and 1,000,000 members on disk, then runs `klaviyo-relay sync` as its own
// process (so its peak RSS is its own) against the sandbox, which also runs as its own process:
//   - rate limits off: first sync (everything imported), then a re-run with 1% of the members changed;
//   - rate limits on (100k): a first sync, checked against the schedule Klaviyo's published limits allow.
// It counts every request the sandbox received, per operation, and compares with the minimum the per-request
// limits allow (10,000 profiles per import job; each job needs one status read to be confirmed).
//   - a segment audience of 1,000,000 store profiles, synced from SQLite and from PostgreSQL (a throwaway local
//     cluster with durable settings): time and peak RSS of the sync process, side by side.
// Targets: 1M members within 256 MB peak RSS (per instance, whichever store), ≥ 20,000 members/s mapped and
// diffed, requests within 2% of the minimum. Exits non-zero on a miss. BENCH_AUDIENCE_SIZES=100000 runs a subset
// of the file runs (0 skips them); BENCH_AUDIENCE_SEGMENT=200000 sizes the segment runs (0 skips them).
import { fork, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => join(root, 'dist/node', p);
if (!existsSync(dist('emulator/index.js')) || !existsSync(dist('server/audiences/cli.js'))) {
  console.error('dist/node is missing: run `npm run build` (or `npx tsc -p tsconfig.node.json`) first.');
  process.exit(1);
}

const SIZES = (process.env.BENCH_AUDIENCE_SIZES || '100000,1000000').split(',').map(Number).filter(Boolean);
const SEGMENT_SIZE = Number(process.env.BENCH_AUDIENCE_SEGMENT ?? 1_000_000);
const PRIVATE_KEY = 'pk_bench_0123456789abcdefghijkl';
const TARGET_RSS_MB = 256;
const TARGET_RATE = 20_000;
const TARGET_REQUEST_SLACK = 0.02;
const IMPORT_JOB = 10_000;
const work = mkdtempSync(join(tmpdir(), 'relay-audience-bench-'));

// ---------------------------------------------------------------- data

/** One member row; `version` changes the first name of the members it touches. */
function row(i, version) {
  const phone = i % 5 === 0 ? `+1415${String(2000000 + (i % 7999999)).padStart(7, '0')}` : '';
  return `C${i},member${i}@example.com,${phone},${version}First${i % 1000},Last${i % 5000},City${i % 300},${(i % 997) + 0.5},${['gold', 'silver', 'bronze'][i % 3]}\n`;
}

/** Writes the audience CSV; `changedEvery` members (1 in N) get a new first name. */
async function writeAudience(path, size, changedEvery = 0) {
  const out = createWriteStream(path);
  out.write('id,email,phone,first_name,last_name,city,ltv,tier\n');
  let buf = '';
  for (let i = 0; i < size; i++) {
    buf += row(i, changedEvery && i % changedEvery === 0 ? 'New' : '');
    if (buf.length > 1 << 16) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
}

const audience = (name, path, consent = 'never_subscribed') => ({
  name,
  source: { type: 'file', path },
  list: { create: `Bench ${name}`, optInProcess: 'single_opt_in' },
  consent,
  mapping: [
    { from: 'id', to: 'external_id' }, { from: 'email', to: 'email' }, { from: 'phone', to: 'phone_number' },
    { from: 'first_name', to: 'first_name' }, { from: 'last_name', to: 'last_name' }, { from: 'city', to: 'location.city' },
    { from: 'ltv', to: 'properties.ltv' }, { from: 'tier', to: 'properties.tier' },
  ],
});

// ---------------------------------------------------------------- sandbox process

const EMULATOR_CHILD = `
const { startEmulator } = await import(process.argv[2]);
const emu = await startEmulator({ port: 0, rateLimits: process.argv[3] === 'on', jobDelayMs: 20, privateKey: process.argv[4] });
const counts = {};
let throttled = 0;
// Count and drop logged requests often: the log keeps bodies (5 MB imports) we do not need here.
setInterval(() => {
  for (const r of emu.requests.splice(0)) {
    counts[r.operationId ?? r.path] = (counts[r.operationId ?? r.path] ?? 0) + 1;
    if (r.status === 429) throttled++;
  }
}, 50);
process.on('message', (m) => {
  if (m === 'stats') {
    for (const r of emu.requests.splice(0)) { counts[r.operationId ?? r.path] = (counts[r.operationId ?? r.path] ?? 0) + 1; if (r.status === 429) throttled++; }
    process.send({ counts: { ...counts }, throttled });
    for (const k of Object.keys(counts)) delete counts[k];
    throttled = 0;
  }
  if (m === 'close') emu.close().then(() => process.exit(0));
});
process.send({ url: emu.url });
`;

async function startSandbox(rateLimits) {
  const script = join(work, 'emulator-child.mjs');
  writeFileSync(script, EMULATOR_CHILD);
  const child = fork(script, [dist('emulator/index.js'), rateLimits ? 'on' : 'off', PRIVATE_KEY], {
    execArgv: ['--max-old-space-size=12288'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [{ url }] = await once(child, 'message');
  return {
    url,
    stats: async () => {
      child.send('stats');
      const [s] = await once(child, 'message');
      return s;
    },
    close: async () => {
      child.send('close');
      await once(child, 'exit');
    },
  };
}

// ---------------------------------------------------------------- sync process

const SYNC_CHILD = `
const { main } = await import(process.argv[2]);
const started = performance.now();
const code = await main(process.argv.slice(3));
const wallMs = performance.now() - started;
console.error('BENCH ' + JSON.stringify({ code, wallMs, maxRssKb: process.resourceUsage().maxRSS }));
process.exitCode = code;
`;

/** `store`: the SQLite data folder, or a postgres:// URL. */
async function runSync(name, configPath, store, baseUrl) {
  const script = join(work, 'sync-child.mjs');
  writeFileSync(script, SYNC_CHILD);
  const storeEnv = store.startsWith('postgres') ? { DATABASE_URL: store } : { RELAY_DATA_DIR: store };
  const child = spawn(process.execPath, [script, dist('cli.js'), 'sync', name, '--config', configPath], {
    env: { PATH: process.env.PATH, KLAVIYO_PRIVATE_KEY: PRIVATE_KEY, KLAVIYO_BASE_URL: baseUrl, ...storeEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  await once(child, 'exit');
  const m = /BENCH (\{.*\})/.exec(out);
  if (!m) throw new Error(`sync ${name} crashed:\n${out}`);
  const result = JSON.parse(m[1]);
  const counts = Object.fromEntries([...out.matchAll(/\b(read|unchanged|imported|failed)=(\d+)/g)].map((x) => [x[1], Number(x[2])]));
  const status = /#\d+ \S+ (success|partial|failed)/.exec(out)?.[1];
  return { ...result, counts, status, out };
}

// ---------------------------------------------------------------- limits

/** Requests the sync needs at the least: list lookup (+ create), and per import job one POST and one status GET. */
function minimumRequests(changed, listCreated) {
  const jobs = Math.ceil(changed / IMPORT_JOB);
  return 1 + (listCreated ? 1 : 0) + 2 * jobs;
}

/** Published per-endpoint limits (burst/s, steady/m) of the calls a file sync makes. */
const PUBLISHED = {
  get_lists: [75, 750], create_list: [10, 150], bulk_import_profiles: [10, 150], get_bulk_import_profiles_job: [10, 150],
  get_errors_for_bulk_import_profiles_job: [10, 150], bulk_subscribe_profiles: [75, 750],
};

/** Seconds the fastest schedule within burst and steady windows needs to send n requests to one endpoint. */
function scheduleSeconds(n, [burst, steady]) {
  const times = [];
  for (let i = 0; i < n; i++) {
    let t = 0;
    if (i >= burst) t = Math.max(t, times[i - burst] + 1);
    if (i >= steady) t = Math.max(t, times[i - steady] + 60);
    times.push(t);
  }
  return n ? times[n - 1] : 0;
}

const scheduleFor = (counts) => Math.max(0, ...Object.entries(counts).map(([op, n]) => (PUBLISHED[op] ? scheduleSeconds(n, PUBLISHED[op]) : 0)));
const totalOf = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------- segment audiences

const SEGMENT = {
  name: 'segment',
  source: { type: 'segment', rules: { all: [{ trait: 'tier', exists: true }, { not: { trait: 'tier', eq: 'none' } }] } },
  list: { create: 'Bench segment', optInProcess: 'single_opt_in' },
  consent: 'never_subscribed',
  mapping: [
    { from: 'external_id', to: 'external_id' }, { from: 'email', to: 'email' }, { from: 'first_name', to: 'first_name' },
    { from: 'location.city', to: 'location.city' }, { from: 'tier', to: 'properties.tier' }, { from: 'ltv', to: 'properties.ltv' },
  ],
};

/** `size` store profiles, every one in SEGMENT, written straight into the store's tables (as intake would leave them). */
const SEED_SELECT = (size, series, json) => `
  SELECT 'member' || i || '@example.com', 'C' || i, 'First' || (i % 1000),
    ${json('city', `'City' || (i % 300)`)}, ${json('tier', `(ARRAY['gold','silver','bronze'])[(i % 3) + 1]`, 'ltv', `(i % 997) + 0.5`)},
    ${Date.UTC(2026, 0, 1)}, ${Date.UTC(2026, 0, 1)}, ${Date.UTC(2026, 0, 1)}
  FROM ${series(size)}`;
const PROFILE_COLUMNS = 'email, external_id, first_name, location, properties, first_seen, last_seen, updated_at';

async function seedSqlite(dataDir, size) {
  const { openDatabase } = await import(dist('server/store/db.js'));
  const db = openDatabase(dataDir);
  // SQLite has no arrays: the tier comes from a CASE instead.
  const sql = SEED_SELECT(size, (n) => `(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ${n}) SELECT i FROM s)`,
    (...kv) => `json_object(${kv.map((x, i) => (i % 2 ? x : `'${x}'`)).join(', ')})`)
    .replace(`(ARRAY['gold','silver','bronze'])[(i % 3) + 1]`, `CASE i % 3 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' ELSE 'bronze' END`);
  db.exec(`INSERT INTO profiles (${PROFILE_COLUMNS}) ${sql}`);
  db.close();
}

async function seedPostgres(url, size) {
  const { openStore } = await import(dist('server/store/open.js'));
  const opened = await openStore({ databaseUrl: url, dataDir: join(work, 'unused') }); // applies every migration
  await opened.close();
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`INSERT INTO profiles (${PROFILE_COLUMNS}) ${SEED_SELECT(size, (n) => `generate_series(0, ${n - 1}) AS i`,
    (...kv) => `jsonb_build_object(${kv.map((x, i) => (i % 2 ? x : `'${x}'`)).join(', ')})`)}`);
  await client.query('ANALYZE');
  await client.end();
}

// ---------------------------------------------------------------- run

const rows = [];
const checks = [];
const check = (what, value, target, pass) => checks.push({ what, value, target, pass });
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const mb = (kb) => kb / 1024;

try {
  const configPath = join(work, 'relay.config.json');
  const names = SIZES.map((n) => `m${n}`);
  const limitedSize = SIZES.length ? Math.min(...SIZES) : 0;
  writeFileSync(configPath, JSON.stringify({
    publicKey: 'Ab12Cd',
    // The rate-limited run also subscribes everyone: 1,000 per job, more jobs than one second's burst allows.
    audiences: [...names.map((name) => audience(name, `${name}.csv`)), audience('limited', `m${limitedSize}.csv`, 'subscribed'), SEGMENT],
  }));

  const sandbox = await startSandbox(false);
  try {
    for (const size of SIZES) {
      const name = `m${size}`;
      const csv = join(work, `${name}.csv`);
      const dataDir = join(work, `state-${name}`);
      await writeAudience(csv, size);

      const first = await runSync(name, configPath, dataDir, sandbox.url);
      const firstStats = await sandbox.stats();
      const firstRequests = totalOf(firstStats.counts);
      const firstMin = minimumRequests(size, true);
      rows.push({ run: `${fmt(size)} first sync`, ...first, requests: firstRequests, minimum: firstMin, ops: firstStats.counts });

      await writeAudience(csv, size, 100); // 1% changed
      const rerun = await runSync(name, configPath, dataDir, sandbox.url);
      const rerunStats = await sandbox.stats();
      const rerunRequests = totalOf(rerunStats.counts);
      const rerunMin = minimumRequests(size / 100, false);
      rows.push({ run: `${fmt(size)} re-run, 1% changed`, ...rerun, requests: rerunRequests, minimum: rerunMin, ops: rerunStats.counts });

      const label = fmt(size);
      check(`${label}: first sync status`, first.status, 'success', first.status === 'success' && first.counts.imported === size);
      check(`${label}: re-run status`, rerun.status, `success, ${fmt(size / 100)} sent`, rerun.status === 'success' && rerun.counts.imported === size / 100);
      // Mapped and diffed: the re-run maps and diffs every member (and sends 1%). The first sync also waits for
      // the sandbox to import everything on the same two cores, so its rate is shown for information.
      check(`${label}: re-run members/s (mapped and diffed)`, fmt(size / (rerun.wallMs / 1000)), `≥ ${fmt(TARGET_RATE)}`, size / (rerun.wallMs / 1000) >= TARGET_RATE);
      check(`${label}: first sync members/s (map, diff, import, confirm)`, fmt(size / (first.wallMs / 1000)), 'info', true);
      check(`${label}: re-run with 1% changed, wall time`, `${(rerun.wallMs / 1000).toFixed(1)} s`, 'info', true);
      check(`${label}: first sync requests vs minimum`, `${firstRequests} / ${firstMin}`, '≤ +2%', firstRequests <= firstMin * (1 + TARGET_REQUEST_SLACK));
      check(`${label}: re-run requests vs minimum`, `${rerunRequests} / ${rerunMin}`, '≤ +2%', rerunRequests <= rerunMin * (1 + TARGET_REQUEST_SLACK));
      const peak = Math.max(mb(first.maxRssKb), mb(rerun.maxRssKb));
      check(`${label}: peak RSS of the sync process`, `${peak.toFixed(0)} MB`, `≤ ${TARGET_RSS_MB} MB`, size < 1_000_000 || peak <= TARGET_RSS_MB);
      check(`${label}: first sync's requests at Klaviyo's published limits need at least`, `${scheduleFor(firstStats.counts)} s`, 'info', true);
      rmSync(csv, { force: true });
    }
  } finally {
    await sandbox.close();
  }

  // Rate limits on: the client-side limiter keeps the sync inside Klaviyo's published limits (no 429s).
  if (limitedSize) {
    const limited = await startSandbox(true);
    try {
      const csv = join(work, `m${limitedSize}.csv`);
      await writeAudience(csv, limitedSize);
      const run = await runSync('limited', configPath, join(work, 'state-limited'), limited.url);
      const stats = await limited.stats();
      const schedule = scheduleFor(stats.counts);
      const minimum = minimumRequests(limitedSize, true) + Math.ceil(limitedSize / 1000);
      const requests = totalOf(stats.counts);
      rows.push({ run: `${fmt(limitedSize)} first sync + subscribe, rate limits on`, ...run, requests, minimum, ops: stats.counts });
      check(`${fmt(limitedSize)} rate-limited: status`, run.status, 'success', run.status === 'success');
      check(`${fmt(limitedSize)} rate-limited: 429 answers`, stats.throttled, '0', stats.throttled === 0);
      check(`${fmt(limitedSize)} rate-limited: requests vs minimum`, `${requests} / ${minimum}`, '≤ +2%', requests <= minimum * (1 + TARGET_REQUEST_SLACK));
      check(`${fmt(limitedSize)} rate-limited: wall time vs the schedule the limits allow`, `${(run.wallMs / 1000).toFixed(1)} s vs ≥ ${schedule} s`, 'info', true);
    } finally {
      await limited.close();
    }
  }

  // Segment sync of SEGMENT_SIZE store profiles: the same run on SQLite, then on PostgreSQL.
  if (SEGMENT_SIZE > 0) {
    const { startPostgresCluster } = await import(join(root, 'demo/postgres-cluster.mjs'));
    const cluster = await startPostgresCluster();
    const sandbox = await startSandbox(false);
    try {
      const figures = {};
      for (const [backend, store, seed] of [
        ['SQLite', join(work, 'state-segment'), seedSqlite],
        ['PostgreSQL', cluster.url, seedPostgres],
      ]) {
        await seed(store, SEGMENT_SIZE);
        const run = await runSync(SEGMENT.name, configPath, store, sandbox.url);
        const stats = await sandbox.stats();
        const requests = totalOf(stats.counts);
        // Each backend creates the list once: the sandbox keeps state, so the second one finds it by name.
        const minimum = minimumRequests(SEGMENT_SIZE, backend === 'SQLite');
        rows.push({ run: `${fmt(SEGMENT_SIZE)} segment first sync, ${backend}`, ...run, requests, minimum, ops: stats.counts });
        figures[backend] = run;
        const label = `${fmt(SEGMENT_SIZE)} segment on ${backend}`;
        check(`${label}: status`, run.status, 'success', run.status === 'success' && run.counts.imported === SEGMENT_SIZE);
        check(`${label}: peak RSS of the sync process`, `${mb(run.maxRssKb).toFixed(0)} MB`, `≤ ${TARGET_RSS_MB} MB`, SEGMENT_SIZE < 1_000_000 || mb(run.maxRssKb) <= TARGET_RSS_MB);
        check(`${label}: wall time`, `${(run.wallMs / 1000).toFixed(1)} s (${fmt(SEGMENT_SIZE / (run.wallMs / 1000))} members/s)`, 'info', true);
      }
      if (figures.SQLite && figures.PostgreSQL) {
        check(`${fmt(SEGMENT_SIZE)} segment: PostgreSQL vs SQLite`, `${(figures.PostgreSQL.wallMs / 1000).toFixed(1)} s / ${mb(figures.PostgreSQL.maxRssKb).toFixed(0)} MB vs ${(figures.SQLite.wallMs / 1000).toFixed(1)} s / ${mb(figures.SQLite.maxRssKb).toFixed(0)} MB`, 'info', true);
      }
    } finally {
      await sandbox.close();
      await cluster.stop();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

// ---------------------------------------------------------------- report

console.log('| run | status | members read | imported | unchanged | wall time | members/s | peak RSS | requests (min) | per operation |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const r of rows) {
  const ops = Object.entries(r.ops).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`| ${r.run} | ${r.status} | ${fmt(r.counts.read ?? 0)} | ${fmt(r.counts.imported ?? 0)} | ${fmt(r.counts.unchanged ?? 0)} | ${(r.wallMs / 1000).toFixed(1)} s | ${fmt((r.counts.read ?? 0) / (r.wallMs / 1000))} | ${mb(r.maxRssKb).toFixed(0)} MB | ${r.requests} (${r.minimum}) | ${ops} |`);
}
console.log('\n| check | measured | target | result |');
console.log('|---|---:|---:|---|');
for (const c of checks) console.log(`| ${c.what} | ${c.value} | ${c.target} | ${c.target === 'info' ? '—' : c.pass ? 'PASS' : 'FAIL'} |`);
const failed = checks.filter((c) => !c.pass);
if (failed.length) console.log(`\n${failed.length} target(s) missed.`);
process.exitCode = failed.length ? 1 : 0;

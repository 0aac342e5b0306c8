// Browser snippet budgets (checked here, never in timed tests), measured on the built dist/ files:
// 1. size of every <script> variant: min+gzip (level 9) against its budget, and brotli (quality 11);
// 2. init: main-thread time of evaluating the core IIFE and applying its data-* config (synchronous work only),
//    median of several fresh pages in Chromium;
// 3. durable queueing: time from the first of 1,000 track() calls to the 1,000th `queued` hook (IndexedDB commit);
// 4. time to ready on a cold load with a companion endpoint (no cached config): from inserting the script to the
//    `ready` callback, the script's main-thread time over that span (CDP ScriptDuration), and where the time goes
//    (IndexedDB open, the /v1/config round trip);
// 5. backlog delivery: 1,000 events queued while Klaviyo was unreachable, then a new page load: requests on the wire
//    and time until the last one is accepted.
import { chromium } from '@playwright/test';
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';

/** Every <script> variant with its min+gzip budget; the first (the core) is also timed below. */
const VARIANTS = [
  { file: 'klaviyo-relay.min.js', label: 'core', gzipLimit: 7168 },
  { file: 'klaviyo-relay.gtm.min.js', label: 'core + GA4 dataLayer bridge', gzipLimit: 8192 },
];
const GZIP_GOAL = 5120;
const INIT_TARGET_MS = 5;
const QUEUE_TARGET_MS = 250;
const RUNS = Number(process.env.BENCH_SNIPPET_RUNS || 9);
const COLD_RUNS = Number(process.env.BENCH_SNIPPET_COLD_RUNS || 15);
const BACKLOG = 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const variant of VARIANTS) {
  const path = fileURLToPath(new URL('../dist/' + variant.file, import.meta.url));
  if (!existsSync(path)) {
    console.error(`dist/${variant.file} is missing: run \`npm run build\` first.`);
    process.exit(1);
  }
  variant.source = readFileSync(path);
  variant.gzip = gzipSync(variant.source, { level: 9 }).length;
  variant.brotli = brotliCompressSync(variant.source, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
}
const source = VARIANTS[0].source;
const bytes = (n) => `${n.toLocaleString('en-US')} B`;

// Same origin for the page, the fake Klaviyo and the fake companion, so the measurement has no CORS preflights in it.
// Klaviyo requests are counted with the events they carry (a bulk request carries many).
const wire = { requests: 0, events: new Set(), onEvent: () => {} };
const server = createServer((req, res) => {
  if (req.url.startsWith('/v1/config')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"workflow":{"default":"client"}}');
  if (req.method == 'POST') {
    const chunks = [];
    return void req.on('data', (c) => chunks.push(c)).on('end', () => {
      if (req.url.startsWith('/client/')) {
        wire.requests++;
        const { data } = JSON.parse(Buffer.concat(chunks).toString());
        const events = data.type == 'event-bulk-create' ? data.attributes.events.data : [data];
        for (const e of events) if (e.attributes.unique_id) wire.events.add(e.attributes.unique_id);
        wire.onEvent();
      }
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"accepted":0,"rejected":[]}');
    });
  }
  res.writeHead(200, { 'content-type': req.url == '/snippet.js' ? 'text/javascript' : 'text/html' });
  res.end(req.url == '/snippet.js' ? source : '<!doctype html><title>bench</title>');
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://127.0.0.1:${server.address().port}`;

// The same binary and flags as e2e/chromium.ts (a .ts file this plain-node script cannot import).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** Fresh page with an empty IndexedDB; injects the snippet as an inline <script data-…> and times its evaluation. */
async function loadSnippet(page) {
  await page.goto(origin + '/');
  const code = source.toString();
  return page.evaluate(async ({ code, origin }) => {
    await new Promise((ok) => Object.assign(indexedDB.deleteDatabase('klaviyo-relay'), { onsuccess: ok, onerror: ok, onblocked: ok }));
    const s = document.createElement('script');
    s.dataset.publicKey = 'ABC123';
    s.dataset.klaviyoUrl = origin;
    s.dataset.autoPage = 'false';
    s.textContent = code;
    const t0 = performance.now();
    document.head.appendChild(s); // an inline script runs synchronously here: parse, evaluate, apply config
    const initMs = performance.now() - t0;
    await new Promise((ok) => window.klaviyoRelay.ready(ok));
    return initMs;
  }, { code, origin });
}

/** Inserts the snippet with `data` attributes into the current page; resolves at `ready` with timings. */
const insertSnippet = (page, data) =>
  page.evaluate(async ({ code, data }) => {
    const s = document.createElement('script');
    Object.assign(s.dataset, data);
    s.textContent = code;
    const t0 = performance.now();
    document.head.appendChild(s);
    const initMs = performance.now() - t0;
    await new Promise((ok) => window.klaviyoRelay.ready(ok));
    const readyMs = performance.now() - t0;
    const config = performance.getEntriesByType('resource').find((r) => r.name.includes('/v1/config'));
    return { initMs, readyMs, configMs: config ? config.responseEnd - config.startTime : 0, configStart: config ? config.startTime - t0 : 0 };
  }, { code: source.toString(), data });

const emptyDb = (page) =>
  page.evaluate(() => new Promise((ok) => Object.assign(indexedDB.deleteDatabase('klaviyo-relay'), { onsuccess: ok, onerror: ok, onblocked: ok })));

/** A cold load with a companion endpoint: empty IndexedDB, config fetched for the first time. */
async function coldLoad() {
  const page = await browser.newPage();
  try {
    await page.goto(origin + '/');
    await emptyDb(page);
    // The time a bare IndexedDB open (with its upgrade) takes on this machine, in a database of its own.
    const idbOpenMs = await page.evaluate(() => new Promise((ok) => {
      const t0 = performance.now();
      const req = indexedDB.open('bench-open-' + Math.random());
      req.onupgradeneeded = () => req.result.createObjectStore('kv');
      req.onsuccess = () => ok(performance.now() - t0);
    }));
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const scriptTime = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name == 'ScriptDuration').value * 1e3;
    const before = await scriptTime();
    const timings = await insertSnippet(page, { publicKey: 'ABC123', klaviyoUrl: origin, endpoint: origin, autoPage: 'false' });
    return { ...timings, idbOpenMs, scriptMs: (await scriptTime()) - before };
  } finally {
    await page.close();
  }
}

/** 1,000 events queued while Klaviyo is unreachable (a closed port), then a new page load delivers them. */
async function backlogDelivery() {
  const dead = createServer();
  await new Promise((ok) => dead.listen(0, '127.0.0.1', ok));
  const deadUrl = `http://127.0.0.1:${dead.address().port}`;
  await new Promise((ok) => dead.close(ok));
  const context = await browser.newContext();
  try {
    const first = await context.newPage();
    await first.goto(origin + '/');
    await emptyDb(first);
    await insertSnippet(first, { publicKey: 'ABC123', klaviyoUrl: deadUrl, autoPage: 'false' });
    await first.evaluate((n) => new Promise((ok) => {
      const relay = window.klaviyoRelay;
      let queued = 0;
      relay.on('queued', () => ++queued == n && ok());
      for (let i = 0; i < n; i++) relay.track('Backlog Event', { i, ProductName: 'Hat', Price: 19.5 });
    }), BACKLOG);
    await first.close();
    wire.requests = 0;
    wire.events.clear();
    const second = await context.newPage();
    await second.goto(origin + '/');
    const all = new Promise((ok) => (wire.onEvent = () => wire.events.size >= BACKLOG && ok()));
    const t0 = performance.now();
    await insertSnippet(second, { publicKey: 'ABC123', klaviyoUrl: origin, autoPage: 'false' });
    await all;
    const ms = performance.now() - t0;
    wire.onEvent = () => {};
    return { ms, requests: wire.requests };
  } finally {
    await context.close();
  }
}

const inits = [];
const queues = [];
const colds = [];
let backlog;
try {
  for (let run = 0; run < RUNS; run++) {
    const page = await browser.newPage();
    inits.push(await loadSnippet(page));
    queues.push(
      await page.evaluate(
        () =>
          new Promise((ok) => {
            const relay = window.klaviyoRelay;
            let n = 0;
            const t0 = performance.now();
            relay.on('queued', () => ++n == 1000 && ok(performance.now() - t0));
            for (let i = 0; i < 1000; i++) relay.track('Bench Event', { i, ProductName: 'Hat', Price: 19.5 });
          }),
      ),
    );
    await page.close();
  }
  for (let run = 0; run < COLD_RUNS; run++) colds.push(await coldLoad());
  backlog = await backlogDelivery();
} finally {
  await browser.close();
  server.close();
}

const init = median(inits);
const queue = median(queues);
const cold = (key) => median(colds.map((c) => c[key]));
const rows = [
  ...VARIANTS.flatMap((v) => [
    [`${v.file} (${v.label}) min+gzip (level 9)`, bytes(v.gzip), `≤ ${bytes(v.gzipLimit)} (goal ≤ ${bytes(GZIP_GOAL)})`, v.gzip <= v.gzipLimit, v.gzip <= GZIP_GOAL ? '' : ' (over the goal)'],
    [`${v.file} brotli (q11)`, bytes(v.brotli), '—', true, ''],
  ]),
  [`core init main-thread time (median of ${RUNS})`, `${init.toFixed(2)} ms`, `≤ ${INIT_TARGET_MS} ms`, init <= INIT_TARGET_MS, ''],
  [`core: 1,000 track() durably queued (median of ${RUNS})`, `${queue.toFixed(1)} ms`, `< ${QUEUE_TARGET_MS} ms`, queue < QUEUE_TARGET_MS, ''],
  [`cold load with endpoint: ready (median of ${COLD_RUNS})`, `${cold('readyMs').toFixed(1)} ms`, '—', true, ''],
  [`cold load: script main-thread time to ready (median of ${COLD_RUNS})`, `${cold('scriptMs').toFixed(1)} ms`, '—', true, ''],
  [`cold load: /v1/config starts after / takes (median)`, `${cold('configStart').toFixed(1)} / ${cold('configMs').toFixed(1)} ms`, '—', true, ''],
  [`cold load: bare IndexedDB open (median)`, `${cold('idbOpenMs').toFixed(1)} ms`, '—', true, ''],
  [`${BACKLOG.toLocaleString('en-US')} queued events: time to deliver`, `${backlog.ms.toFixed(0)} ms`, '—', true, ''],
  [`${BACKLOG.toLocaleString('en-US')} queued events: Klaviyo requests`, `${backlog.requests}`, '≤ 3', backlog.requests <= 3, ''],
];
console.log('| snippet (Chromium ' + browser.version() + ') | measured | target | result |\n|---|---|---|---|');
for (const [label, value, target, ok, note] of rows) console.log(`| ${label} | ${value} | ${target} | ${ok ? 'PASS' : 'FAIL'}${note} |`);
console.log(`\nruns: init ${inits.map((x) => x.toFixed(2)).join(', ')} ms; queue ${queues.map((x) => x.toFixed(0)).join(', ')} ms; ready ${colds.map((c) => c.readyMs.toFixed(0)).join(', ')} ms`);
console.log('\n| peer (min+gzip, published) | bytes | IndexedDB write-ahead queue |\n|---|---|---|');
for (const v of VARIANTS) console.log(`| klaviyo-relay: ${v.file} | ${bytes(v.gzip)} | yes, per event |`);
for (const [name, kb] of [['Segment analytics-next', 31], ['RudderStack JS SDK v3', 34], ['PostHog JS', 122]]) console.log(`| ${name} | ~${kb} KB | no |`);
process.exitCode = rows.every((r) => r[3]) ? 0 : 1;

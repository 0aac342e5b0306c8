// Browser snippet budgets (checked here, never in timed tests), measured on the built dist/ files:
// 1. size of every <script> variant: min+gzip (level 9) against its budget, and brotli (quality 11);
// 2. init: main-thread time of evaluating the core IIFE and applying its data-* config (synchronous work only),
//    median of several fresh pages in Chromium;
// 3. durable queueing: time from the first of 1,000 track() calls to the 1,000th `queued` hook (IndexedDB commit).
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

// Same origin for the page and the fake Klaviyo, so the measurement has no CORS preflights in it.
const server = createServer((req, res) => {
  if (req.method == 'POST') return void req.resume().on('end', () => res.writeHead(202).end());
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

const inits = [];
const queues = [];
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
} finally {
  await browser.close();
  server.close();
}

const init = median(inits);
const queue = median(queues);
const rows = [
  ...VARIANTS.flatMap((v) => [
    [`${v.file} (${v.label}) min+gzip (level 9)`, bytes(v.gzip), `≤ ${bytes(v.gzipLimit)} (goal ≤ ${bytes(GZIP_GOAL)})`, v.gzip <= v.gzipLimit, v.gzip <= GZIP_GOAL ? '' : ' (over the goal)'],
    [`${v.file} brotli (q11)`, bytes(v.brotli), '—', true, ''],
  ]),
  [`core init main-thread time (median of ${RUNS})`, `${init.toFixed(2)} ms`, `≤ ${INIT_TARGET_MS} ms`, init <= INIT_TARGET_MS, ''],
  [`core: 1,000 track() durably queued (median of ${RUNS})`, `${queue.toFixed(1)} ms`, `< ${QUEUE_TARGET_MS} ms`, queue < QUEUE_TARGET_MS, ''],
];
console.log('| snippet (Chromium ' + browser.version() + ') | measured | target | result |\n|---|---|---|---|');
for (const [label, value, target, ok, note] of rows) console.log(`| ${label} | ${value} | ${target} | ${ok ? 'PASS' : 'FAIL'}${note} |`);
console.log(`\nruns: init ${inits.map((x) => x.toFixed(2)).join(', ')} ms; queue ${queues.map((x) => x.toFixed(0)).join(', ')} ms`);
console.log('\n| peer (min+gzip, published) | bytes | IndexedDB write-ahead queue |\n|---|---|---|');
for (const v of VARIANTS) console.log(`| klaviyo-relay: ${v.file} | ${bytes(v.gzip)} | yes, per event |`);
for (const [name, kb] of [['Segment analytics-next', 31], ['RudderStack JS SDK v3', 34], ['PostHog JS', 122]]) console.log(`| ${name} | ~${kb} KB | no |`);
process.exitCode = rows.every((r) => r[3]) ? 0 : 1;

// Sandbox intake benchmark (built dist/node; run `npm run build` or `npx tsc -p tsconfig.node.json` first).
// The sandbox runs as its own process (`klaviyo-relay emulator`, rate limits off, validation on); this process
// drives a fixed number of keep-alive POST /client/events requests at it on 127.0.0.1 and stops by itself.
// Target: at least 5,000 validated requests/s, so the sandbox is never the bottleneck of the other benchmarks.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = (p) => join(root, 'dist/node', p);
if (!existsSync(dist('emulator/index.js')) || !existsSync(dist('shared/klaviyo-payloads.js'))) {
  console.error('dist/node is missing: run `npm run build` (or `npx tsc -p tsconfig.node.json`) first.');
  process.exit(1);
}
const { eventBody } = await import(dist('shared/klaviyo-payloads.js'));
const { KLAVIYO_REVISION } = await import(dist('shared/revision.js'));

const TARGET = 5000; // validated requests/s
const REQUESTS = Number(process.env.BENCH_EMULATOR_REQUESTS || 40_000);
const WARMUP = 2000;
const CONCURRENCY = Number(process.env.BENCH_EMULATOR_CONCURRENCY || 32);
const PUBLIC_KEY = 'Ab12Cd';

function startEmulatorProcess() {
  const child = spawn(process.execPath, [join(root, 'bin/klaviyo-relay.mjs'), 'emulator', '--port', '0', '--no-rate-limits', '--public-key', PUBLIC_KEY], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: new URL(m[1]) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`emulator exited ${code}: ${out}`)));
  });
}

/** Realistic storefront events: a product view with a handful of properties, a known or anonymous visitor. */
function body(i) {
  const visitor = i % 5000;
  return JSON.stringify(eventBody({
    name: i % 10 === 0 ? 'Added to Cart' : 'Viewed Product',
    properties: { ProductName: `Hat ${i % 97}`, ProductID: String(i % 97), Price: 19.5, Categories: ['Hats', 'Summer'], URL: `https://shop.example/p/${i % 97}` },
    time: new Date(Date.now() - i).toISOString(),
    value: 19.5,
    value_currency: 'USD',
    unique_id: `bench-${i}`,
    route: 'client',
    profile: { anonymous_id: `anon-${visitor}`, ...(visitor % 3 === 0 ? { email: `visitor${visitor}@example.com` } : {}) },
  }));
}

async function drive(url, count, offset, latencies) {
  // Bodies are serialised before the clock starts, so the measurement is the sandbox's work, not the generator's.
  const payloads = Array.from({ length: count }, (_, i) => Buffer.from(body(offset + i)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const path = `/client/events?company_id=${PUBLIC_KEY}`;
  const statuses = new Map();
  let next = 0;
  const one = (i) =>
    new Promise((resolve, reject) => {
      const payload = payloads[i];
      const t0 = process.hrtime.bigint();
      const req = http.request(
        { host: url.hostname, port: url.port, path, method: 'POST', agent, headers: { 'content-type': 'application/vnd.api+json', revision: KLAVIYO_REVISION, 'content-length': payload.length } },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies?.push(Number(process.hrtime.bigint() - t0) / 1e6);
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const worker = async () => {
    while (next < count) await one(next++);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return { seconds, statuses };
}

/** CPU seconds (user + system) the sandbox process has used, from /proc; undefined where there is none. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

const { child, url } = await startEmulatorProcess();
let failed = false;
try {
  await drive(url, WARMUP, 10_000_000);
  const latencies = [];
  const cpu0 = cpuSeconds(child.pid);
  const { seconds, statuses } = await drive(url, REQUESTS, 0, latencies);
  const cpu = cpu0 === undefined ? undefined : cpuSeconds(child.pid) - cpu0;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  const rate = REQUESTS / seconds;
  const accepted = statuses.get(202) ?? 0;
  const stored = (await (await fetch(new URL('/__admin/state?latest=0', url))).json()).metrics.reduce((n, m) => n + m.count, 0);
  const pass = rate >= TARGET && accepted === REQUESTS;
  failed = !pass;
  const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(`Sandbox intake: ${fmt(REQUESTS)} POST /client/events (validated: company_id, revision, content type, JSON:API schema), ${CONCURRENCY} keep-alive connections, 127.0.0.1, Node ${process.version}.\n`);
  console.log('| measure | value | target | result |');
  console.log('|---|---|---|---|');
  console.log(`| requests/s | ${fmt(rate)} | ≥ ${fmt(TARGET)} | ${rate >= TARGET ? 'PASS' : 'FAIL'} |`);
  console.log(`| latency p50 | ${fmt(pct(50), 2)} ms | – | – |`);
  console.log(`| latency p99 | ${fmt(pct(99), 2)} ms | – | – |`);
  console.log(`| answered 202 | ${fmt(accepted)} of ${fmt(REQUESTS)} | all | ${accepted === REQUESTS ? 'PASS' : `FAIL ${JSON.stringify(Object.fromEntries(statuses))}`} |`);
  console.log(`| events stored (incl. warm-up) | ${fmt(stored)} | – | – |`);
  if (cpu) console.log(`| sandbox CPU per request | ${fmt((cpu / REQUESTS) * 1e6)} µs (≈ ${fmt(REQUESTS / cpu)} req/s per core) | – | – |`);
  console.log(`\nLoad average while measuring: ${loadavg().map((n) => n.toFixed(1)).join(' / ')} on this machine's cores; the load generator shares them.`);
} finally {
  child.kill('SIGTERM');
}
process.exitCode = failed ? 1 : 0;

// `node demo/start.mjs` (what `npm start` runs after building) boots the sandbox, the companion server and the
// storefront on the ports given by env, the storefront delivers an event, and SIGINT stops everything cleanly.
// A port already in use is refused with a message naming it and the env var that moves it; so is a mistyped flag. `--postgres` runs the
// companion server on a throwaway PostgreSQL cluster that the demo starts, prints and stops.
import { test, expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Free ports, found by binding port 0 (held until every one is picked, so they differ). */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
    servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

function startDemo(env: Record<string, string>, args: string[] = []) {
  const child = spawn(process.execPath, ['demo/start.mjs', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
  return { child, exited, output: () => output };
}

let dataDir: string;
let running: ChildProcess | undefined;
test.beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'relay-demo-'));
});
test.afterAll(async () => {
  // SIGINT first: a demo on --postgres stops its cluster on the way out (SIGKILL would leave it running).
  if (running && running.exitCode === null && running.signalCode === null) {
    const exited = new Promise((ok) => running!.once('exit', ok));
    running.kill('SIGINT');
    const force = setTimeout(() => running?.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test('demo/start.mjs boots, the storefront delivers an event, Ctrl-C stops it', async ({ page }) => {
  const [store, relay, sandbox] = await freePorts(3);
  const demo = startDemo({ STORE_PORT: String(store), RELAY_PORT: String(relay), SANDBOX_PORT: String(sandbox), DEMO_DATA_DIR: dataDir });
  running = demo.child;
  await expect.poll(demo.output, { timeout: 20_000 }).toContain('Ctrl-C stops everything');
  const out = demo.output();
  expect(out).toContain(`http://localhost:${store}/`);
  expect(out).toContain(`http://localhost:${relay}`);
  expect(out).toContain(`http://localhost:${sandbox}/`);
  expect(out).toMatch(/Admin token\s+demo-admin-[0-9a-f]+/);
  expect(out).toMatch(new RegExp(`Operator console\\s+http://localhost:${relay}/admin/`));
  expect(out).not.toMatch(/pk_demo_[0-9a-f]/); // the private key is never printed

  await page.goto(`http://localhost:${store}/product?id=TR-2`);
  await expect(page.locator('h1')).toHaveText('Trail Runner 2');
  await expect(page.locator('[data-qa-panel]')).toContainText('Workflow toggles');
  // The product view reaches the sandbox (client route), as its admin API reports.
  const metric = async (name: string) => {
    const state = await (await fetch(`http://127.0.0.1:${sandbox}/__admin/state`)).json();
    return state.metrics.find((m: { name: string }) => m.name == name)?.count ?? 0;
  };
  await expect.poll(() => metric('Viewed Product'), { timeout: 15_000 }).toBe(1);
  await expect(page.locator('[data-qa-panel]')).toContainText('Viewed Product');
  expect((await fetch(`http://127.0.0.1:${relay}/healthz`)).status).toBe(200);

  demo.child.kill('SIGINT');
  expect(await demo.exited).toBe(0);
  expect(demo.output()).toContain('stopped.');
  running = undefined;
  await expect(fetch(`http://127.0.0.1:${store}/`)).rejects.toThrow();
});

test('a port in use is refused with a clear message', async () => {
  const [store, relay, sandbox] = await freePorts(3);
  const squatter = createServer();
  await new Promise<void>((ok) => squatter.listen(relay, '127.0.0.1', ok));
  try {
    const demo = startDemo({ STORE_PORT: String(store), RELAY_PORT: String(relay), SANDBOX_PORT: String(sandbox), DEMO_DATA_DIR: dataDir });
    expect(await demo.exited).toBe(1);
    expect(demo.output()).toContain(`port ${relay} (companion server) is already in use`);
    expect(demo.output()).toContain('RELAY_PORT=');
  } finally {
    await new Promise((ok) => squatter.close(ok));
  }
});

test('a mistyped flag, or --postgres given to npm instead of the demo, stops the start instead of running SQLite quietly', async () => {
  const [store, relay, sandbox] = await freePorts(3);
  const env = { STORE_PORT: String(store), RELAY_PORT: String(relay), SANDBOX_PORT: String(sandbox), DEMO_DATA_DIR: dataDir };
  const started: ChildProcess[] = [];
  const demo = (extraEnv: Record<string, string>, args: string[]) => {
    const d = startDemo({ ...env, ...extraEnv }, args);
    started.push(d.child);
    // Its exit code, or 'running' once the banner shows it started after all.
    const outcome = new Promise<number | null | 'running'>((ok) => {
      void d.exited.then(ok);
      d.child.stdout!.on('data', () => d.output().includes('Ctrl-C stops everything') && ok('running'));
    });
    return { ...d, outcome };
  };
  try {
    const typo = demo({}, ['--postgress']);
    expect(await typo.outcome).toBe(1);
    expect(typo.output()).toContain("Unknown option '--postgress'");
    expect(typo.output()).toContain('--postgres   keep the companion server');
    // `npm start --postgres` runs the demo without the flag and npm_config_postgres set.
    const eatenByNpm = demo({ npm_config_postgres: 'true' }, []);
    expect(await eatenByNpm.outcome).toBe(1);
    expect(eatenByNpm.output()).toContain('npm took --postgres for itself: put it after --, as in npm start -- --postgres');
    const help = demo({}, ['--help']);
    expect(await help.outcome).toBe(0);
    expect(help.output()).toMatch(/^Usage: npm start \[-- \[--postgres\] \[--reset\]\]/);
  } finally {
    // A demo that started after all (the check broken) must not outlive the test.
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  }
});

test('npm start -- --postgres: the companion server keeps its data in a local PostgreSQL cluster, stopped on exit', async () => {
  const [store, relay, sandbox] = await freePorts(3);
  const pgDataDir = join(dataDir, 'postgres-demo');
  const demo = startDemo({ STORE_PORT: String(store), RELAY_PORT: String(relay), SANDBOX_PORT: String(sandbox), DEMO_DATA_DIR: pgDataDir }, ['--postgres']);
  running = demo.child;
  await expect.poll(demo.output, { timeout: 30_000 }).toContain('Ctrl-C stops everything');
  const [, url, folder] = /Data\s+PostgreSQL (postgres:\/\/\S+)\s+\(a throwaway cluster in (\S+),/.exec(demo.output()) ?? [];
  expect(url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
  const pid = Number(readFileSync(join(folder!, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);

  // A server-routed event goes through the PostgreSQL store to the sandbox, and the QA panel's store view sees it.
  const event = { type: 'track', name: 'Placed Order', properties: {}, time: new Date().toISOString(), unique_id: crypto.randomUUID(), route: 'server', profile: { anonymous_id: 'pg-demo', email: 'pg@example.com' } };
  const res = await fetch(`http://127.0.0.1:${relay}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', origin: `http://localhost:${store}` }, body: JSON.stringify({ public_key: 'DEMO01', events: [event] }) });
  expect(res.status).toBe(202);
  const view = async () => (await (await fetch(`http://127.0.0.1:${store}/demo-api/store`)).json()) as { events: { unique_id: string; forward_status: string }[] };
  await expect.poll(async () => (await view()).events.find((e) => e.unique_id == event.unique_id)?.forward_status, { timeout: 15_000 }).toBe('sent');
  expect(existsSync(join(pgDataDir, 'relay.sqlite3'))).toBe(false); // only the sandbox's snapshot lives there

  demo.child.kill('SIGINT');
  expect(await demo.exited).toBe(0);
  running = undefined;
  expect(demo.output()).toContain('stopping PostgreSQL');
  expect(existsSync(folder!)).toBe(false);
  expect(() => process.kill(pid, 0)).toThrow();
});

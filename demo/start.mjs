// `npm start`: the demo storefront, the companion server and the local Klaviyo sandbox on localhost, with demo keys.
// Env (all optional): STORE_PORT (8080), RELAY_PORT (8787), SANDBOX_PORT (4010), DEMO_HOST (127.0.0.1),
// DEMO_DATA_DIR (./.klaviyo-relay/demo; SQLite store + sandbox snapshot), RELAY_ADMIN_TOKEN (else generated).
// `node demo/start.mjs --reset` starts from empty data. `npm start -- --postgres` keeps the companion server's data in
// a throwaway local PostgreSQL cluster instead of SQLite (started like the tests do, removed when the demo stops).
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = `Usage: npm start [-- [--postgres] [--reset]]   (or: node demo/start.mjs [--postgres] [--reset])

  --postgres   keep the companion server's data in a throwaway local PostgreSQL cluster instead of SQLite
  --reset      empty DEMO_DATA_DIR first

Env: STORE_PORT (8080), RELAY_PORT (8787), SANDBOX_PORT (4010), DEMO_HOST (127.0.0.1),
DEMO_DATA_DIR (./.klaviyo-relay/demo), RELAY_ADMIN_TOKEN (else generated and printed). See demo/README.md.`;

const DEFAULT_PORTS = { store: 8080, relay: 8787, sandbox: 4010 };
const ENV_NAMES = { store: 'STORE_PORT', relay: 'RELAY_PORT', sandbox: 'SANDBOX_PORT' };
const ROLES = { store: 'demo storefront', relay: 'companion server', sandbox: 'Klaviyo sandbox' };

function fail(message) {
  console.error(`\n  ✖ ${message}\n`);
  process.exit(1);
}

function portsFromEnv() {
  const ports = {};
  for (const [role, name] of Object.entries(ENV_NAMES)) {
    const raw = process.env[name];
    const port = raw === undefined || raw === '' ? DEFAULT_PORTS[role] : Number(raw);
    if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`${name} must be a port number 1-65535, got "${raw}".`);
    ports[role] = port;
  }
  const taken = Object.entries(ports).filter(([, p], i, all) => all.findIndex(([, q]) => q === p) !== i);
  if (taken.length) fail(`two servers cannot share port ${taken[0][1]}: set ${Object.values(ENV_NAMES).join(', ')} to different ports.`);
  return ports;
}

/** Resolves when the port can be bound; otherwise names the port, its role and the env var that moves it. */
function checkFree(port, host, role) {
  return new Promise((ok) => {
    const probe = createServer();
    probe.once('error', (err) =>
      fail(
        err.code === 'EADDRINUSE'
          ? `port ${port} (${ROLES[role]}) is already in use. Stop whatever runs there, or pick another: ${ENV_NAMES[role]}=${port + 1} npm start`
          : `cannot listen on ${host}:${port} (${ROLES[role]}): ${err.message}`,
      ),
    );
    probe.listen(port, host, () => probe.close(ok));
  });
}

// A mistyped flag (--postgress) must not quietly start the SQLite demo instead.
let flags;
try {
  ({ values: flags } = parseArgs({ options: { postgres: { type: 'boolean' }, reset: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
} catch (err) {
  fail(`${err.message.replace(/\. To specify .*$/s, '')}\n\n${USAGE}`);
}
// `npm start --postgres` (without `--`) hands the flag to npm, which passes it on only as npm_config_postgres.
for (const flag of ['postgres', 'reset']) {
  if (process.env[`npm_config_${flag}`] && !flags[flag]) fail(`npm took --${flag} for itself: put it after --, as in npm start -- --${flag}`);
}
if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

const host = process.env.DEMO_HOST || '127.0.0.1';
const ports = portsFromEnv();
const dataDir = resolve(process.env.DEMO_DATA_DIR || '.klaviyo-relay/demo');
if (flags.reset) rmSync(dataDir, { recursive: true, force: true });
for (const [role, port] of Object.entries(ports)) await checkFree(port, host, role);

let startDemoStack;
try {
  ({ startDemoStack } = await import('./stack.mjs'));
} catch (err) {
  if (err.code === 'ERR_MODULE_NOT_FOUND' && /dist/.test(err.message)) fail('dist/ is missing: run `npm start` (it builds first) or `npm run build`.');
  throw err;
}

let postgres;
if (flags.postgres) {
  const { startPostgresCluster } = await import('./postgres-cluster.mjs');
  try {
    postgres = await startPostgresCluster({ durable: true });
  } catch (err) {
    fail(`PostgreSQL could not start: ${err.message}`);
  }
  // However the demo ends, the cluster must not outlive it (stop() below also removes its folder).
  process.on('exit', () => {
    try {
      process.kill(postgres.pid, 'SIGINT');
    } catch {
      // already stopped
    }
  });
}

let stack;
try {
  stack = await startDemoStack({ ports, host, dataDir, adminToken: process.env.RELAY_ADMIN_TOKEN, databaseUrl: postgres?.url ?? '' });
} catch (err) {
  await postgres?.stop();
  fail(err.code === 'EADDRINUSE' ? `a port was taken while starting: ${err.message}` : `the demo could not start: ${err.stack || err.message}`);
}

const { urls } = stack;
console.log(`
  klaviyo-relay demo is running (nothing here reaches real Klaviyo)

  Storefront + QA panel   ${urls.storefront}/
  dataLayer (GTM) page    ${urls.storefront}/datalayer
  Operator console        ${urls.console}   (sign in with the admin token below)
  Companion server        ${urls.relay}   (GET /healthz, /v1/config?key=${stack.config.publicKey}, POST /v1/events, /v1/admin/…)
  Klaviyo sandbox QA      ${urls.sandbox}/   (admin API: /__admin/state)

  Public key     ${stack.config.publicKey}
  Admin token    ${stack.adminToken}
                 e.g. curl -H 'Authorization: Bearer ${stack.adminToken}' ${urls.relay}/v1/admin/audiences
  Private key    a generated pk_demo_… key shared by the companion server and the sandbox only
  Data           ${postgres ? `PostgreSQL ${postgres.url}   (a throwaway cluster in ${postgres.dir}, removed on exit; sandbox in ${dataDir})` : `${dataDir}   (node demo/start.mjs --reset starts empty)`}
  Config         demo/relay.config.json   (allowed origins: ${stack.config.allowedOrigins.join(', ')})

  Ctrl-C stops everything.
`);

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`\n  ${signal}: stopping the storefront, the companion server and the sandbox…`);
  const force = setTimeout(() => fail('did not stop within 10 s; exiting anyway.'), 10_000);
  force.unref();
  await stack.close();
  if (postgres) {
    console.log('  stopping PostgreSQL…');
    await postgres.stop();
  }
  console.log('  stopped.');
  process.exit(0);
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

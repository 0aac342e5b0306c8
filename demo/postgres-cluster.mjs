// A throwaway PostgreSQL cluster for the tests, the bench and `npm start -- --postgres`: initdb in a temp folder,
// the server on a free loopback port with its socket in that folder, stopped by PID. Uses Debian's `postgresql`
// package binaries (or any initdb/postgres on PATH or in PG_BIN). As root, initdb and postgres refuse to run, so
// they run as the `postgres` user on a folder that user owns.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const INSTALL_HINT =
  'PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. Install them with `apt-get install -y postgresql` ' +
  '(Debian/Ubuntu), set PG_BIN to the folder holding them, or set TEST_DATABASE_URL=postgres://… to use an existing server.';

/**
 * The folder holding initdb and pg_ctl: PG_BIN, then PATH, then the newest /usr/lib/postgresql/<v>/bin.
 * Throws INSTALL_HINT when there is none. The arguments exist for tests.
 */
export function findPostgresBin({ env = process.env, debianRoot = '/usr/lib/postgresql' } = {}) {
  const candidates = [];
  if (env.PG_BIN) candidates.push(env.PG_BIN);
  candidates.push(...(env.PATH ?? '').split(':').filter(Boolean));
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debianRoot, v, 'bin')));
  }
  const bin = candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
  if (!bin) throw new Error(INSTALL_HINT);
  return bin;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function postgresIds() {
  const run = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: run('-u'), gid: run('-g') };
  } catch {
    throw new Error('Running as root, but there is no `postgres` user to run the server as. ' + INSTALL_HINT);
  }
}

/** Run a PostgreSQL binary, as the `postgres` user when we are root. */
function runPg(bin, tool, args) {
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const result = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${tool} failed (exit ${result.status}):\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/**
 * Start a fresh cluster. `durable: false` (the tests) turns fsync off, which only matters if the machine itself
 * crashes; the bench and the demo keep PostgreSQL's durable defaults.
 * Returns { url, port, dir, pid, stop() }; `url` connects as the superuser `postgres` to database `postgres`.
 */
export async function startPostgresCluster({ durable = true, log = () => {} } = {}) {
  const bin = findPostgresBin();
  // Not inside a root-only folder: the postgres user must reach it. /tmp is world-traversable.
  const dir = mkdtempSync(join(isRoot() ? '/tmp' : tmpdir(), 'klaviyo-relay-pg-'));
  if (isRoot()) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  log(`initdb ${data}`);
  runPg(bin, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync']);
  const settings = [
    `-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c max_connections=200',
    ...(durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
  ];
  runPg(bin, 'pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'server.log'), '-o', settings.join(' ')]);
  const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  log(`PostgreSQL ${url} (pid ${pid}, folder ${dir})`);

  let stopped;
  const stop = () => (stopped ??= stopPostgresCluster({ pid, dir }));
  return { url, port, dir, pid, stop };
}

/** Stop a cluster by its postmaster PID (fast shutdown, then SIGKILL after 15 s) and remove its folder. */
export async function stopPostgresCluster({ pid, dir }) {
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, disconnect, exit
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
  }
  for (let i = 0; i < 300 && alive(pid); i++) await sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// `klaviyo-relay doctor [--config FILE]`: the operator console's connection checks from the command line. One
// line per check, exit 0 when all pass and 1 otherwise; each failure names what to fix. No line ever carries the
// private key or the admin token.
import { accessSync, constants, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCommandArgs } from './cli-args.js';
import { definitionRegistry } from './audiences/definitions.js';
import type { AudienceDefinition } from './audiences/definition.js';
import { ConfigError, loadConfigFile, readEnv } from './config.js';
import { checkAllowedOrigins, checkAudienceLists, checkPrivateKey, checkPublicKey, type CheckResult } from './connection-checks.js';
import { createKlaviyoClient } from './klaviyo-client.js';
import { openDatabase, type Db } from './store/db.js';
import { isPostgresUrl, openStore, redactDatabaseUrl, type OpenedStore } from './store/open.js';

const USAGE = `Usage: klaviyo-relay doctor [--config FILE]

Checks the private key and its account, that publicKey is that account's, that every audience's list exists and
that the data store is writable. One line per check; exits 0 when all pass, 1 otherwise.

Options:
  --config FILE     the relay config (default ./relay.config.json)

Env: KLAVIYO_PRIVATE_KEY, KLAVIYO_BASE_URL, RELAY_DATA_DIR, DATABASE_URL (PostgreSQL instead of SQLite).`;

export interface DoctorIo {
  env?: NodeJS.ProcessEnv;
  out?: (line: string) => void;
}

const LABEL: Record<CheckResult['status'], string> = { ok: 'ok  ', fail: 'FAIL', warn: 'warn', skipped: 'skip' };

/** The SQLite folder can be created and written: a write in a transaction that is rolled back. */
export function checkSqliteStore(dataDir: string): { result: CheckResult; db?: Db } {
  const check = 'store';
  const folder = resolve(dataDir);
  let db: Db | undefined;
  try {
    if (existsSync(folder)) accessSync(folder, constants.W_OK);
    db = openDatabase(folder);
    const probe = db.transaction(() => {
      db!.prepare("INSERT INTO schema_migrations (module, version) VALUES ('doctor-write-probe', 0)").run();
      throw new RollBack();
    });
    try {
      probe();
    } catch (err) {
      if (!(err instanceof RollBack)) throw err;
    }
    return { result: { check, status: 'ok', detail: `SQLite at ${join(folder, 'relay.sqlite3')} is writable` }, db };
  } catch (err) {
    db?.close();
    const code = (err as NodeJS.ErrnoException).code;
    return {
      result: { check, status: 'fail', detail: `SQLite folder ${folder} is not writable (${code ?? (err as Error).message}): set RELAY_DATA_DIR to a folder this user can write, or fix its permissions` },
    };
  }
}

/** PostgreSQL (DATABASE_URL) opens, migrates and takes a write in a transaction that is rolled back. */
export async function checkPostgresStore(databaseUrl: string): Promise<CheckResult> {
  const check = 'store';
  let opened: OpenedStore | undefined;
  try {
    opened = await openStore({ databaseUrl, dataDir: ':memory:' });
    if (opened.backend.kind !== 'postgres') throw new Error('DATABASE_URL did not select PostgreSQL');
    const client = await opened.backend.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("INSERT INTO settings (key, value, updated_at) VALUES ('doctor-write-probe', '{}', 0) ON CONFLICT (key) DO NOTHING");
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
    }
    return { check, status: 'ok', detail: `PostgreSQL at ${opened.location} is writable` };
  } catch (err) {
    const where = isPostgresUrl(databaseUrl) ? redactDatabaseUrl(databaseUrl) : 'DATABASE_URL';
    return { check, status: 'fail', detail: `PostgreSQL at ${where} cannot be written (${(err as Error).message}): check DATABASE_URL, that the server runs, and the role's rights` };
  } finally {
    await opened?.close().catch(() => {});
  }
}

class RollBack extends Error {}

function databasePassword(url: string | undefined): string | undefined {
  try {
    return url ? decodeURIComponent(new URL(url).password) || undefined : undefined;
  } catch {
    return undefined;
  }
}

export async function runDoctor(args: string[], io: DoctorIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const parsed = parseCommandArgs(args, { config: { type: 'string', default: './relay.config.json' } }, USAGE);
  if (!parsed) return 1;
  if (parsed.values.help) {
    out(USAGE);
    return 0;
  }
  const configPath = parsed.values.config as string;

  const env = readEnv(io.env ?? process.env);
  const secrets = [env.privateKey, env.adminToken, databasePassword(env.databaseUrl)].filter((s): s is string => Boolean(s));
  // Klaviyo's answers never echo the key; blanking it here keeps that true whatever an error message says.
  const print = (r: CheckResult) => out(secrets.reduce((line, s) => line.split(s).join('[redacted]'), `${LABEL[r.status]}  ${r.check}: ${r.detail}`));

  let loaded;
  try {
    loaded = loadConfigFile(configPath);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    print({ check: 'config', status: 'fail', detail: err.message });
    return 1;
  }
  print({ check: 'config', status: 'ok', detail: loaded.path });

  const results: CheckResult[] = [];
  const report = (r: CheckResult) => {
    results.push(r);
    print(r);
  };

  const klaviyo = env.privateKey
    ? createKlaviyoClient({ privateKey: env.privateKey, baseUrl: env.klaviyoBaseUrl, retry: { maxAttempts: 2 } })
    : undefined;
  const { result: keyResult, account } = await checkPrivateKey(klaviyo);
  report(keyResult);
  report(checkPublicKey(loaded.config.publicKey, account));
  report(checkAllowedOrigins(loaded.config.allowedOrigins));

  // Audiences saved through the console live in the SQLite store, beside the config file's.
  const store = env.databaseUrl ? { result: await checkPostgresStore(env.databaseUrl), db: undefined } : checkSqliteStore(env.dataDir);
  let audiences: AudienceDefinition[] = loaded.config.audiences;
  if (store.db) {
    try {
      audiences = definitionRegistry(store.db, loaded.config.audiences).all().map((a) => a.definition);
    } finally {
      store.db.close();
    }
  }
  for (const r of await checkAudienceLists(klaviyo, audiences, Boolean(account))) report(r);
  report(store.result);

  const failed = results.filter((r) => r.status === 'fail');
  out(failed.length ? `${failed.length} check${failed.length === 1 ? '' : 's'} failed.` : 'All checks passed.');
  return failed.length ? 1 : 0;
}

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
import { isPostgresUrl, openStore, redactDatabaseUrl, type OpenedStore, type StoreBackend } from './store/open.js';

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

/**
 * The store opens (SQLite in RELAY_DATA_DIR, or PostgreSQL with DATABASE_URL, migrations included, as `serve` would)
 * and takes a write inside a transaction that is rolled back. A running `serve` may own the folder meanwhile.
 */
export async function checkStore(env: { dataDir: string; databaseUrl?: string }): Promise<{ result: CheckResult; opened?: OpenedStore }> {
  const check = 'store';
  let opened: OpenedStore | undefined;
  try {
    if (!env.databaseUrl && existsSync(env.dataDir)) accessSync(env.dataDir, constants.W_OK);
    opened = await openStore({ databaseUrl: env.databaseUrl, dataDir: env.dataDir, claimDataDir: false });
    await probeWrite(opened.backend);
    const where = opened.backend.kind === 'postgres' ? `PostgreSQL at ${opened.location}` : `SQLite at ${join(resolve(env.dataDir), 'relay.sqlite3')}`;
    return { result: { check, status: 'ok', detail: `${where} is writable` }, opened };
  } catch (err) {
    await opened?.close().catch(() => {});
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const detail = env.databaseUrl
      ? `PostgreSQL at ${isPostgresUrl(env.databaseUrl) ? redactDatabaseUrl(env.databaseUrl) : 'DATABASE_URL'} cannot be written (${reason}): check DATABASE_URL, that the server runs, and the role's rights`
      : `SQLite folder ${resolve(env.dataDir)} is not writable (${reason}): set RELAY_DATA_DIR to a folder this user can write, or fix its permissions`;
    return { result: { check, status: 'fail', detail } };
  }
}

async function probeWrite(backend: StoreBackend): Promise<void> {
  if (backend.kind === 'sqlite') {
    const probe = backend.db.transaction(() => {
      backend.db.prepare("INSERT INTO schema_migrations (module, version) VALUES ('doctor-write-probe', 0)").run();
      throw new RollBack();
    });
    try {
      probe();
    } catch (err) {
      if (!(err instanceof RollBack)) throw err;
    }
    return;
  }
  const client = await backend.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("INSERT INTO settings (key, value, updated_at) VALUES ('doctor-write-probe', '{}', 0) ON CONFLICT (key) DO NOTHING");
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
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

  // Audiences saved through the console live in the store, beside the config file's.
  const store = await checkStore(env);
  let audiences: AudienceDefinition[] = loaded.config.audiences;
  if (store.opened) {
    try {
      audiences = (await definitionRegistry(store.opened.audiences, loaded.config.audiences).all()).map((a) => a.definition);
    } finally {
      await store.opened.close();
    }
  }
  for (const r of await checkAudienceLists(klaviyo, audiences, Boolean(account))) report(r);
  report(store.result);

  const failed = results.filter((r) => r.status === 'fail');
  out(failed.length ? `${failed.length} check${failed.length === 1 ? '' : 's'} failed.` : 'All checks passed.');
  return failed.length ? 1 : 0;
}

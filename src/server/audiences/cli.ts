// `klaviyo-relay sync <name> [--dry-run]` (exit 0 success, 2 partial, 1 failed; a dry run sends only GETs and
// writes nothing) and `klaviyo-relay logs <name> [--json]` (newest run first). Both take --config FILE (default ./relay.config.json) and read env like `serve`.
import { parseCommandArgs } from '../cli-args.js';
import { ConfigError, loadConfigFile, readEnv } from '../config.js';
import { createKlaviyoClient } from '../klaviyo-client.js';
import { StartupError } from '../startup.js';
import { openStore } from '../store/open.js';
import { definitionRegistry } from './definitions.js';
import { COUNT_NAMES, runLogStore, type RunLog } from './runs.js';
import { disabledMessage, dryRun, startRun, SyncAlreadyRunning } from './sync.js';
import type { RunResult } from './runner.js';

const SYNC_USAGE = `Usage: klaviyo-relay sync <name> [--dry-run] [--force] [--config FILE]

Runs one audience sync now and prints its log row.
  --dry-run       send only GET requests; print what would be sent; write no state and no log row
  --force         sync even when the audience is disabled (its Status is off); without it a disabled audience is refused
  --config FILE   the relay config (default ./relay.config.json)

Exit codes: 0 success, 2 partial (some members were refused by Klaviyo; see the errors), 1 failed.
Invalid source rows (no usable identifier, malformed or too long) are counted under "invalid" and listed
in the errors; they alone do not change the exit code.
Env: KLAVIYO_PRIVATE_KEY (required), KLAVIYO_BASE_URL, RELAY_AUDIENCE_LEASE_MS, and where the data lives:
DATABASE_URL (the PostgreSQL database the serve instances share), else RELAY_DATA_DIR (default ./.klaviyo-relay).`;
const LOGS_USAGE = `Usage: klaviyo-relay logs <name> [--json] [--limit N] [--config FILE]

Prints an audience's sync runs, newest first: status, duration and every count.
  --json          one JSON object per line
  --limit N       at most N runs (default 100)
  --config FILE   the relay config (default ./relay.config.json)

Env: DATABASE_URL (the PostgreSQL database the serve instances share), else RELAY_DATA_DIR (default ./.klaviyo-relay).`;

/** Exit codes: 0 success, 2 partial, 1 failed. */
export const exitCodeFor = (status: string) => (status === 'success' ? 0 : status === 'partial' ? 2 : 1);

function parse(args: string[], usage: string, flags: Record<string, { type: 'boolean' | 'string' }>) {
  const parsed = parseCommandArgs(args, { config: { type: 'string' }, ...flags }, usage, true);
  if (!parsed) return undefined;
  if (parsed.values.help) return { help: true as const };
  if (parsed.positionals.length !== 1) {
    console.error(`give exactly one audience name\n\n${usage}`);
    return undefined;
  }
  return { name: parsed.positionals[0]!, values: parsed.values };
}

/** Config, database and the named definition; prints the problem and returns undefined when one is missing. */
async function open(name: string, configPath: string | undefined) {
  const env = readEnv();
  let loaded;
  try {
    loaded = loadConfigFile(configPath ?? './relay.config.json');
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return undefined;
    }
    throw err;
  }
  let opened;
  try {
    // `serve` may own the data folder meanwhile: the CLI shares the database, never the folder's claim.
    opened = await openStore({ databaseUrl: env.databaseUrl, dataDir: env.dataDir, claimDataDir: false });
  } catch (err) {
    if (err instanceof StartupError) {
      console.error(err.message);
      return undefined;
    }
    throw err;
  }
  const store = opened.audiences;
  const registry = definitionRegistry(store, loaded.config.audiences);
  const entry = await registry.get(name);
  if (!entry) {
    const known = (await registry.all()).map((a) => a.definition.name);
    console.error(`No audience named "${name}" in ${loaded.path} or saved through the admin API.${known.length ? ` Known: ${known.join(', ')}` : ''}`);
    await opened.close();
    return undefined;
  }
  return { env, config: loaded.config, configDir: loaded.dir, close: () => opened.close(), store, definition: entry.definition };
}

const formatCounts = (counts: Record<string, number>) => COUNT_NAMES.map((n) => `${n}=${counts[n] ?? 0}`).join(' ');

export async function runSync(args: string[]): Promise<number> {
  const parsed = parse(args, SYNC_USAGE, { 'dry-run': { type: 'boolean' }, force: { type: 'boolean' } });
  if (!parsed) return 1;
  if ('help' in parsed) {
    console.log(SYNC_USAGE);
    return 0;
  }
  const opened = await open(parsed.name, parsed.values.config as string | undefined);
  if (!opened) return 1;
  const { env, config, configDir, close, store, definition } = opened;
  try {
    if (!definition.enabled && !parsed.values['dry-run'] && !parsed.values.force) {
      console.error(`${disabledMessage(definition.name)}, or run it anyway with --force.`);
      return 1;
    }
    if (!env.privateKey) {
      console.error('KLAVIYO_PRIVATE_KEY is not set: set it in the environment to sync audiences.');
      return 1;
    }
    const klaviyo = createKlaviyoClient({
      privateKey: env.privateKey,
      baseUrl: env.klaviyoBaseUrl,
      onRetry: ({ method, path, attempt, waitMs, error }) =>
        console.error(`retrying ${method} ${path} in ${waitMs} ms (attempt ${attempt}): ${error.message}`),
    });
    const syncEnv = { store, klaviyo, configDir, fileRoots: config.audienceFileRoots, defaultPhoneRegion: config.defaultPhoneRegion, tuning: { leaseTtlMs: env.audienceLeaseMs } };

    if (parsed.values['dry-run']) {
      const result = await dryRun(syncEnv, definition);
      printDryRun(definition.name, result);
      return exitCodeFor(result.status);
    }

    const abort = new AbortController();
    const stop = () => abort.abort(new Error('interrupted (SIGINT/SIGTERM); the next run resumes'));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const { runId, done } = await startRun(syncEnv, definition, { trigger: 'cli', signal: abort.signal });
      console.log(`sync "${definition.name}": run ${runId} started`);
      const log = await done;
      console.log(formatLogRow(log));
      for (const e of log.errors.slice(0, 20)) console.log(`  ${e.stage}${e.member ? ` ${e.member}` : ''}: ${e.detail}`);
      const more = log.errors.length - 20 + log.errors_omitted;
      if (more > 0) console.log(`  … ${more} more errors (klaviyo-relay logs ${definition.name} --json)`);
      return exitCodeFor(log.status);
    } catch (err) {
      if (err instanceof SyncAlreadyRunning) {
        console.error(err.message);
        return 1;
      }
      throw err;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  } finally {
    await close();
  }
}

function printDryRun(name: string, result: RunResult) {
  const plan = result.plan;
  console.log(`Dry run of "${name}": nothing was sent or saved.`);
  if (result.status === 'failed') {
    console.log(`failed: ${result.error}`);
    return;
  }
  if (plan) {
    const list = plan.list;
    console.log(`list: ${list.wouldCreate ? `would create "${list.name}"` : `${list.id}${list.name ? ` "${list.name}"` : ''}`}${list.optInProcess ? ` (${list.optInProcess})` : ''}`);
    console.log(`counts: ${formatCounts(result.counts)}`);
    const r = plan.requests;
    console.log(`would send: ${r.importJobs} import job(s), ${r.subscribeJobs} subscribe job(s), ${r.unsubscribeJobs} unsubscribe job(s), ${r.removeCalls} removal call(s) (plus profile id lookups)`);
    if (plan.sample.importProfiles.length) {
      console.log(`sample of the profiles to import:`);
      for (const p of plan.sample.importProfiles) console.log(`  ${JSON.stringify(p)}`);
    }
  }
  for (const e of result.errors.slice(0, 20)) console.log(`  ${e.stage}${e.member ? ` ${e.member}` : ''}: ${e.detail}`);
}

export function formatLogRow(log: RunLog): string {
  const duration = log.duration_ms === null ? 'running' : `${(log.duration_ms / 1000).toFixed(1)}s`;
  const jobs = log.job_ids.length ? ` jobs=${log.job_ids.join(',')}` : '';
  const error = log.error ? ` error="${log.error}"` : '';
  return `#${log.id} ${log.started_at} ${log.status} ${duration} ${formatCounts(log.counts)}${jobs}${error}`;
}

export async function runLogs(args: string[]): Promise<number> {
  const parsed = parse(args, LOGS_USAGE, { json: { type: 'boolean' }, limit: { type: 'string' } });
  if (!parsed) return 1;
  if ('help' in parsed) {
    console.log(LOGS_USAGE);
    return 0;
  }
  const limitFlag = parsed.values.limit as string | undefined;
  const limit = limitFlag === undefined ? 100 : Number(limitFlag);
  if (!Number.isInteger(limit) || limit < 1) {
    console.error(`--limit must be a whole number of runs, at least 1; got "${limitFlag}"\n\n${LOGS_USAGE}`);
    return 1;
  }
  const opened = await open(parsed.name, parsed.values.config as string | undefined);
  if (!opened) return 1;
  const { close, store, definition } = opened;
  try {
    const rows = await runLogStore(store).list(definition.name, limit);
    if (!rows.length && !parsed.values.json) console.log(`No runs of "${definition.name}" yet.`);
    for (const row of rows) console.log(parsed.values.json ? JSON.stringify(row) : formatLogRow(row));
    return 0;
  } finally {
    await close();
  }
}

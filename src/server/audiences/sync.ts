// Starting a run: one at a time per audience (an in-process lock plus a database lease for other processes) and
// a log row written as it goes. The Klaviyo client limits every attempt itself. Dry runs get a client that can
// only GET, and write no state and no log row.
import type { Db } from '../store/db.js';
import type { KlaviyoClient, RequestOptions } from '../klaviyo-client.js';
import type { AudienceDefinition } from './definition.js';
import { executeRun, type RunOptions, type RunResult } from './runner.js';
import { createLease, runLogStore, type RunLog } from './runs.js';
import { migrateAudiences } from './store.js';

export interface SyncEnvironment {
  db: Db;
  klaviyo?: KlaviyoClient;
  configDir: string;
  /** Folders besides configDir that file sources may read (the config's audienceFileRoots). */
  fileRoots?: string[];
  defaultPhoneRegion?: string;
  /** Runner tuning (tests, bench). */
  tuning?: Pick<RunOptions, 'maxInflightJobs' | 'maxProfilesPerJob' | 'pollIntervalMs' | 'pollMaxMs' | 'onEvent' | 'sampleSize'>;
}

/** Why a sync of a disabled audience is refused (admin route 409, CLI without --force). */
export const disabledMessage = (audience: string) =>
  `audience "${audience}" is disabled: turn its Status on (or set "enabled": true) to sync it`;

export class SyncAlreadyRunning extends Error {
  constructor(readonly audience: string, readonly runId?: number, elsewhereUntil?: number) {
    super(
      `a sync of "${audience}" is already running${runId ? ` (run ${runId})` : ''}` +
        (elsewhereUntil ? ` in another process; if that process died, its lease lapses at ${new Date(elsewhereUntil).toISOString()}` : ''),
    );
    this.name = 'SyncAlreadyRunning';
  }
}

export class SyncNotConfigured extends Error {
  constructor() {
    super('KLAVIYO_PRIVATE_KEY is not set: audience syncs cannot reach Klaviyo');
    this.name = 'SyncNotConfigured';
  }
}

/** Dry runs: anything but a GET is a bug, refused before it reaches the network. */
export function readOnly(inner: KlaviyoClient): KlaviyoClient {
  const request = async <T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<T> => {
    if (method !== 'GET') throw new Error(`dry run refused to send ${method} ${path}`);
    return inner.request<T>(method, path, opts);
  };
  return {
    ...inner,
    request,
    get: (path, query, opts) => request('GET', path, { ...opts, query }),
    post: (path, body, opts) => request('POST', path, { ...opts, body }),
    patch: (path, body, opts) => request('PATCH', path, { ...opts, body }),
    delete: (path, body, opts) => request('DELETE', path, { ...opts, body }),
  };
}

const running = new WeakMap<Db, Map<string, { runId: number; done: Promise<RunLog> }>>();

/** The run of `audience` in progress in this process, if any. */
export function currentRun(db: Db, audience: string) {
  return running.get(db)?.get(audience);
}

/**
 * Start a run now. Throws SyncAlreadyRunning when one is in progress here or in another process. Resolves
 * `done` with the final log row; it never rejects.
 */
export function startRun(env: SyncEnvironment, definition: AudienceDefinition, opts: { trigger: string; signal?: AbortSignal }): { runId: number; done: Promise<RunLog> } {
  migrateAudiences(env.db);
  const active = running.get(env.db) ?? new Map();
  running.set(env.db, active);
  const current = active.get(definition.name);
  if (current) throw new SyncAlreadyRunning(definition.name, current.runId);

  const logs = runLogStore(env.db);
  const lease = createLease(env.db, definition.name);
  if (!lease.acquire()) {
    const other = logs.list(definition.name, 1)[0];
    throw new SyncAlreadyRunning(definition.name, other?.status === 'running' ? other.id : undefined, lease.heldUntil());
  }
  // The lease was free, so any row still "running" belongs to a process that died.
  logs.closeAbandoned(definition.name);
  const runId = logs.start(definition.name, opts.trigger);
  const renew = setInterval(() => lease.renew(), 15_000);
  renew.unref();

  const done = (async () => {
    let result: RunResult;
    try {
      if (!env.klaviyo) throw new SyncNotConfigured();
      result = await executeRun({
        ...env.tuning,
        db: env.db,
        klaviyo: env.klaviyo,
        definition,
        configDir: env.configDir,
        fileRoots: env.fileRoots,
        defaultPhoneRegion: env.defaultPhoneRegion,
        runId,
        signal: opts.signal,
        onProgress: (p) => logs.update(runId, { ...p, counts: p.counts }),
      });
    } catch (err) {
      const detail = (err as Error).message;
      result = { status: 'failed', error: detail, counts: logs.get(runId)!.counts, jobIds: [], errors: [{ stage: 'run', detail }], errorsOmitted: 0 };
    }
    try {
      logs.update(runId, { ...result, status: result.status, ended: true });
    } finally {
      clearInterval(renew);
      lease.release();
      active.delete(definition.name);
    }
    return logs.get(runId)!;
  })();
  active.set(definition.name, { runId, done });
  return { runId, done };
}

/** A dry run: only GET requests, no state, no log row; returns what would be sent. */
export async function dryRun(env: SyncEnvironment, definition: AudienceDefinition): Promise<RunResult> {
  migrateAudiences(env.db);
  if (!env.klaviyo) throw new SyncNotConfigured();
  return executeRun({
    ...env.tuning,
    db: env.db,
    klaviyo: readOnly(env.klaviyo),
    definition,
    configDir: env.configDir,
    fileRoots: env.fileRoots,
    defaultPhoneRegion: env.defaultPhoneRegion,
    dryRun: true,
  });
}

// Starting a run: one at a time per audience (an in-process lock plus a database lease for other processes) and
// a log row written as it goes. The Klaviyo client limits every attempt itself. Dry runs get a client that can
// only GET, and write no state and no log row.
import type { AudienceStore } from '../store/audience-types.js';
import type { KlaviyoClient, RequestOptions } from '../klaviyo-client.js';
import type { AudienceDefinition } from './definition.js';
import { executeRun, type RunOptions, type RunProgress, type RunResult } from './runner.js';
import { createLease, emptyCounts, runLogStore, type RunLog } from './runs.js';

export interface SyncEnvironment {
  store: AudienceStore;
  klaviyo?: KlaviyoClient;
  configDir: string;
  /** Folders besides configDir that file sources may read (the config's audienceFileRoots). */
  fileRoots?: string[];
  defaultPhoneRegion?: string;
  /** Runner tuning (tests, bench). */
  tuning?: Pick<RunOptions, 'maxInflightJobs' | 'maxProfilesPerJob' | 'pollIntervalMs' | 'pollMaxMs' | 'onEvent' | 'sampleSize'> & {
    /** How long a run's lease outlives a process that stopped renewing it (default 60 s). */
    leaseTtlMs?: number;
  };
  /** The clock of run log times (tests inject one). */
  now?: () => number;
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

/** A scheduled run found, under the lease, that another instance already ran this slot. */
export class SyncNotDue extends Error {
  constructor(readonly audience: string) {
    super(`"${audience}" is not due: another process ran it since`);
    this.name = 'SyncNotDue';
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

const running = new WeakMap<AudienceStore, Map<string, { runId?: number; done?: Promise<RunLog> }>>();

/** The run of `audience` in progress in this process, if any. */
export function currentRun(store: AudienceStore, audience: string): { runId: number; done: Promise<RunLog> } | undefined {
  const run = running.get(store)?.get(audience);
  return run?.done && { runId: run.runId!, done: run.done };
}

/**
 * Start a run now. Rejects with SyncAlreadyRunning when one is in progress here or in any other process or
 * instance on the same store. Resolves once the run started; `done` resolves with the final log row and never
 * rejects.
 */
export async function startRun(
  env: SyncEnvironment,
  definition: AudienceDefinition,
  opts: {
    trigger: string;
    signal?: AbortSignal;
    /**
     * Checked under the lease with the audience's latest run: false rejects with SyncNotDue. This is how a
     * scheduled run happens once across instances: whichever instance gets the lease second sees the first one's
     * run and stands down.
     */
    due?: (last: RunLog | undefined) => boolean;
  },
): Promise<{ runId: number; done: Promise<RunLog> }> {
  const active = running.get(env.store) ?? new Map();
  running.set(env.store, active);
  const current = active.get(definition.name);
  if (current) throw new SyncAlreadyRunning(definition.name, current.runId);
  // Claimed in this process before the first await, so two calls at once here cannot both pass.
  const slot: { runId?: number; done?: Promise<RunLog> } = {};
  active.set(definition.name, slot);

  const logs = runLogStore(env.store, env.now);
  const lease = createLease(env.store, definition.name, env.tuning?.leaseTtlMs);
  let runId: number;
  try {
    if (!(await lease.acquire())) {
      const other = (await logs.list(definition.name, 1))[0];
      throw new SyncAlreadyRunning(definition.name, other?.status === 'running' ? other.id : undefined, await lease.heldUntil());
    }
    if (opts.due && !opts.due((await logs.list(definition.name, 1))[0])) {
      await lease.release();
      throw new SyncNotDue(definition.name);
    }
    // The lease was free, so any row still "running" belongs to a process that died.
    await logs.closeAbandoned(definition.name);
    runId = await logs.start(definition.name, opts.trigger);
  } catch (err) {
    active.delete(definition.name);
    throw err;
  }
  slot.runId = runId;
  // A run that could not renew its lease in time (the process stalled, the database was unreachable) and finds it
  // taken stops at once: another process may be running this audience now.
  const lost = new AbortController();
  const renew = setInterval(() => {
    lease.renew().then(
      (held) => held || lost.abort(new Error('the run lease lapsed and another process took it; this run stopped so two runs never overlap')),
      () => {}, // unreachable for now: the next renewal tries again while the lease lasts
    );
  }, Math.max(10, lease.ttlMs / 4));
  renew.unref();
  const signal = opts.signal ? AbortSignal.any([opts.signal, lost.signal]) : lost.signal;

  // Progress rows are written one after another, never two at once, and all before the final row.
  let progress = Promise.resolve();
  const writeProgress = (p: RunProgress) => {
    progress = progress.then(() => logs.update(runId, { ...p, counts: p.counts })).catch(() => {});
    return progress;
  };

  const done = (async () => {
    let result: RunResult;
    try {
      if (!env.klaviyo) throw new SyncNotConfigured();
      result = await executeRun({
        ...env.tuning,
        store: env.store,
        klaviyo: env.klaviyo,
        definition,
        configDir: env.configDir,
        fileRoots: env.fileRoots,
        defaultPhoneRegion: env.defaultPhoneRegion,
        runId,
        signal,
        onProgress: writeProgress,
      });
    } catch (err) {
      const detail = (err as Error).message;
      const counts = (await logs.get(runId).catch(() => undefined))?.counts ?? emptyCounts();
      result = { status: 'failed', error: detail, counts, jobIds: [], errors: [{ stage: 'run', detail }], errorsOmitted: 0 };
    }
    try {
      await progress;
      await logs.update(runId, { ...result, status: result.status, ended: true });
    } finally {
      clearInterval(renew);
      await lease.release().catch(() => {});
      active.delete(definition.name);
    }
    return (await logs.get(runId))!;
  })();
  slot.done = done;
  return { runId, done };
}

/** A dry run: only GET requests, no state, no log row; returns what would be sent. */
export async function dryRun(env: SyncEnvironment, definition: AudienceDefinition): Promise<RunResult> {
  if (!env.klaviyo) throw new SyncNotConfigured();
  return executeRun({
    ...env.tuning,
    store: env.store,
    klaviyo: readOnly(env.klaviyo),
    definition,
    configDir: env.configDir,
    fileRoots: env.fileRoots,
    defaultPhoneRegion: env.defaultPhoneRegion,
    dryRun: true,
  });
}

// Entry point of the audience-sync module, called by createServer inside its /v1/admin scope (which already
// checks the admin token): the admin routes for sync definitions, Instant Sync and logs, and the scheduler that
// runs enabled syncs on their refreshInterval.
import type { FastifyInstance } from 'fastify';
import type { AudienceStore } from '../store/audience-types.js';
import type { KlaviyoClient } from '../klaviyo-client.js';
import type { AudienceDefinition } from './definition.js';
import { audienceDefinitionSchema } from './definition.js';
import { definitionRegistry, type DefinitionRegistry } from './definitions.js';
import { currentRun, disabledMessage, dryRun, startRun, SyncAlreadyRunning, SyncNotDue, type SyncEnvironment } from './sync.js';
import { runLogStore } from './runs.js';
import { parseDuration } from '../../shared/duration.js';
import { fieldIssues, suggestKnownKeys } from '../../shared/zod-issues.js';
import { resolveSourcePath, SourceError, SourceFileNotFound, sourceFields, sourcePathProblem } from './file-source.js';

/** Time and timers of the scheduler (tests inject a clock they advance by hand). */
export interface SchedulerClock {
  now(): number;
  /** Call `fn` once after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

const realClock: SchedulerClock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

export interface AudienceContext {
  store: AudienceStore;
  /** Undefined when KLAVIYO_PRIVATE_KEY is not set: syncs then fail with a clear error. */
  klaviyo?: KlaviyoClient;
  /** Definitions from the config file; the admin API may add or replace some. */
  definitions: AudienceDefinition[];
  /** Directory of the config file: file sources resolve against it. */
  configDir: string;
  /** Folders besides configDir that file sources may read (the config's audienceFileRoots). */
  fileRoots?: string[];
  defaultPhoneRegion?: string;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** Set false to not start the refreshInterval scheduler (tests). Default true. */
  scheduler?: boolean;
  /** Runner tuning for tests and benchmarks (poll intervals, jobs in flight). */
  tuning?: SyncEnvironment['tuning'];
  /** The scheduler's clock, also used for run log times. Default: the real one. */
  clock?: SchedulerClock;
}

export { parseDefinition, DefinitionError } from './definitions.js';
export { startRun, dryRun, SyncAlreadyRunning, disabledMessage } from './sync.js';
export type { RunLog } from './runs.js';


/** Register the admin audience routes on `app` (already behind the admin-token check) and start the scheduler. */
export function registerAudiences(app: FastifyInstance, ctx: AudienceContext): { close(): Promise<void>; pendingTimers(): number; definitions(): Promise<AudienceDefinition[]> } {
  const clock = ctx.clock ?? realClock;
  const registry = definitionRegistry(ctx.store, ctx.definitions);
  const logs = runLogStore(ctx.store, clock.now);
  const env: SyncEnvironment = {
    store: ctx.store,
    now: clock.now,
    klaviyo: ctx.klaviyo,
    configDir: ctx.configDir,
    fileRoots: ctx.fileRoots,
    defaultPhoneRegion: ctx.defaultPhoneRegion,
    tuning: ctx.tuning,
  };
  const scheduler = createScheduler(env, registry, ctx, clock);
  if (ctx.scheduler !== false) scheduler.start();

  const summary = async (name: string) => {
    const entry = await registry.get(name);
    if (!entry) return undefined;
    const last = (await logs.list(name, 1))[0];
    // Running here, or in another process or instance whose lease still holds (a dead one's row says running
    // until the next run closes it; its lapsed lease tells the truth).
    const running = !!currentRun(ctx.store, name) || (last?.status === 'running' && ((await ctx.store.leases.heldUntil(name)) ?? 0) > Date.now());
    return { name, origin: entry.origin, definition: entry.definition, running, last_run: last ?? null };
  };
  const notFound = (name: string) => ({ error: `no audience named "${name}"` });

  // Routes live in their own encapsulated scope so an empty JSON body (e.g. `POST …/sync` sent with a JSON
  // content type by a form or fetch helper) is accepted as "no body" instead of a 400.
  app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
      if (text === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text as string));
      } catch {
        done(Object.assign(new Error('the body is not valid JSON'), { statusCode: 400 }), undefined);
      }
    });
    routes(scope);
  });

  function routes(app: FastifyInstance) {
  app.get('/audiences', async () => ({ audiences: await Promise.all((await registry.all()).map((a) => summary(a.definition.name))) }));

  app.get<{ Params: { name: string } }>('/audiences/:name', async (req, reply) => {
    const s = await summary(req.params.name);
    return s ?? reply.code(404).send(notFound(req.params.name));
  });

  app.put<{ Params: { name: string } }>('/audiences/:name', async (req, reply) => {
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      return reply.code(400).send({ error: 'the body must be one sync definition (a JSON object)', issues: [{ field: '(root)', message: 'expected an object' }] });
    }
    const input = { ...(body as Record<string, unknown>) };
    input.name ??= req.params.name;
    if (input.name !== req.params.name) {
      return reply.code(400).send({ error: `name "${String(input.name)}" does not match the URL ("${req.params.name}")`, issues: [{ field: 'name', message: 'must match the :name in the URL' }] });
    }
    const parsed = audienceDefinitionSchema.safeParse(input, { error: suggestKnownKeys });
    const issues = parsed.success ? [] : fieldIssues(parsed.error);
    const source = parsed.data?.source;
    const pathProblem = source?.type === 'file' ? sourcePathProblem(source.path, { configDir: ctx.configDir, fileRoots: ctx.fileRoots }) : undefined;
    if (pathProblem) issues.push({ field: 'source.path', message: pathProblem });
    if (!parsed.success || issues.length) {
      return reply.code(400).send({ error: `invalid sync definition: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, issues });
    }
    await registry.put(parsed.data);
    scheduler.reschedule(parsed.data.name);
    return reply.code(200).send(await summary(parsed.data.name));
  });

  /**
   * The field names of a file source (CSV header, or the keys of the first NDJSON lines), for the form's Source
   * field suggestions. The path is held to the same rule as a saved definition's, with the same message.
   */
  app.get<{ Querystring: { path?: string; format?: string } }>('/file-source/fields', async (req, reply) => {
    const refuse = (code: number, message: string) => reply.code(code).send({ error: message, issues: [{ field: 'source.path', message }] });
    const path = req.query.path?.trim();
    if (!path) return refuse(400, 'give the path of a CSV or NDJSON file (?path=customers.csv)');
    const format = req.query.format;
    if (format !== undefined && format !== 'csv' && format !== 'ndjson') return reply.code(400).send({ error: 'format must be csv or ndjson', issues: [{ field: 'source.format', message: 'must be csv or ndjson' }] });
    const problem = sourcePathProblem(path, { configDir: ctx.configDir, fileRoots: ctx.fileRoots });
    if (problem) return refuse(400, problem);
    try {
      return { path, fields: await sourceFields(resolveSourcePath(path, ctx.configDir), format) };
    } catch (err) {
      if (!(err instanceof SourceError)) throw err;
      return refuse(err instanceof SourceFileNotFound ? 404 : 400, err.message);
    }
  });

  app.post<{ Params: { name: string }; Querystring: { wait?: string; dry_run?: string } }>('/audiences/:name/sync', async (req, reply) => {
    const entry = await registry.get(req.params.name);
    if (!entry) return reply.code(404).send(notFound(req.params.name));
    // The Status toggle is the operator's off switch: Instant Sync must not bypass it (a dry run sends nothing).
    if (!entry.definition.enabled && !isTrue(req.query.dry_run)) return reply.code(409).send({ error: disabledMessage(entry.definition.name) });
    if (!env.klaviyo) return reply.code(503).send({ error: 'KLAVIYO_PRIVATE_KEY is not set: audience syncs cannot reach Klaviyo' });
    if (isTrue(req.query.dry_run)) {
      const result = await dryRun(env, entry.definition);
      return reply.code(200).send({ dry_run: true, ...result });
    }
    try {
      const { runId, done } = await startRun(env, entry.definition, { trigger: 'manual' });
      if (isTrue(req.query.wait)) return reply.code(200).send({ run: await done });
      return reply.code(202).send({ run: await logs.get(runId) });
    } catch (err) {
      if (err instanceof SyncAlreadyRunning) {
        return reply.code(409).send({ error: err.message, run: err.runId ? await logs.get(err.runId) : null });
      }
      throw err;
    }
  });

  app.get<{ Params: { name: string }; Querystring: { limit?: string } }>('/audiences/:name/logs', async (req, reply) => {
    if (!(await registry.get(req.params.name))) return reply.code(404).send(notFound(req.params.name));
    const limit = Math.min(500, Math.max(1, Number(req.query.limit) || 50));
    return { logs: await logs.list(req.params.name, limit) };
  });

  }

  return {
    close: () => scheduler.close(),
    pendingTimers: () => scheduler.pending(),
    definitions: async () => (await registry.all()).map((a) => a.definition),
  };
}

const isTrue = (v?: string) => v === '' || v === '1' || v === 'true';

/**
 * Runs each enabled definition with a refreshInterval, measured from its last run's start. Every instance on a
 * shared store keeps its own timers; a due run happens once because the run lease is taken atomically and the
 * instance that gets it re-reads the last run under it: if another instance already ran this slot, it stands
 * down. A tick that finds the audience running (here or elsewhere) waits for the next one.
 */
function createScheduler(env: SyncEnvironment, registry: DefinitionRegistry, ctx: AudienceContext, clock: SchedulerClock) {
  const timers = new Map<string, () => void>();
  const tasks = new Set<Promise<unknown>>();
  const logs = runLogStore(env.store, clock.now);
  let closed = false;

  const track = (task: Promise<unknown>) => {
    const settled = task.catch((err) => ctx.log('audience scheduler error', { reason: (err as Error).message }));
    tasks.add(settled);
    void settled.finally(() => tasks.delete(settled));
  };

  const cancel = (name: string) => {
    timers.get(name)?.();
    timers.delete(name);
  };

  /** `runningSince`: a tick just found the audience running elsewhere, since about then (its log row may not
   * be written yet), so the next run is due one interval after that. */
  async function schedule(name: string, runningSince?: number) {
    cancel(name);
    const def = (await registry.get(name))?.definition;
    if (closed || !def?.enabled || !def.refreshInterval) return;
    const interval = parseDuration(def.refreshInterval)!;
    const last = (await logs.list(name, 1))[0];
    if (closed) return;
    // Never run: start soon after boot (not a full interval later); otherwise one interval after the last start.
    const lastStart = Math.max(last ? Date.parse(last.started_at) : -Infinity, runningSince ?? -Infinity);
    const delay = Number.isFinite(lastStart) ? Math.max(Math.min(1_000, interval), lastStart + interval - clock.now()) : Math.min(interval, 10_000);
    cancel(name); // a reschedule that raced this one
    timers.set(name, clock.setTimer(() => {
      timers.delete(name);
      track(tick(name));
    }, delay));
  }

  async function tick(name: string) {
    const def = (await registry.get(name))?.definition;
    if (closed || !def?.enabled || !def.refreshInterval) return;
    const interval = parseDuration(def.refreshInterval)!;
    // Timers may fire a little early; a run that started within the last half interval is another instance's.
    const slack = Math.min(interval / 2, 1_000);
    try {
      const { runId, done } = await startRun(env, def, {
        trigger: 'schedule',
        due: (last) => !last || Date.parse(last.started_at) + interval - slack <= clock.now(),
      });
      ctx.log('audience sync started', { audience: name, run: runId, trigger: 'schedule' });
      const log = await done;
      ctx.log('audience sync finished', { audience: name, run: runId, status: log.status, counts: log.counts });
    } catch (err) {
      if (!(err instanceof SyncNotDue)) ctx.log('scheduled audience sync skipped', { audience: name, reason: (err as Error).message });
      if (err instanceof SyncAlreadyRunning) return schedule(name, clock.now());
    }
    await schedule(name);
  }

  return {
    start: () => track(registry.all().then((all) => Promise.all(all.map((a) => schedule(a.definition.name))))),
    reschedule: (name: string) => track(schedule(name)),
    /** Timers waiting to start a run (tests). */
    pending: () => timers.size,
    async close() {
      closed = true;
      for (const name of [...timers.keys()]) cancel(name);
      // Wait for runs in progress, including ones started through Instant Sync.
      const active = (await registry.all()).map((a) => currentRun(env.store, a.definition.name)?.done).filter(Boolean);
      while (tasks.size) await Promise.allSettled([...tasks]);
      await Promise.allSettled(active);
    },
  };
}

// Entry point of the audience-sync module, called by createServer inside its /v1/admin scope (which already
// checks the admin token): the admin routes for sync definitions, Instant Sync and logs, and the scheduler that
// runs enabled syncs on their refreshInterval.
import type { FastifyInstance } from 'fastify';
import type { Db } from '../store/db.js';
import type { KlaviyoClient } from '../klaviyo-client.js';
import type { AudienceDefinition } from './definition.js';
import { audienceDefinitionSchema } from './definition.js';
import { definitionRegistry, type DefinitionRegistry } from './definitions.js';
import { currentRun, disabledMessage, dryRun, startRun, SyncAlreadyRunning, type SyncEnvironment } from './sync.js';
import { runLogStore } from './runs.js';
import { parseDuration } from '../../shared/duration.js';
import { fieldIssues, suggestKnownKeys } from '../../shared/zod-issues.js';
import { sourcePathProblem } from './file-source.js';

export interface AudienceContext {
  db: Db;
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
}

export { parseDefinition, DefinitionError } from './definitions.js';
export { startRun, dryRun, SyncAlreadyRunning, disabledMessage } from './sync.js';
export type { RunLog } from './runs.js';


/** Register the admin audience routes on `app` (already behind the admin-token check) and start the scheduler. */
export function registerAudiences(app: FastifyInstance, ctx: AudienceContext): { close(): Promise<void> } {
  const registry = definitionRegistry(ctx.db, ctx.definitions);
  const logs = runLogStore(ctx.db);
  const env: SyncEnvironment = {
    db: ctx.db,
    klaviyo: ctx.klaviyo,
    configDir: ctx.configDir,
    fileRoots: ctx.fileRoots,
    defaultPhoneRegion: ctx.defaultPhoneRegion,
    tuning: ctx.tuning,
  };
  const scheduler = createScheduler(env, registry, ctx);
  if (ctx.scheduler !== false) scheduler.start();

  const summary = (name: string) => {
    const entry = registry.get(name);
    if (!entry) return undefined;
    const last = logs.list(name, 1)[0];
    return { name, origin: entry.origin, definition: entry.definition, running: !!currentRun(ctx.db, name), last_run: last ?? null };
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
  app.get('/audiences', async () => ({ audiences: registry.all().map((a) => summary(a.definition.name)) }));

  app.get<{ Params: { name: string } }>('/audiences/:name', async (req, reply) => {
    const s = summary(req.params.name);
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
    registry.put(parsed.data);
    scheduler.reschedule(parsed.data.name);
    return reply.code(200).send(summary(parsed.data.name));
  });

  app.post<{ Params: { name: string }; Querystring: { wait?: string; dry_run?: string } }>('/audiences/:name/sync', async (req, reply) => {
    const entry = registry.get(req.params.name);
    if (!entry) return reply.code(404).send(notFound(req.params.name));
    // The Status toggle is the operator's off switch: Instant Sync must not bypass it (a dry run sends nothing).
    if (!entry.definition.enabled && !isTrue(req.query.dry_run)) return reply.code(409).send({ error: disabledMessage(entry.definition.name) });
    if (!env.klaviyo) return reply.code(503).send({ error: 'KLAVIYO_PRIVATE_KEY is not set: audience syncs cannot reach Klaviyo' });
    if (isTrue(req.query.dry_run)) {
      const result = await dryRun(env, entry.definition);
      return reply.code(200).send({ dry_run: true, ...result });
    }
    try {
      const { runId, done } = startRun(env, entry.definition, { trigger: 'manual' });
      if (isTrue(req.query.wait)) return reply.code(200).send({ run: await done });
      return reply.code(202).send({ run: logs.get(runId) });
    } catch (err) {
      if (err instanceof SyncAlreadyRunning) {
        return reply.code(409).send({ error: err.message, run: err.runId ? logs.get(err.runId) : null });
      }
      throw err;
    }
  });

  app.get<{ Params: { name: string }; Querystring: { limit?: string } }>('/audiences/:name/logs', async (req, reply) => {
    if (!registry.get(req.params.name)) return reply.code(404).send(notFound(req.params.name));
    const limit = Math.min(500, Math.max(1, Number(req.query.limit) || 50));
    return { logs: logs.list(req.params.name, limit) };
  });

  }

  return { close: () => scheduler.close() };
}

const isTrue = (v?: string) => v === '' || v === '1' || v === 'true';

/**
 * Runs each enabled definition with a refreshInterval, measured from its last run's start. A tick that finds
 * the audience already running (here or in another process) just waits for the next one.
 */
function createScheduler(env: SyncEnvironment, registry: DefinitionRegistry, ctx: AudienceContext) {
  const timers = new Map<string, NodeJS.Timeout>();
  const runs = new Set<Promise<unknown>>();
  let closed = false;

  function schedule(name: string) {
    clearTimeout(timers.get(name));
    timers.delete(name);
    const def = registry.get(name)?.definition;
    if (closed || !def?.enabled || !def.refreshInterval) return;
    const interval = parseDuration(def.refreshInterval)!;
    const last = runLogStore(env.db).list(name, 1)[0];
    // Never run: start soon after boot (not a full interval later); otherwise one interval after the last start.
    const delay = last ? Math.max(Math.min(1_000, interval), Date.parse(last.started_at) + interval - Date.now()) : Math.min(interval, 10_000);
    const timer = setTimeout(() => tick(name), Math.min(delay, 2 ** 31 - 1));
    timer.unref();
    timers.set(name, timer);
  }

  function tick(name: string) {
    const def = registry.get(name)?.definition;
    if (closed || !def?.enabled) return;
    try {
      const { runId, done } = startRun(env, def, { trigger: 'schedule' });
      ctx.log('audience sync started', { audience: name, run: runId, trigger: 'schedule' });
      const p = done.then((log) => ctx.log('audience sync finished', { audience: name, run: runId, status: log.status, counts: log.counts }));
      runs.add(p);
      p.finally(() => {
        runs.delete(p);
        schedule(name);
      });
    } catch (err) {
      ctx.log('scheduled audience sync skipped', { audience: name, reason: (err as Error).message });
      schedule(name);
    }
  }

  return {
    start: () => registry.all().forEach((a) => schedule(a.definition.name)),
    reschedule: (name: string) => schedule(name),
    async close() {
      closed = true;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      // Wait for runs in progress, including ones started through Instant Sync.
      const active = registry.all().map((a) => currentRun(env.db, a.definition.name)?.done).filter(Boolean);
      await Promise.allSettled([...runs, ...active]);
    },
  };
}

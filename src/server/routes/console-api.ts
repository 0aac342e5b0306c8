// The admin routes behind the operator console (and usable by hand): the event-workflow toggles (saved, or reset
// to the config file's), the events the store has seen and the property names its events and profiles carry, Klaviyo's lists for the audience form, and the connection
// checks with Verify events.
// They live inside the /v1/admin scope, so the admin token is already checked.
import type { FastifyInstance } from 'fastify';
import type { AudienceDefinition } from '../audiences/definition.js';
import { z } from 'zod';
import {
  checkAllowedOrigins, checkAudienceLists, checkPrivateKey, checkPublicKey, countWindow, DEFAULT_COUNT_DAYS, fetchAllPages, verifyEvents, type CheckResult,
} from '../connection-checks.js';
import { KlaviyoError, type KlaviyoClient } from '../klaviyo-client.js';
import { PROPERTY_KEY_SAMPLE } from '../store/property-keys.js';
import type { RelayStore } from '../store/types.js';
import type { Route } from '../../shared/wire.js';
import type { ServedWorkflow, WorkflowSettings } from '../workflow-settings.js';

export interface ConsoleApiContext {
  store: RelayStore;
  workflow: WorkflowSettings;
  klaviyo?: KlaviyoClient;
  publicKey: string;
  allowedOrigins: string[];
  /** Where the store lives, in words (e.g. "SQLite at /srv/relay/relay.sqlite3"). */
  storeDescription: string;
  /** Every audience definition in force (config file and saved). */
  audiences: () => AudienceDefinition[] | Promise<AudienceDefinition[]>;
  /** Whether forwarding runs, and why not when it is off or paused (Klaviyo refused the key for some operations). */
  forwarding?: () => { state: 'on' | 'off' | 'paused'; reason?: string; retryAt?: string };
}

export interface WorkflowEventRow {
  name: string;
  /** The route browsers get for it, or null when it follows the default. */
  route: Route | null;
  /** Its toggle in the config file, and the one saved from the console, when there are. */
  configured: Route | null;
  saved: Route | null;
  count: number;
  lastSeenAt: number | null;
}

/** A count window longer than a quarter is a report, not a check: the Klaviyo UI does that better. */
const MAX_COUNT_DAYS = 90;
const verifyQuery = z.object({ days: z.coerce.number().int().min(1).max(MAX_COUNT_DAYS).default(DEFAULT_COUNT_DAYS) });

const sampleSize = z.coerce.number().int().min(1).max(PROPERTY_KEY_SAMPLE).default(PROPERTY_KEY_SAMPLE);
const eventPropertiesQuery = z.object({ name: z.string().trim().min(1).max(1000), sample: sampleSize });
const profilePropertiesQuery = z.object({ sample: sampleSize });
const sampleError = `sample must be a whole number from 1 to ${PROPERTY_KEY_SAMPLE}`;

const noKlaviyo = { error: 'KLAVIYO_PRIVATE_KEY is unset: the companion server cannot reach Klaviyo' };

export function registerConsoleApi(app: FastifyInstance, ctx: ConsoleApiContext): void {
  async function workflowView(served: ServedWorkflow) {
    const counts = new Map((await ctx.store.eventCounts()).map((e) => [e.name, e]));
    const fromConfig = ctx.workflow.fromConfig.events;
    const saved = served.saved?.workflow.events ?? {};
    const names = [...new Set([...Object.keys(fromConfig), ...Object.keys(saved), ...counts.keys()])].sort((a, b) => a.localeCompare(b));
    const events: WorkflowEventRow[] = names.map((name) => ({
      name,
      route: served.workflow.events[name] ?? null,
      configured: fromConfig[name] ?? null,
      saved: saved[name] ?? null,
      count: counts.get(name)?.count ?? 0,
      lastSeenAt: counts.get(name)?.lastSeenAt ?? null,
    }));
    return {
      workflow: served.workflow,
      fromConfig: ctx.workflow.fromConfig,
      saved: served.saved,
      events,
    };
  }

  app.get('/workflow', async () => workflowView(await ctx.workflow.current()));

  app.put('/workflow', async (req, reply) => {
    const result = await ctx.workflow.save(req.body);
    if (!result.ok) {
      return reply.code(400).send({ error: `workflow not saved: ${result.issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, issues: result.issues });
    }
    return workflowView(result.served);
  });

  /** Reset to config file: the saved toggles are removed and the config file's workflow is served again. */
  app.delete('/workflow', async () => workflowView(await ctx.workflow.reset()));

  app.get('/events', async () => ({ events: await ctx.store.eventCounts() }));

  /**
   * The property names an event's filters can use: the top-level keys of its newest events (500 unless `sample`
   * asks for fewer), most carried first. Keys are shoppers' data, returned as data for the console to show as text.
   */
  app.get('/events/properties', async (req, reply) => {
    const query = eventPropertiesQuery.safeParse(req.query);
    if (!query.success) {
      const nameProblem = query.error.issues.some((i) => i.path[0] === 'name');
      return reply.code(400).send({ error: nameProblem ? 'name the event: ?name=Placed%20Order' : sampleError });
    }
    return { name: query.data.name, ...(await ctx.store.eventPropertyKeys(query.data.name, query.data.sample)) };
  });

  /**
   * The profile properties a trait rule can name: the profile columns and the keys seen on the newest profiles that
   * carry custom properties or a location (500 unless `sample` asks for fewer, among the newest 10,000 profiles).
   */
  app.get('/profiles/properties', async (req, reply) => {
    const query = profilePropertiesQuery.safeParse(req.query);
    if (!query.success) return reply.code(400).send({ error: sampleError });
    return ctx.store.profilePropertyKeys(query.data.sample);
  });

  /** Klaviyo's lists, every page, for the "Existing list" select. */
  app.get('/klaviyo/lists', async (_req, reply) => {
    if (!ctx.klaviyo) return reply.code(503).send(noKlaviyo);
    try {
      const { data, truncated } = await fetchAllPages(ctx.klaviyo, '/api/lists', { 'page[size]': '10', sort: 'name' }, 100);
      return {
        lists: data.map((l) => ({ id: String(l.id), name: l.attributes?.name ?? String(l.id), optInProcess: l.attributes?.opt_in_process ?? null })),
        truncated,
      };
    } catch (err) {
      if (!(err instanceof KlaviyoError)) throw err;
      return reply.code(502).send({ error: `Klaviyo's lists could not be read: ${err.message}` });
    }
  });

  /** The doctor's checks, live. */
  app.get('/connection', async () => {
    const { result, account } = await checkPrivateKey(ctx.klaviyo);
    let store: CheckResult;
    try {
      const counts = await ctx.store.counts();
      store = { check: 'store', status: 'ok', detail: `${ctx.storeDescription}: ${counts.events} events, ${counts.profiles} profiles` };
    } catch (err) {
      store = { check: 'store', status: 'fail', detail: `${ctx.storeDescription} cannot be read: ${(err as Error).message}` };
    }
    const checks: CheckResult[] = [
      result,
      checkPublicKey(ctx.publicKey, account),
      checkAllowedOrigins(ctx.allowedOrigins),
      ...(await checkAudienceLists(ctx.klaviyo, await ctx.audiences(), Boolean(account))),
      store,
    ];
    const forwarding = ctx.forwarding?.();
    if (forwarding) {
      checks.push({
        check: 'forwarding',
        status: forwarding.state === 'on' ? 'ok' : 'fail',
        detail: forwarding.state === 'on' ? 'server-side events are sent to Klaviyo' : `${forwarding.state}: ${forwarding.reason ?? 'no reason given'}${forwarding.retryAt ? ` (next try ${forwarding.retryAt})` : ''}`,
      });
    }
    return {
      ok: checks.every((c) => c.status === 'ok' || c.status === 'warn'),
      checks,
      account: account ?? null,
      publicKey: ctx.publicKey,
      allowedOrigins: ctx.allowedOrigins,
      klaviyoBaseUrl: ctx.klaviyo?.baseUrl ?? null,
    };
  });

  /**
   * Verify events: Klaviyo's metrics beside the store's count per event name, and both sides' counts over the last
   * `days` days (7 unless asked) for the most recently seen Client and Server events.
   */
  app.get('/connection/events', async (req, reply) => {
    if (!ctx.klaviyo) return reply.code(503).send(noKlaviyo);
    const query = verifyQuery.safeParse(req.query);
    if (!query.success) return reply.code(400).send({ error: `days must be a whole number from 1 to ${MAX_COUNT_DAYS}` });
    try {
      const { workflow } = await ctx.workflow.current();
      return await verifyEvents(ctx.klaviyo, {
        storeCounts: await ctx.store.eventCounts(),
        routeOf: (name) => workflow.events[name] ?? workflow.default ?? null,
        countStore: (names, from, until) => ctx.store.eventCountsBetween(names, from, until),
        window: countWindow(query.data.days, Date.now()),
      });
    } catch (err) {
      if (!(err instanceof KlaviyoError)) throw err;
      const fix = err.keyProblem ? ': give the private key read access to Metrics (the metrics:read scope)' : '';
      return reply.code(502).send({ error: `Klaviyo's metrics could not be read: ${err.message}${fix}` });
    }
  });
}

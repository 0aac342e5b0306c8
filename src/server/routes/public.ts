// The public routes the snippet calls: the workflow config and event intake (docs/wire-format.md). Plus /healthz.
import rateLimit from '@fastify/rate-limit';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { eventsBatchEnvelopeSchema, describeIssues, parseWireEvent, MAX_EVENTS_PER_BATCH, type ValidEvent } from '../../shared/wire-schema.js';
import type { EventsResponse } from '../../shared/wire.js';
import type { RelayConfig } from '../config.js';
import type { RelayStore } from '../store/types.js';
import { createWorkflowSettings, type WorkflowSettings } from '../workflow-settings.js';
import { BODY_LIMIT } from '../http.js';
import type { ForwardingState } from '../forwarder.js';

export interface PublicRoutesContext {
  config: RelayConfig;
  store: RelayStore;
  /** The toggles served at /v1/config: the config file's, overridden by those saved from the console (read from `store` by default). */
  workflow?: WorkflowSettings;
  /** Told when new `server` items were queued. */
  onQueued: () => void;
  /** Whether events reach Klaviyo now (off without KLAVIYO_PRIVATE_KEY; paused while Klaviyo refuses the key for some operations). */
  forwarding: () => ForwardingState;
  /** Clock for how long a store failure is reported (tests). */
  now?: () => number;
}

/** Does an If-None-Match header (a list, possibly weak, or `*`) match this ETag? */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || strip(t) === strip(etag));
}

/** Seconds a client waits before retrying while the store fails. */
const STORE_RETRY_AFTER_S = 5;
/**
 * How long /healthz reports a store failure that no intake has confirmed since. A load balancer that stops
 * routing to an unhealthy instance sends no intake that could prove recovery: health must not stay 503 forever.
 */
export const STORE_FAILURE_REPORTED_MS = 30_000;

/** How long /healthz waits for the store to answer before reporting it failing; a balancer's own timeout is longer. */
export const STORE_PROBE_TIMEOUT_MS = 2_000;

/** Why the store does not answer a trivial read within STORE_PROBE_TIMEOUT_MS, or undefined when it does. */
async function probeStore(store: RelayStore): Promise<string | undefined> {
  const timer = new AbortController();
  const timeout = sleep(STORE_PROBE_TIMEOUT_MS, undefined, { signal: timer.signal }).then(() => {
    throw new Error(`no answer within ${STORE_PROBE_TIMEOUT_MS} ms`);
  });
  try {
    await Promise.race([store.ping(), timeout]);
    return undefined;
  } catch (err) {
    return (err as Error)?.message ?? String(err);
  } finally {
    timer.abort();
  }
}

export async function registerPublicRoutes(app: FastifyInstance, ctx: PublicRoutesContext): Promise<void> {
  const { config, store } = ctx;
  const workflow = ctx.workflow ?? createWorkflowSettings({ store, fromConfig: config.workflow });
  /** Why the last write to the store failed; cleared by the next one that succeeds. */
  let storeFailure: { reason: string; at: number } | undefined;
  const now = ctx.now ?? Date.now;

  app.get<{ Querystring: { key?: string } }>('/v1/config', async (req, reply) => {
    const key = req.query.key;
    if (!key) return reply.code(400).send({ error: 'missing ?key= (your Klaviyo Public API Key)' });
    if (key !== config.publicKey) return reply.code(404).send({ error: `no workflow config for public key ${key}` });
    let served;
    try {
      served = await workflow.current();
    } catch (err) {
      // The snippet keeps its last good config meanwhile.
      req.log.error({ err }, 'reading the saved workflow toggles failed');
      return reply.code(503).header('retry-after', '5').send({ error: 'the store is unavailable; retry later' });
    }
    reply.header('etag', served.etag).header('cache-control', 'no-cache');
    if (etagMatches(req.headers['if-none-match'], served.etag)) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(served.body);
  });

  const { max, windowMs } = typeof config.rateLimit === 'number' ? { max: config.rateLimit, windowMs: 60_000 } : config.rateLimit;
  await app.register(rateLimit, { global: false });

  app.post(
    '/v1/events',
    { bodyLimit: BODY_LIMIT, config: { rateLimit: { max, timeWindow: windowMs } } },
    async (req, reply) => {
      const envelope = eventsBatchEnvelopeSchema.safeParse(req.body);
      if (!envelope.success) return reply.code(400).send({ error: `invalid batch: ${describeIssues(envelope.error)}` });
      const { public_key, events } = envelope.data;
      if (public_key !== config.publicKey) return reply.code(403).send({ error: `public_key ${public_key} is not served by this relay` });
      if (events.length > MAX_EVENTS_PER_BATCH) {
        return reply.code(413).send({ error: `${events.length} events in one request; send at most ${MAX_EVENTS_PER_BATCH}` });
      }

      const valid: ValidEvent[] = [];
      const rejected: EventsResponse['rejected'] = [];
      events.forEach((raw, index) => {
        const result = parseWireEvent(raw);
        if (result.ok) valid.push(result.event);
        else rejected.push({ index, error: result.error });
      });

      // The answer is sent only once the batch is committed; a store failure writes nothing and answers 503.
      let queued = 0;
      try {
        if (valid.length) queued = (await store.ingest(public_key, valid)).queued;
        storeFailure = undefined;
      } catch (err) {
        // One log line per failure kind, not a stack per request: a full disk fails every request alike.
        const reason = (err as Error)?.message ?? String(err);
        if (reason !== storeFailure?.reason) req.log.error({ err }, 'storing events failed');
        storeFailure = { reason, at: now() };
        return reply.code(503).header('retry-after', String(STORE_RETRY_AFTER_S)).send({ error: `the event store is unavailable (${reason}); retry later` });
      }
      if (queued) ctx.onQueued();
      const body: EventsResponse = { accepted: valid.length, rejected };
      return reply.code(202).send(body);
    },
  );

  // Tells an operator at a glance whether events are stored and reach Klaviyo. A paused forwarder still answers 200: intake
  // works and nothing is lost, and a restart would not fix a key, so a load balancer must not cycle the process.
  // The store must answer a trivial read now (an idle instance learns that its database is gone), and its last
  // write must not have failed within STORE_FAILURE_REPORTED_MS (a full disk fails writes but not reads);
  // otherwise health answers 503 with the reason, as intake does.
  app.get('/healthz', async (_req, reply) => {
    const f = ctx.forwarding();
    const forwarding = f.reason ? `${f.state}: ${f.reason}` : f.state;
    const failure = (await probeStore(store)) ?? (storeFailure && now() - storeFailure.at < STORE_FAILURE_REPORTED_MS ? storeFailure.reason : undefined);
    if (failure) {
      return reply.code(503).header('retry-after', String(STORE_RETRY_AFTER_S)).send({ status: 'error', store: `failing: ${failure}`, forwarding });
    }
    const body = { status: f.state === 'paused' ? 'degraded' : 'ok', store: 'ok', forwarding, ...(f.retryAt && { retry_at: f.retryAt }) };
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(body));
  });
}

// The local Klaviyo sandbox: `startEmulator()` for tests and the demo, `klaviyo-relay emulator` on the CLI.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createAdminRoutes } from './admin.js';
import { errorItem } from './errors.js';
import { FaultRules, type FaultRule } from './faults.js';
import type { Handler } from './handlers/context.js';
import type { KeyConfig } from './keys.js';
import { accountHandlers } from './handlers/accounts.js';
import { aggregateHandlers } from './handlers/aggregates.js';
import { eventHandlers } from './handlers/events.js';
import { listHandlers } from './handlers/lists.js';
import { metricHandlers } from './handlers/metrics.js';
import { profileHandlers } from './handlers/profiles.js';
import { subscriptionHandlers } from './handlers/subscriptions.js';
import { OpenApiSpec } from './openapi.js';
import { RateLimiter } from './rate-limit.js';
import { RequestLog, type LoggedRequest } from './request-log.js';
import { RouteTable } from './routes.js';
import { createListener, send } from './server.js';
import { loadSnapshot, saveSnapshot } from './snapshot.js';
import { confirmOptIn } from './state/consent.js';
import { EmulatorState, type ListView, type ProfileView } from './state/index.js';
import type { StoredEvent } from './state/events.js';
import type { Job } from './state/jobs.js';

export type { FaultRule } from './faults.js';
export type { LoggedRequest } from './request-log.js';
export type { ListView, ProfileView } from './state/index.js';
export type { StoredEvent } from './state/events.js';
export type { Job, ImportError } from './state/jobs.js';
export { OpenApiSpec } from './openapi.js';

export interface EmulatorOptions {
  /** 0 = a random free port (tests). Default 0. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The only private key accepted; default KLAVIYO_PRIVATE_KEY, else any well-formed `pk_…` key. */
  privateKey?: string;
  /** The only public key accepted; default KLAVIYO_PUBLIC_KEY, else any 6-character key. */
  publicKey?: string;
  /**
   * The private key's scopes (e.g. `['accounts:read', 'events:write']`): operations needing another scope answer
   * 403 `permission_denied`, as Klaviyo does for a key created with a scope. Default: a Full Access key.
   */
  privateKeyScopes?: string[];
  /** Enforce each endpoint's published burst/steady limits. Default true. */
  rateLimits?: boolean;
  /** JSON file the state is loaded from at start and saved to (every few seconds and on close). */
  snapshotFile?: string;
  /** How long a bulk job takes to complete (queued → processing at half of it). Default 100 ms. */
  jobDelayMs?: number;
  /** Fault rules active from the start (same shape as `faults.add`). */
  faults?: FaultRule[];
  /** A preloaded spec (saves parsing stable.json again when a test starts many emulators). */
  spec?: OpenApiSpec;
  /** Epoch ms now, for rate-limit windows and event-time limits; tests inject one. Default Date.now. */
  clock?: () => number;
}

export interface Emulator {
  url: string;
  port: number;
  close(): Promise<void>;
  /** Forgets all state, requests, faults and rate-limit counters. */
  reset(): void;
  /** Gives the private key these scopes from now on (undefined: Full Access), as a new key would. */
  setPrivateKeyScopes(scopes: string[] | undefined): void;
  faults: { add(rule: FaultRule): void; clear(): void; list(): FaultRule[] };
  /** Recent requests, oldest first, bounded (rejected ones carry `error`). */
  requests: LoggedRequest[];
  state: {
    events(filter?: { metric?: string; profileId?: string }): StoredEvent[];
    profiles(): ProfileView[];
    lists(): ListView[];
    listMembers(listId: string): ProfileView[];
    /** Bulk jobs of every kind, with status, counts, import errors and notes (e.g. global unsubscribes). */
    jobs(): Job[];
    /** Runs queued bulk jobs now instead of waiting jobDelayMs. */
    flushJobs(): void;
    /** Simulates the person confirming a double opt-in; false when none was pending. */
    confirmOptIn(profileId: string, listId: string): boolean;
  };
  /** The internals, for the admin API and advanced tests. */
  internals: { state: EmulatorState; spec: OpenApiSpec };
}

let cachedSpec: OpenApiSpec | undefined;

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const spec = opts.spec ?? (cachedSpec ??= OpenApiSpec.load());
  const state = new EmulatorState(opts.jobDelayMs ?? 100);
  const faults = new FaultRules();
  for (const rule of opts.faults ?? []) faults.add(rule);
  const log = new RequestLog();
  const clock = opts.clock ?? Date.now;
  const limiter = opts.rateLimits === false ? undefined : new RateLimiter(clock);
  const keys: KeyConfig = {
    privateKey: opts.privateKey ?? (process.env.KLAVIYO_PRIVATE_KEY || undefined),
    publicKey: opts.publicKey ?? (process.env.KLAVIYO_PUBLIC_KEY || undefined),
    privateKeyScopes: opts.privateKeyScopes,
  };
  if (opts.snapshotFile) loadSnapshot(opts.snapshotFile, state);

  const ctx = { state, spec, keys, clock };
  const handlers: Record<string, Handler> = {
    ...accountHandlers(ctx), ...eventHandlers(ctx), ...metricHandlers(ctx), ...aggregateHandlers(ctx), ...profileHandlers(ctx), ...subscriptionHandlers(ctx), ...listHandlers(ctx),
  };
  const reset = () => {
    state.reset();
    log.clear();
    faults.clear();
    limiter?.reset();
  };
  const save = opts.snapshotFile ? () => saveSnapshot(opts.snapshotFile!, state) : undefined;
  const listener = createListener({
    spec,
    routes: new RouteTable(spec),
    handlers,
    keys,
    limiter,
    faults,
    log,
    revision: String(spec.raw.info?.version ?? ''),
    extra: createAdminRoutes({ state, log, faults, reset, saveSnapshot: save }),
  });

  const server: Server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    listener(req, res).catch((err) => {
      // Never let one request take the sandbox down (e.g. an oversize admin body).
      console.error('[emulator]', err);
      send(res, 500, { errors: [errorItem(500, 'error', String((err as Error)?.message ?? err))] });
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';

  // Save the snapshot every few seconds when something changed, and on close.
  let savedAt = 0;
  const autosave = save
    ? setInterval(() => {
        const last = log.entries[log.entries.length - 1]?.time ?? 0;
        if (last > savedAt) {
          savedAt = Date.now();
          save();
        }
      }, 3000)
    : undefined;
  autosave?.unref();

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    reset,
    setPrivateKeyScopes: (scopes) => (keys.privateKeyScopes = scopes && [...scopes]),
    faults: { add: (r) => faults.add(r), clear: () => faults.clear(), list: () => faults.list() },
    requests: log.entries,
    state: {
      events: (filter) => state.events.all(filter),
      profiles: () => state.profiles.all().map((p) => state.profileView(p)),
      lists: () => state.lists.all().map((l) => state.listView(l)),
      listMembers: (id) => state.listMembers(id),
      jobs: () => structuredClone(state.jobs.all()),
      flushJobs: () => state.jobs.flush(),
      confirmOptIn: (profileId, listId) => {
        const profile = state.profiles.get(profileId);
        const list = state.lists.get(listId);
        return !!profile && !!list && confirmOptIn({ profiles: state.profiles, lists: state.lists }, profile, list);
      },
    },
    internals: { state, spec },
    close: async () => {
      if (autosave) clearInterval(autosave);
      save?.();
      state.jobs.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

// `klaviyo-relay/server`: the companion server as a library. createServer wires config, store, forwarder and
// routes; `serve` (cli.ts) is a thin shell around it.
import { join, resolve } from 'node:path';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { parseConfig, readEnv, type RelayConfig, type RelayConfigInput } from './config.js';
import { createKlaviyoClient, type RetryPolicy } from './klaviyo-client.js';
import type { Clock } from './rate-limiter.js';
import type { Db } from './store/db.js';
import { openStore } from './store/open.js';
import type { RelayStore } from './store/types.js';
import { createForwarder, type Forwarder, type ForwarderOptions } from './forwarder.js';
import { redactingStream } from './logger.js';
import { BODY_LIMIT, setupHttp } from './http.js';
import { registerPublicRoutes } from './routes/public.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerConsolePage } from './routes/console-page.js';
import { createWorkflowSettings } from './workflow-settings.js';
import type { AudienceContext } from './audiences/index.js';
import { checkAdminToken, listenProblem } from './startup.js';

export interface CreateServerOptions {
  privateKey?: string;
  adminToken?: string;
  klaviyoBaseUrl?: string;
  /** Per-request timeout towards Klaviyo (default 30 s); a timeout is retried with backoff. */
  klaviyoTimeoutMs?: number;
  /** The retry policy of every Klaviyo call (forwarding and audience syncs); tests shorten it. */
  klaviyoRetry?: Partial<RetryPolicy>;
  /** Time source of the Klaviyo transport and the forwarder (tests freeze or move it). */
  clock?: Clock;
  /** Directory of the SQLite file, or ':memory:'. Default RELAY_DATA_DIR. */
  dataDir?: string;
  /** postgres://… stores everything in PostgreSQL instead (default DATABASE_URL); nothing is written to dataDir. */
  databaseUrl?: string;
  /** PostgreSQL: how long an outbox claim holds unless renewed (default RELAY_FORWARD_LEASE_MS, else 30 s). */
  forwardLeaseMs?: number;
  /** Directory of the config file: audience file sources resolve against it. */
  configDir?: string;
  /** JSON log lines on stdout (secrets blanked). Off by default for library use. */
  logger?: boolean;
  /** Behind a reverse proxy: Fastify's trustProxy (true, hop count, or proxy addresses). Default RELAY_TRUST_PROXY. */
  trustProxy?: boolean | number | string;
  /** Outbox poll period; 0 forwards only on flush(). */
  forwardIntervalMs?: number;
  /** Tuning for tests and benchmarks (batch sizes, concurrency, the pause after a refused key). */
  forwarder?: Omit<ForwarderOptions, 'store' | 'klaviyo' | 'log' | 'intervalMs' | 'clock'>;
  /** Extra audience-module settings (e.g. scheduler off, tuning), passed through to registerAudiences. */
  audiences?: Partial<Omit<AudienceContext, 'store' | 'klaviyo' | 'definitions' | 'configDir' | 'defaultPhoneRegion' | 'log'>>;
}

/** The longest a request may take to arrive in full. */
export const REQUEST_TIMEOUT_MS = 60_000;

/** `serve` and listen() use this port when neither --port nor PORT says otherwise. */
export const DEFAULT_PORT = 8787;

export interface RelayServer {
  app: FastifyInstance;
  /** The embedded SQLite database; undefined when the store is PostgreSQL. */
  db: Db | undefined;
  store: RelayStore;
  /** Where the data lives: the SQLite folder, or the PostgreSQL URL without its password. */
  storeLocation: string;
  config: RelayConfig;
  forwarder: Pick<Forwarder, 'flush' | 'stats' | 'forwarding'>;
  listen(opts?: { port?: number; host?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function createServer(config: RelayConfigInput | RelayConfig, options: CreateServerOptions = {}): Promise<RelayServer> {
  const env = readEnv();
  const configDir = options.configDir ?? process.cwd();
  const cfg = parseConfig(config, 'config', configDir);
  const privateKey = options.privateKey ?? env.privateKey;
  const adminToken = options.adminToken ?? env.adminToken;
  const baseUrl = options.klaviyoBaseUrl ?? env.klaviyoBaseUrl;
  checkAdminToken(adminToken);
  const dataDir = options.dataDir ?? env.dataDir;

  const app = Fastify({
    bodyLimit: BODY_LIMIT,
    // A client trickling its body byte by byte (slowloris) must not hold a connection forever; a 1 MiB batch
    // arrives well within this even on a slow phone link. Node's own 60 s headersTimeout covers the headers.
    requestTimeout: REQUEST_TIMEOUT_MS,
    // A union confuses Fastify's overloads; each member is a valid trustProxy value.
    trustProxy: (options.trustProxy ?? env.trustProxy ?? false) as boolean,
    // Two lines per request is noise at storefront volume; LOG_LEVEL=debug brings them back.
    logController: new LogController({ disableRequestLogging: !['debug', 'trace'].includes(process.env.LOG_LEVEL ?? '') }),
    logger: options.logger ? { level: process.env.LOG_LEVEL || 'info', stream: redactingStream([privateKey, adminToken]) } : false,
  });
  const log = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}) => app.log[level](fields, message);

  const claimLeaseMs = options.forwardLeaseMs ?? env.forwardLeaseMs;
  const opened = await openStore({
    databaseUrl: options.databaseUrl ?? env.databaseUrl, dataDir, claimLeaseMs,
    log: (level, message, fields) => log(level, message, fields),
  });
  const store = opened.relay;
  const db = opened.backend.kind === 'sqlite' ? opened.backend.db : undefined;
  // One client per process: forwarding and audience syncs share its limiter, as they share Klaviyo's per-account limits.
  const klaviyo = privateKey
    ? createKlaviyoClient({ privateKey, baseUrl, timeoutMs: options.klaviyoTimeoutMs, retry: options.klaviyoRetry, clock: options.clock })
    : undefined;
  const forwarder = createForwarder({ claimLeaseMs, ...options.forwarder, store, klaviyo, log, intervalMs: options.forwardIntervalMs ?? 1000 });

  const workflow = createWorkflowSettings({ store, fromConfig: cfg.workflow, log: (message, fields) => log('warn', message, fields) });
  // Said at start: otherwise the first sign of it is a marketer's refused sign-in at /admin.
  if (!adminToken) log('warn', 'RELAY_ADMIN_TOKEN is unset: the admin API and the operator console at /admin are off until it is set');

  let admin: { close(): Promise<void> };
  try {
    await setupHttp(app, cfg.allowedOrigins);
    await registerPublicRoutes(app, { config: cfg, store, workflow, onQueued: () => forwarder.notify(), forwarding: () => forwarder.forwarding() });
    admin = await registerAdminRoutes(app, adminToken, {
      ...options.audiences,
      tuning: { leaseTtlMs: env.audienceLeaseMs, ...options.audiences?.tuning },
      store: opened.audiences, klaviyo, definitions: cfg.audiences, configDir, fileRoots: cfg.audienceFileRoots,
      defaultPhoneRegion: cfg.defaultPhoneRegion, log: (message, fields) => log('info', message, fields),
    }, { store, onRequeued: () => forwarder.notify(), forwarding: () => forwarder.forwarding() }, {
      workflow, klaviyo, publicKey: cfg.publicKey, allowedOrigins: cfg.allowedOrigins, forwarding: () => forwarder.forwarding(),
      storeDescription: opened.backend.kind === 'postgres' ? `PostgreSQL at ${opened.location}`
        : dataDir === ':memory:' ? 'SQLite in memory' : `SQLite at ${resolve(join(dataDir, 'relay.sqlite3'))}`,
    });
    await registerConsolePage(app);
    await app.ready();
  } catch (err) {
    await opened.close();
    throw err;
  }
  await forwarder.start();

  let closed: Promise<void> | undefined;
  return {
    app,
    db,
    store,
    storeLocation: opened.location,
    config: cfg,
    forwarder: { flush: () => forwarder.flush(), stats: () => forwarder.stats(), forwarding: () => forwarder.forwarding() },
    async listen({ port = env.port ?? DEFAULT_PORT, host = env.host ?? '0.0.0.0' } = {}) {
      try {
        await app.listen({ port, host });
      } catch (err) {
        throw listenProblem(err, port, host);
      }
      const address = app.server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
      return `http://${shown}:${bound}`;
    },
    close() {
      closed ??= (async () => {
        await forwarder.stop();
        await admin.close();
        await app.close();
        await opened.close();
      })();
      return closed;
    },
  };
}

export { loadConfigFile, parseConfig, ConfigError, type RelayConfig, type RelayConfigInput } from './config.js';
export { openDatabase } from './store/db.js';
export { StartupError } from './startup.js';
export { createSqliteStore } from './store/sqlite.js';
export { openStore, type OpenedStore } from './store/open.js';
export type { RelayStore, StoredProfile, OutboxRow, StoreCounts, RecentEvent } from './store/types.js';
export type { ForwarderStats, ForwardingPause, ForwardingState, PausedOperation } from './forwarder.js';

// The /v1/admin scope: a Bearer RELAY_ADMIN_TOKEN check (constant time), then the audience routes.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { registerAudiences, type AudienceContext } from '../audiences/index.js';
import type { OutboxStatus, RelayStore } from '../store/types.js';
import type { ForwardingState } from '../forwarder.js';
import { registerConsoleApi, type ConsoleApiContext } from './console-api.js';

const OUTBOX_STATUSES: OutboxStatus[] = ['pending', 'inflight', 'sent', 'failed'];

export interface OutboxContext {
  store: RelayStore;
  onRequeued: () => void;
  forwarding: () => ForwardingState;
}

/** What forwarding is doing, and a way to resend what Klaviyo refused once the cause is fixed. */
function registerOutboxRoutes(scope: FastifyInstance, { store, onRequeued, forwarding }: OutboxContext): void {
  scope.get<{ Querystring: { status?: string; limit?: string } }>('/outbox', async (req, reply) => {
    const status = req.query.status as OutboxStatus | undefined;
    if (status && !OUTBOX_STATUSES.includes(status)) return reply.code(400).send({ error: `status must be one of ${OUTBOX_STATUSES.join(', ')}` });
    const limit = Math.min(1000, Math.max(1, Number(req.query.limit) || 100));
    return { forwarding: forwarding(), counts: (await store.counts()).outbox, items: await store.listOutbox({ status: status ?? 'failed', limit }) };
  });
  scope.post('/outbox/retry-failed', async () => {
    const requeued = await store.requeueFailed();
    if (requeued) onRequeued();
    return { requeued };
  });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Comparing fixed-length digests keeps the check constant-time whatever the token lengths. */
export function tokenMatches(presented: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(presented), expected);
}

export async function registerAdminRoutes(
  app: FastifyInstance,
  adminToken: string | undefined,
  ctx: AudienceContext,
  outbox: OutboxContext,
  consoleApi: Omit<ConsoleApiContext, 'audiences' | 'store'>,
): Promise<{ close(): Promise<void> }> {
  let audiences: ReturnType<typeof registerAudiences> | undefined;
  const expected = adminToken ? digest(adminToken) : undefined;

  await app.register(
    async (scope) => {
      scope.addHook('onRequest', async (req, reply) => {
        if (!expected) {
          return reply.code(401).send({ error: 'admin API disabled: RELAY_ADMIN_TOKEN is unset on the server' });
        }
        const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
        if (!match || !tokenMatches(match[1]!.trim(), expected)) {
          return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong admin token: send Authorization: Bearer <RELAY_ADMIN_TOKEN>' });
        }
      });
      // Hooks run only for matched routes: this catch-all makes an unknown admin path answer 401 before 404.
      scope.route({
        method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
        url: '/*',
        handler: async (req, reply) => reply.code(404).send({ error: `no admin route ${req.method} ${req.url.split('?')[0]}` }),
      });
      registerOutboxRoutes(scope, outbox);
      const registered = (audiences = registerAudiences(scope, ctx));
      registerConsoleApi(scope, { ...consoleApi, store: outbox.store, audiences: registered.definitions });
    },
    { prefix: '/v1/admin' },
  );
  return { close: async () => audiences?.close() };
}

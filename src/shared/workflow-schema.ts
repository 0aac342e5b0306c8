// The zod twin of workflow.ts, for the server config and the tests. Never import it from src/browser/:
// zod would multiply the snippet's size. test/shared/workflow.test.ts runs both on the same cases.
import { z } from 'zod';
import { toggleToRoute } from './workflow.js';
import type { Route } from './wire.js';

export const routeSchema = z.enum(['client', 'server', 'off']);

const toggleSchema = z
  .union([routeSchema, z.strictObject({ client: z.boolean(), server: z.boolean() })], {
    error: 'unknown mode; use "client", "server", "off" or {client, server}',
  })
  .refine((t) => typeof t === 'string' || !(t.client && t.server), {
    error: 'enabled both client and server side; it would be sent twice',
  });

export const workflowSchema = z
  .strictObject({
    default: routeSchema.optional(),
    events: z.record(z.string(), toggleSchema).optional(),
  })
  .transform((wf) => ({
    ...(wf.default ? { default: wf.default } : {}),
    events: Object.fromEntries(Object.entries(wf.events ?? {}).map(([n, t]) => [n, toggleToRoute(n, t) as Route])),
  }));

export type WorkflowConfig = z.input<typeof workflowSchema>;

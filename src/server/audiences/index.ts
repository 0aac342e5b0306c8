// Entry point of the audience-sync module, called by createServer. The audience-sync work fills this in:
// admin routes under /v1/admin/audiences and the refreshInterval scheduler.
import type { FastifyInstance } from 'fastify';
import type { Db } from '../store/db.js';
import type { KlaviyoClient } from '../klaviyo-client.js';
import type { AudienceDefinition } from './definition.js';

export interface AudienceContext {
  db: Db;
  /** Undefined when KLAVIYO_PRIVATE_KEY is not set: syncs then fail with a clear error. */
  klaviyo?: KlaviyoClient;
  /** Definitions from the config file; the admin API may add or replace some. */
  definitions: AudienceDefinition[];
  /** Directory of the config file: file sources resolve against it. */
  configDir: string;
  defaultPhoneRegion?: string;
  log: (message: string, fields?: Record<string, unknown>) => void;
}

/** Register the admin audience routes on `app` (already behind the admin-token check) and start the scheduler. */
export function registerAudiences(_app: FastifyInstance, _ctx: AudienceContext): { close(): Promise<void> } {
  return { close: async () => {} };
}

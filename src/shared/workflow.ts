// Event-workflow toggles (SPEC §2). Plain code on purpose: the snippet cannot afford zod.
// `workflow-schema.ts` holds the zod twin for the server; test/shared/workflow.test.ts runs both on the same cases.
import type { Route } from './wire.js';

export type Toggle = Route | { client: boolean; server: boolean };

export interface WorkflowInput {
  default?: Route;
  events?: Record<string, Toggle>;
}

/** A validated config: every toggle reduced to one route. */
export interface Workflow {
  default?: Route;
  events: Record<string, Route>;
}

export type WorkflowResult = { ok: true; workflow: Workflow } | { ok: false; error: string };

const isRoute = (v: unknown): v is Route => v === 'client' || v === 'server' || v === 'off';

/** Reduce one toggle to a route, or explain why it is invalid. */
export function toggleToRoute(name: string, toggle: unknown): Route | string {
  if (isRoute(toggle)) return toggle;
  if (toggle && typeof toggle === 'object') {
    const { client, server } = toggle as Record<string, unknown>;
    if (typeof client === 'boolean' && typeof server === 'boolean' && Object.keys(toggle).length === 2) {
      if (client && server) return `event "${name}" is enabled both client and server side; it would be sent twice`;
      return client ? 'client' : server ? 'server' : 'off';
    }
  }
  return `event "${name}" has an unknown mode ${JSON.stringify(toggle)}; use "client", "server", "off" or {client, server}`;
}

/** Validate a whole workflow config. Any invalid entry rejects it whole. */
export function parseWorkflow(input: unknown): WorkflowResult {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return { ok: false, error: 'workflow must be an object' };
  const { default: def, events, ...rest } = input as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra) return { ok: false, error: `workflow has an unknown field "${extra}"` };
  if (def !== undefined && !isRoute(def)) return { ok: false, error: `workflow default ${JSON.stringify(def)} is not "client", "server" or "off"` };
  if (events !== undefined && (!events || typeof events !== 'object' || Array.isArray(events))) return { ok: false, error: 'workflow.events must be an object' };
  const out: Record<string, Route> = {};
  for (const name in events as object) {
    const r = toggleToRoute(name, (events as Record<string, unknown>)[name]);
    if (!isRoute(r)) return { ok: false, error: r };
    out[name] = r;
  }
  return { ok: true, workflow: def ? { default: def, events: out } : { events: out } };
}

/** The route of one event: its own toggle, else the default, else `client` without an endpoint and `server` with one. */
export function routeFor(workflow: Workflow, name: string, hasEndpoint: boolean): Route {
  return workflow.events[name] || workflow.default || (hasEndpoint ? 'server' : 'client');
}

// Event-workflow toggles: each event name maps to exactly one route (client, server or off). Plain code on purpose: the snippet cannot afford zod.
// `workflow-schema.ts` holds the zod twin for the server; test/shared/workflow.test.ts runs both on the same cases.
import type { Route } from './wire.js';

/** The toggle name that routes identify calls (they carry no event name). */
export const IDENTIFY_EVENT = '$identify';

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

const isRoute = (v: unknown): v is Route => v === 'client' || v === 'server' || v === 'off';
const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Reduce one toggle to a route, or explain why it is invalid. */
export function toggleToRoute(name: string, toggle: unknown): Route | string {
  if (isRoute(toggle)) return toggle;
  if (isObject(toggle)) {
    const { client, server } = toggle;
    if (typeof client === 'boolean' && typeof server === 'boolean' && Object.keys(toggle).length === 2)
      return client && server ? `event "${name}" is enabled both ways; it would be sent twice` : client ? 'client' : server ? 'server' : 'off';
  }
  return `event "${name}" has an unknown mode ${JSON.stringify(toggle)}; use "client", "server", "off" or {client, server}`;
}

/**
 * Validate a whole workflow config: the validated workflow, or (a string) the reason it is rejected. Any invalid
 * entry rejects it whole.
 */
export function parseWorkflow(input: unknown): Workflow | string {
  const { default: def, events = {}, ...rest } = isObject(input) ? input : { events: 0 }; // not an object: fails as events do
  if (!isObject(events)) return 'workflow and workflow.events must be objects';
  for (const extra in rest) return `workflow has an unknown field "${extra}"`;
  if (def !== undefined && !isRoute(def)) return `workflow default ${JSON.stringify(def)} is not "client", "server" or "off"`;
  const out: Record<string, Route> = {};
  for (const name in events) {
    const r = toggleToRoute(name, events[name]);
    if (!isRoute(r)) return r;
    out[name] = r;
  }
  return { default: def, events: out };
}

/** The route of one event: its own toggle, else the default, else `client` without an endpoint and `server` with one. */
export function routeFor(workflow: Workflow, name: string, hasEndpoint: boolean): Route {
  return workflow.events[name] || workflow.default || (hasEndpoint ? 'server' : 'client');
}

// The workflow toggles the server serves at GET /v1/config: the config file's, overridden event by event by the
// ones saved from the operator console (kept in the store, so they survive restarts and are shared by every
// instance on one database).
import { createHash } from 'node:crypto';
import { MAX_EVENT_NAME } from '../shared/wire-schema.js';
import { workflowSchema } from '../shared/workflow-schema.js';
import type { Workflow } from '../shared/workflow.js';
import type { RelayStore } from './store/types.js';

export interface ServedWorkflow {
  /** What browsers get: the config file's toggles with the saved ones on top. */
  workflow: Workflow;
  /** The `GET /v1/config` body and its ETag (a hash of the body, so any change gives a new one). */
  body: string;
  etag: string;
  /** The toggles saved from the console, or null when only the config file speaks. */
  saved: { workflow: Workflow; updatedAt: number } | null;
}

/** One problem with a workflow being saved; `event` names the event when the problem is that event's toggle. */
export interface WorkflowIssue {
  field: string;
  event?: string;
  message: string;
}

export type SaveResult = { ok: true; served: ServedWorkflow } | { ok: false; issues: WorkflowIssue[] };

export interface WorkflowSettingsOptions {
  store: RelayStore;
  fromConfig: Workflow;
  /**
   * How long a read of the saved toggles is reused. A save in this process is served at once; another instance's
   * save (shared database) is picked up within this time.
   */
  reloadAfterMs?: number;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** Validate a workflow as the config loader does: an event set both ways or to an unknown mode is refused, named. */
export function validateWorkflow(input: unknown): { ok: true; workflow: Workflow } | { ok: false; issues: WorkflowIssue[] } {
  const parsed = workflowSchema.safeParse(input);
  const issues: WorkflowIssue[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const [top, event] = issue.path;
      if (top === 'events' && typeof event === 'string') issues.push({ field: `events.${event}`, event, message: issue.message });
      else issues.push({ field: issue.path.map(String).join('.') || '(root)', message: issue.message });
    }
    return { ok: false, issues };
  }
  for (const name of Object.keys(parsed.data.events)) {
    if (!name.trim()) issues.push({ field: 'events', event: name, message: 'an event name must not be empty' });
    else if (name.length > MAX_EVENT_NAME) issues.push({ field: `events.${name}`, event: name, message: `event names are at most ${MAX_EVENT_NAME} characters (Klaviyo's metric name limit)` });
  }
  return issues.length ? { ok: false, issues } : { ok: true, workflow: parsed.data as Workflow };
}

export function mergeWorkflows(fromConfig: Workflow, saved: Workflow | undefined): Workflow {
  if (!saved) return fromConfig;
  const byDefault = saved.default ?? fromConfig.default;
  return { ...(byDefault ? { default: byDefault } : {}), events: { ...fromConfig.events, ...saved.events } };
}

/**
 * Only the toggles that differ from the config file are kept: an event the console left as the file has it keeps
 * following the file, so a later edit of the file still reaches it.
 */
function differences(fromConfig: Workflow, wanted: Workflow): Workflow {
  const events = Object.fromEntries(Object.entries(wanted.events).filter(([name, route]) => fromConfig.events[name] !== route));
  return wanted.default && wanted.default !== fromConfig.default ? { default: wanted.default, events } : { events };
}

function serve(fromConfig: Workflow, saved: ServedWorkflow['saved']): ServedWorkflow {
  const workflow = mergeWorkflows(fromConfig, saved?.workflow);
  const body = JSON.stringify({ workflow });
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { workflow, body, etag, saved };
}

export function createWorkflowSettings({ store, fromConfig, reloadAfterMs = 5_000, log }: WorkflowSettingsOptions) {
  let cached: { served: ServedWorkflow; readAt: number } | undefined;
  /** Bumped by every save, so a read that started before it cannot put the older toggles back in the cache. */
  let generation = 0;

  async function read(): Promise<ServedWorkflow> {
    const row = await store.loadWorkflowOverride();
    let saved: ServedWorkflow['saved'] = null;
    if (row) {
      const valid = validateWorkflow(row.workflow);
      // A row this version cannot read (hand-edited, or written by a newer version) must not take the config down.
      if (valid.ok) saved = { workflow: valid.workflow, updatedAt: row.updatedAt };
      else log?.('ignoring the saved workflow toggles: they are invalid', { issues: valid.issues });
    }
    return serve(fromConfig, saved);
  }

  /** What this process just wrote, served at once; a read that started before it cannot put older toggles back. */
  function remember(served: ServedWorkflow): ServedWorkflow {
    generation++;
    cached = { served, readAt: Date.now() };
    return served;
  }

  /** Forget the saved toggles: the config file's workflow is served from the next request on. */
  async function reset(): Promise<ServedWorkflow> {
    await store.clearWorkflowOverride();
    return remember(serve(fromConfig, null));
  }

  return {
    fromConfig,
    async current(now = Date.now()): Promise<ServedWorkflow> {
      if (cached && now - cached.readAt < reloadAfterMs) return cached.served;
      const started = generation;
      let served: ServedWorkflow;
      try {
        served = await read();
      } catch (err) {
        // The store is down: the last toggles read are still the operator's latest known choice.
        if (cached) return cached.served;
        throw err;
      }
      if (started !== generation) return cached!.served;
      cached = { served, readAt: now };
      return served;
    },
    /** Validate and store the toggles; they are served from the next request on. */
    async save(input: unknown): Promise<SaveResult> {
      const valid = validateWorkflow(input);
      if (!valid.ok) return valid;
      const override = differences(fromConfig, valid.workflow);
      // Toggles all equal to the file's leave nothing to keep: the console then has nothing to reset.
      if (!override.default && !Object.keys(override.events).length) return { ok: true, served: await reset() };
      await store.saveWorkflowOverride(override);
      return { ok: true, served: remember(serve(fromConfig, { workflow: override, updatedAt: Date.now() })) };
    },
    reset,
  };
}

export type WorkflowSettings = ReturnType<typeof createWorkflowSettings>;

// The admin JSON API (CORS `*`, no auth: a local sandbox) and the QA page at `/`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorItem } from './errors.js';
import type { FaultRule, FaultRules } from './faults.js';
import { renderQaPage } from './qa-page.js';
import type { RequestLog } from './request-log.js';
import { confirmOptIn } from './state/consent.js';
import type { EmulatorState } from './state/index.js';
import { send } from './server.js';

export interface AdminDeps {
  state: EmulatorState;
  log: RequestLog;
  faults: FaultRules;
  reset: () => void;
  saveSnapshot?: () => void;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'content-type',
};

/** Everything the QA page shows, as JSON: metrics with counts and latest events, profiles, lists, jobs. */
export function stateView(state: EmulatorState, latest = 5) {
  const profile = (id: string) => state.profiles.get(id);
  const memberView = <T extends object>(id: string, extra: T) => {
    const p = profile(id);
    return {
      id,
      email: p?.email,
      phone_number: p?.phone_number,
      external_id: p?.external_id,
      consent: { email: p?.subscriptions.email.marketing.consent, sms: p?.subscriptions.sms.marketing.consent },
      globalUnsubscribe: p?.globalUnsubscribe,
      ...extra,
    };
  };
  return {
    metrics: [...state.events.metrics.values()].map((m) => ({ ...m, latest: state.events.latest(m.name, latest) })),
    profiles: state.profiles.all().map((p) => state.profileView(p)),
    lists: state.lists.all().map((l) => ({
      ...state.listView(l),
      members: [...l.members].map(([id, joined]) => memberView(id, { joined_group_at: joined })),
      pending: [...l.pending].map(([id, requested]) => memberView(id, { requested_at: requested })),
      unsubscribed: [...l.unsubscribed].map(([id, at]) => memberView(id, { unsubscribed_at: at })),
    })),
    jobs: state.jobs.all(),
  };
}

function parse(text: string): any {
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return undefined;
  }
}

export function createAdminRoutes(deps: AdminDeps) {
  const { state, log, faults } = deps;
  const bad = (res: ServerResponse, detail: string, status = 400) => send(res, status, { errors: [errorItem(status, 'invalid', detail)] }, CORS, 'application/json');
  const ok = (res: ServerResponse, body: unknown, status = 200) => send(res, status, body, CORS, 'application/json');

  return async (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, readBody: () => Promise<string>): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const route = path.length > 1 ? path.replace(/\/$/, '') : path;
    if (route === '/' && method === 'GET') {
      const html = renderQaPage(stateView(state, 10), log.rejected(50), faults.list());
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html) });
      res.end(html);
      return true;
    }
    if (!route.startsWith('/__admin/')) return false;
    if (method === 'OPTIONS') {
      res.writeHead(204, CORS);
      res.end();
      return true;
    }
    const body = method === 'POST' || method === 'DELETE' ? parse(await readBody()) : undefined;
    if (body === undefined && (method === 'POST' || method === 'DELETE')) {
      bad(res, 'Malformed JSON body.');
      return true;
    }
    switch (`${method} ${route}`) {
      case 'GET /__admin/state':
        ok(res, stateView(state, Number(query.get('latest') ?? 5)));
        break;
      case 'GET /__admin/requests': {
        const rejected = query.get('rejected') === '1' || query.get('rejected') === 'true';
        const limit = Number(query.get('limit') ?? 200);
        const rows = rejected ? log.rejected(limit).reverse() : log.entries.slice(-limit);
        ok(res, { requests: rows });
        break;
      }
      case 'GET /__admin/events':
        ok(res, { events: state.events.all({ metric: query.get('metric') ?? undefined, profileId: query.get('profile') ?? undefined }) });
        break;
      case 'GET /__admin/faults':
        ok(res, { faults: faults.list() });
        break;
      case 'POST /__admin/faults':
        try {
          faults.add(body as FaultRule);
          ok(res, { faults: faults.list() }, 201);
        } catch (err) {
          bad(res, (err as Error).message);
        }
        break;
      case 'DELETE /__admin/faults':
        faults.clear();
        ok(res, { faults: [] });
        break;
      case 'POST /__admin/reset':
        deps.reset();
        ok(res, { reset: true });
        break;
      case 'POST /__admin/jobs/flush':
        state.jobs.flush();
        ok(res, { jobs: state.jobs.all() });
        break;
      case 'POST /__admin/confirm-opt-in': {
        // The person clicked the double opt-in link.
        const profile = state.profiles.get(body.profileId ?? '');
        const list = state.lists.get(body.listId ?? '');
        if (!profile || !list) return bad(res, 'Unknown profileId or listId.', 404), true;
        if (!confirmOptIn({ profiles: state.profiles, lists: state.lists }, profile, list)) return bad(res, 'No pending opt-in for that profile on that list.', 409), true;
        ok(res, { confirmed: true, profile: state.profileView(profile) });
        break;
      }
      case 'POST /__admin/snapshot':
        if (!deps.saveSnapshot) return bad(res, 'No snapshot file configured (--snapshot FILE).', 409), true;
        deps.saveSnapshot();
        ok(res, { saved: true });
        break;
      default:
        bad(res, `Unknown admin route ${method} ${route}.`, 404);
    }
    return true;
  };
}

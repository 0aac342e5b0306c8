// Reading back what was tracked: GET /api/metrics, /api/metrics/{id}, /api/events, /api/events/{id}.
import { notFound } from '../errors.js';
import { matches } from '../filter.js';
import { defaultPageSize } from '../query.js';
import type { Metric, StoredEvent } from '../state/events.js';
import { paginate, type Handler, type HandlerContext, type HandlerRequest } from './context.js';
import { profileResource } from './resources.js';

/** Metrics created by the Track APIs belong to Klaviyo's "API" integration. */
const API_INTEGRATION = { object: 'integration', id: '7FtS4J', key: 'api', name: 'API', category: 'API' };

/** Klaviyo's page size for GET /api/metrics (it takes no page[size]). */
const METRICS_PER_PAGE = 200;

function metricResource(m: Metric, baseUrl: string) {
  return {
    type: 'metric',
    id: m.id,
    attributes: { name: m.name, created: m.created, updated: m.created, integration: API_INTEGRATION },
    relationships: { 'flow-triggers': { links: { self: `${baseUrl}/api/metrics/${m.id}/relationships/flow-triggers`, related: `${baseUrl}/api/metrics/${m.id}/flow-triggers` } } },
    links: { self: `${baseUrl}/api/metrics/${m.id}` },
  };
}

/** Klaviyo reports `value` and `unique_id` inside event_properties as `$value` and `$event_id`. */
function eventResource(e: StoredEvent, metricId: string, baseUrl: string) {
  const props: Record<string, unknown> = { ...e.properties };
  if (e.value !== undefined) props.$value = e.value;
  if (e.value_currency !== undefined) props.$value_currency = e.value_currency;
  if (e.unique_id !== undefined) props.$event_id = e.unique_id;
  return {
    type: 'event',
    id: e.id,
    attributes: { timestamp: Math.floor(Date.parse(e.time) / 1000), event_properties: props, datetime: e.time.replace(/\.\d{3}Z$|Z$/, '+00:00'), uuid: e.id },
    relationships: {
      profile: { data: { type: 'profile', id: e.profileId }, links: { self: `${baseUrl}/api/events/${e.id}/relationships/profile`, related: `${baseUrl}/api/events/${e.id}/profile` } },
      metric: { data: { type: 'metric', id: metricId }, links: { self: `${baseUrl}/api/events/${e.id}/relationships/metric`, related: `${baseUrl}/api/events/${e.id}/metric` } },
      attributions: { links: { self: `${baseUrl}/api/events/${e.id}/relationships/attributions`, related: `${baseUrl}/api/events/${e.id}/attributions` } },
    },
    links: { self: `${baseUrl}/api/events/${e.id}` },
  };
}

export function metricHandlers({ state, spec }: HandlerContext): Record<string, Handler> {
  const metricById = (id: string) => [...state.events.metrics.values()].find((m) => m.id === id);
  const metricIdOf = (name: string) => state.events.metrics.get(name)?.id ?? '';

  /** `include=metric,profile`: the related resources, once each. */
  const included = (events: StoredEvent[], req: HandlerRequest) => {
    const wanted = (req.query.raw.get('include') ?? '').split(',');
    const out: unknown[] = [];
    if (wanted.includes('metric')) {
      for (const name of new Set(events.map((e) => e.metric))) {
        const m = state.events.metrics.get(name);
        if (m) out.push(metricResource(m, req.baseUrl));
      }
    }
    if (wanted.includes('profile')) {
      for (const id of new Set(events.map((e) => e.profileId))) {
        const p = state.profiles.get(id);
        if (p) out.push(profileResource(p, req.baseUrl));
      }
    }
    return wanted.some((w) => w === 'metric' || w === 'profile') ? { included: out } : {};
  };

  const eventField = (e: StoredEvent, field: string): unknown => {
    if (field === 'metric_id') return metricIdOf(e.metric);
    if (field === 'profile_id') return e.profileId;
    if (field === 'datetime') return e.time;
    if (field === 'timestamp') return Math.floor(Date.parse(e.time) / 1000);
    return undefined;
  };

  return {
    get_metrics: (req) => {
      const metrics = [...state.events.metrics.values()].filter((m) => matches(req.query.filter, (f) => (f === 'integration.name' ? API_INTEGRATION.name : f === 'integration.category' ? API_INTEGRATION.category : undefined)));
      const { page, links } = paginate(metrics, req, METRICS_PER_PAGE);
      return { status: 200, body: { data: page.map((m) => metricResource(m, req.baseUrl)), links } };
    },

    get_metric: (req) => {
      const m = metricById(req.params.id);
      if (!m) throw notFound(`A metric with id '${req.params.id}' does not exist.`);
      return { status: 200, body: { data: metricResource(m, req.baseUrl), links: { self: `${req.baseUrl}/api/metrics/${m.id}` } } };
    },

    get_events: (req) => {
      let events = state.events.all().filter((e) => matches(req.query.filter, (f) => eventField(e, f)));
      const sort = req.query.sort ?? 'datetime';
      const dir = sort.startsWith('-') ? -1 : 1;
      events = events.sort((a, b) => (Date.parse(a.time) - Date.parse(b.time)) * dir);
      const { page, links } = paginate(events, req, req.query.pageSize ?? defaultPageSize(spec, req.operation));
      return { status: 200, body: { data: page.map((e) => eventResource(e, metricIdOf(e.metric), req.baseUrl)), links, ...included(page, req) } };
    },

    get_event: (req) => {
      const e = state.events.all().find((x) => x.id === req.params.id);
      if (!e) throw notFound(`An event with id '${req.params.id}' does not exist.`);
      return { status: 200, body: { data: eventResource(e, metricIdOf(e.metric), req.baseUrl), links: { self: `${req.baseUrl}/api/events/${e.id}` }, ...included([e], req) } };
    },
  };
}

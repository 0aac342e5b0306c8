// Event intake: /client/events, /client/event-bulk-create, /api/events, /api/event-bulk-create-jobs.
import { invalid } from '../errors.js';
import { propertiesLimitError, timeLimitError } from '../../shared/ingestion-limits.js';
import type { NewEvent } from '../state/events.js';
import type { EmulatorState } from '../state/index.js';
import type { Identity } from '../state/profiles.js';
import { accepted, isoTime, limit, requireIdentity, type Handler, type HandlerContext } from './context.js';

/** Klaviyo's published ceiling for one bulk request. */
export const MAX_EVENTS_PER_BULK = 1000;

interface PreparedEvent {
  identity: Identity;
  profile: { attributes?: Record<string, any>; meta?: Record<string, any> };
  event: Omit<NewEvent, 'profileId'>;
}

/**
 * Checks one event's semantics (the schema is already checked) and returns what to store. Klaviyo's ingestion
 * limits (property count, field size, array length, nesting, time range) refuse the request with a 400.
 */
function prepare(state: EmulatorState, now: number, attrs: any, profileData: any, pointer: string, profilePointer: string, source: 'client' | 'server'): PreparedEvent {
  const identity = requireIdentity(profileData?.attributes, profileData?.id, `${profilePointer}/attributes`, state);
  const tooBig = propertiesLimitError(attrs.properties);
  if (tooBig) throw invalid(`Event properties exceed Klaviyo's ingestion limits: ${tooBig}.`, { pointer: `${pointer}/properties` });
  const { meta, ...profileAttrs } = profileData?.attributes ?? {};
  const event: PreparedEvent['event'] = {
    metric: attrs.metric.data.attributes.name,
    properties: attrs.properties ?? {},
    time: isoTime(attrs.time, `${pointer}/time`, new Date(now)),
    source,
  };
  const badTime = attrs.time === undefined || attrs.time === null ? undefined : timeLimitError(event.time, now);
  if (badTime) throw invalid(`Event time '${attrs.time}' is outside Klaviyo's ingestion limits: ${badTime}.`, { pointer: `${pointer}/time` });
  if (typeof attrs.value === 'number') event.value = attrs.value;
  if (attrs.value_currency) event.value_currency = attrs.value_currency;
  if (attrs.unique_id) event.unique_id = attrs.unique_id;
  return { identity, profile: { attributes: profileAttrs, meta: meta ?? profileData?.meta }, event };
}

export function eventHandlers({ state, clock }: HandlerContext): Record<string, Handler> {
  const store = (items: PreparedEvent[]) => {
    for (const item of items) {
      const { profile } = state.profiles.upsert(item.identity, item.profile, item.event.source);
      state.events.add({ ...item.event, profileId: profile.id });
    }
  };

  /** One event-bulk-create entry (one profile, many events) → prepared events, or a 400 naming the item. */
  const prepareEntry = (entry: any, pointer: string, source: 'client' | 'server') =>
    entry.attributes.events.data.map((ev: any, i: number) =>
      prepare(state, clock(), ev.attributes, entry.attributes.profile.data, `${pointer}/attributes/events/data/${i}/attributes`, `${pointer}/attributes/profile/data`, source),
    );

  const single = (source: 'client' | 'server'): Handler => (req) => {
    const a = req.body.data.attributes;
    store([prepare(state, clock(), a, a.profile.data, '/data/attributes', '/data/attributes/profile/data', source)]);
    return accepted();
  };

  return {
    create_client_event: single('client'),
    create_event: single('server'),

    bulk_create_client_events: (req) => {
      const events = req.body.data.attributes.events.data;
      limit(events, MAX_EVENTS_PER_BULK, '/data/attributes/events/data', 'events');
      store(prepareEntry(req.body.data, '/data', 'client'));
      return accepted();
    },

    bulk_create_events: (req) => {
      const entries = req.body.data.attributes['events-bulk-create'].data;
      const pointer = '/data/attributes/events-bulk-create/data';
      const total = entries.reduce((n: number, e: any) => n + e.attributes.events.data.length, 0);
      if (total > MAX_EVENTS_PER_BULK) limit(new Array(total), MAX_EVENTS_PER_BULK, pointer, 'events');
      const prepared: PreparedEvent[] = entries.flatMap((e: any, i: number) => prepareEntry(e, `${pointer}/${i}`, 'server'));
      // Klaviyo answers 202 without a job id; the events appear once the job has run.
      state.jobs.submit('event-bulk-create-job', prepared.length, [], () => {
        store(prepared);
        return { completed: prepared.length };
      });
      return accepted();
    },
  };
}

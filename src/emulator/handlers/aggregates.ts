// POST /api/metric-aggregates (query_metric_aggregates): a metric's events counted per day or hour over a datetime
// range, as https://developers.klaviyo.com/en/docs/using-the-query-metric-aggregates-endpoint describes. The
// sandbox models the `count` measurement without `by` dimensions, in UTC; any other part of the query answers 501
// naming it, so a caller never mistakes made-up numbers for Klaviyo's.
import { ApiError, invalid } from '../errors.js';
import { parseConditions, type Condition } from '../filter.js';
import { shortId } from '../ids.js';
import type { Handler, HandlerContext } from './context.js';

const ATTRS = '/data/attributes';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const INTERVAL_MS: Record<string, number> = { hour: HOUR_MS, day: DAY_MS };
/** A year of hours: beyond it the sandbox would build arrays no caller of this project asks for. */
const MAX_BUCKETS = 366 * 24;

const notModeled = (what: string, pointer: string) =>
  new ApiError(501, 'not_implemented', `The sandbox does not model ${what} in query_metric_aggregates; Klaviyo may answer it, the sandbox will not make numbers up.`, { pointer });

/** Klaviyo writes the bucket starts with an explicit offset, e.g. `2022-12-30T00:00:00+00:00`. */
const klaviyoDate = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');

/** The `[from, to)` range from the filter list: exactly one greater-or-equal and one less-than on datetime. */
function datetimeRange(filters: string[]): { from: number; to: number } {
  let from: number | undefined;
  let to: number | undefined;
  filters.forEach((text, i) => {
    const pointer = `${ATTRS}/filter/${i}`;
    let conditions: Condition[];
    try {
      conditions = parseConditions(text);
    } catch (err) {
      throw invalid((err as Error).message, { pointer });
    }
    for (const c of conditions) {
      if (c.field !== 'datetime') throw notModeled(`filters on '${c.field}'`, pointer);
      if (!(c.value instanceof Date)) throw invalid(`'${String(c.value)}' is not a valid datetime: use ISO 8601, e.g. 2022-12-01T00:00:00.`, { pointer });
      if (c.operator === 'greater-or-equal' && from === undefined) from = c.value.getTime();
      else if (c.operator === 'less-than' && to === undefined) to = c.value.getTime();
      else throw notModeled(`'${c.operator}(datetime,…)' beside one greater-or-equal and one less-than`, pointer);
    }
  });
  if (from === undefined || to === undefined) {
    throw invalid('The filter must include a time range: greater-or-equal(datetime,…) and less-than(datetime,…).', { pointer: `${ATTRS}/filter` });
  }
  if (from >= to) throw invalid('The time range is empty: greater-or-equal(datetime,…) must come before less-than(datetime,…).', { pointer: `${ATTRS}/filter` });
  return { from, to };
}

export function aggregateHandlers({ state }: HandlerContext): Record<string, Handler> {
  return {
    query_metric_aggregates: (req) => {
      const attrs = req.body.data.attributes;
      const metric = [...state.events.metrics.values()].find((m) => m.id === attrs.metric_id);
      if (!metric) throw invalid(`Metric '${attrs.metric_id}' does not exist.`, { pointer: `${ATTRS}/metric_id` });
      const measurements: string[] = attrs.measurements;
      if (!measurements.length) throw invalid('At least one measurement is required, e.g. ["count"].', { pointer: `${ATTRS}/measurements` });
      for (const m of measurements) if (m !== 'count') throw notModeled(`the '${m}' measurement`, `${ATTRS}/measurements`);
      for (const field of ['by', 'sort', 'return_fields', 'page_cursor'] as const) {
        const value = attrs[field];
        if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0)) throw notModeled(`'${field}'`, `${ATTRS}/${field}`);
      }
      const timezone = attrs.timezone ?? 'UTC';
      if (timezone !== 'UTC') {
        const known = Intl.supportedValuesOf('timeZone').includes(timezone);
        if (!known) throw invalid(`'${timezone}' is not a valid timezone: use an IANA name such as America/New_York (case-sensitive).`, { pointer: `${ATTRS}/timezone` });
        throw notModeled(`timezone '${timezone}' (only UTC)`, `${ATTRS}/timezone`);
      }
      const interval = attrs.interval ?? 'day';
      const step = INTERVAL_MS[interval];
      if (!step) throw notModeled(`interval '${interval}' (only day and hour)`, `${ATTRS}/interval`);
      if (attrs.page_size !== undefined && attrs.page_size !== null && attrs.page_size < 1) {
        throw invalid('page_size must be a positive integer.', { pointer: `${ATTRS}/page_size` });
      }

      const { from, to } = datetimeRange(attrs.filter);
      // Buckets start on the interval's boundary in the query's timezone (UTC here), the first one holding `from`.
      const first = Math.floor(from / step) * step;
      const buckets = Math.ceil((to - first) / step);
      if (buckets > MAX_BUCKETS) throw notModeled(`more than ${MAX_BUCKETS} ${interval} buckets`, `${ATTRS}/filter`);
      const counts = new Array<number>(buckets).fill(0);
      for (const e of state.events.all({ metric: metric.name })) {
        const t = Date.parse(e.time);
        if (t >= from && t < to) counts[Math.floor((t - first) / step)]!++;
      }
      const self = `${req.baseUrl}/api/metric-aggregates`;
      return {
        status: 200,
        body: {
          data: {
            type: 'metric-aggregate',
            // Klaviyo's id is ephemeral: a new one per query.
            id: shortId(),
            attributes: {
              dates: counts.map((_, i) => klaviyoDate(first + i * step)),
              data: [{ dimensions: [], measurements: { count: counts } }],
            },
            links: { self },
          },
          links: { self },
        },
      };
    },
  };
}

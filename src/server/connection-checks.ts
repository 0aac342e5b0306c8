// The connection checks shared by the operator console (Connection section) and `klaviyo-relay doctor`: does
// the private key work and for which account, is the configured public key that account's, do the audiences'
// lists exist, and — for Verify events — which of the store's events Klaviyo has as metrics and how many events
// each side has in a window. Each result names what to fix; none ever carries a secret (Klaviyo's error details
// never echo the key).
import type { AudienceDefinition } from './audiences/definition.js';
import { listByNameFilter } from './audiences/payloads.js';
import { KlaviyoError, type KlaviyoClient } from './klaviyo-client.js';
import { IDENTIFY_EVENT } from '../shared/workflow.js';
import type { Route } from '../shared/wire.js';

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skipped';

export interface CheckResult {
  /** Short name of what was checked, e.g. "private key" or `list of audience "vip"`. */
  check: string;
  status: CheckStatus;
  /** What was found, or what to fix. */
  detail: string;
}

export interface KlaviyoAccount {
  id: string;
  name: string;
  publicApiKey: string;
  testAccount: boolean;
}

const KEY_SCOPES = 'read access to Accounts, Lists, Metrics and Profiles, and write access to Events, Lists, Profiles and Subscriptions';

/** Console checks answer quickly rather than sit through the client's full retry schedule. */
const QUICK = { maxAttempts: 2 };

const unreachable = (klaviyo: KlaviyoClient, err: KlaviyoError) =>
  `cannot reach Klaviyo at ${klaviyo.baseUrl} (${err.detail}): check the network and KLAVIYO_BASE_URL`;

/** `GET /api/accounts`: the private key works, and names the account it belongs to. */
export async function checkPrivateKey(klaviyo: KlaviyoClient | undefined): Promise<{ result: CheckResult; account?: KlaviyoAccount }> {
  const check = 'private key';
  if (!klaviyo) return { result: { check, status: 'fail', detail: 'KLAVIYO_PRIVATE_KEY is unset: set it in the environment of the companion server' } };
  try {
    const res = await klaviyo.get('/api/accounts', undefined, QUICK);
    const data = res?.data?.[0];
    if (!data) return { result: { check, status: 'fail', detail: 'Klaviyo answered GET /api/accounts with no account' } };
    const attrs = data.attributes ?? {};
    const account: KlaviyoAccount = {
      id: String(data.id),
      name: attrs.contact_information?.organization_name || attrs.contact_information?.default_sender_name || String(data.id),
      publicApiKey: String(attrs.public_api_key ?? ''),
      testAccount: Boolean(attrs.test_account),
    };
    return { result: { check, status: 'ok', detail: `works for the Klaviyo account “${account.name}” (${account.id})` }, account };
  } catch (err) {
    if (!(err instanceof KlaviyoError)) throw err;
    // Klaviyo answers 401 for a missing or malformed key and 403 for a wrong one or a missing scope.
    const detail =
      err.status === 401 || err.status === 403
        ? `Klaviyo refused KLAVIYO_PRIVATE_KEY (${err.status}: ${err.detail}): set it to a Private API Key of your account with ${KEY_SCOPES}`
      : err.status === 0 ? unreachable(klaviyo, err)
      : `GET /api/accounts failed (${err.message})`;
    return { result: { check, status: 'fail', detail } };
  }
}

/** The configured public key must be the account's, or browsers send client-side events to another account. */
export function checkPublicKey(publicKey: string, account: KlaviyoAccount | undefined): CheckResult {
  const check = 'public key';
  if (!account) return { check, status: 'skipped', detail: 'not checked: the private key check failed' };
  if (publicKey === account.publicApiKey) return { check, status: 'ok', detail: `${publicKey} is the public API key of “${account.name}”` };
  return {
    check,
    status: 'fail',
    detail: `publicKey "${publicKey}" in the config is not the public API key of “${account.name}” (${account.publicApiKey}): set publicKey to "${account.publicApiKey}", or use the private key of the account that owns "${publicKey}"`,
  };
}

export function checkAllowedOrigins(origins: string[]): CheckResult {
  const check = 'allowed origins';
  if (!origins.length) return { check, status: 'warn', detail: 'none: browsers cannot send events to this relay; add your storefront to allowedOrigins (e.g. "https://shop.example")' };
  return { check, status: 'ok', detail: origins.join(', ') };
}

/** `{id}` lists must exist; `{create}` lists are looked up by name (created at the first sync when absent). */
export async function checkAudienceLists(klaviyo: KlaviyoClient | undefined, audiences: AudienceDefinition[], accountOk: boolean): Promise<CheckResult[]> {
  return Promise.all(
    audiences.map(async (a): Promise<CheckResult> => {
      const check = `list of audience "${a.name}"`;
      if (!klaviyo || !accountOk) return { check, status: 'skipped', detail: 'not checked: the private key check failed' };
      const list = a.list;
      try {
        if ('id' in list) {
          const res = await klaviyo.get(`/api/lists/${encodeURIComponent(list.id)}`, undefined, QUICK);
          return { check, status: 'ok', detail: `list ${list.id} “${res?.data?.attributes?.name ?? ''}”` };
        }
        const found = await klaviyo.get('/api/lists', { filter: listByNameFilter(list.create) }, QUICK);
        const match = (found?.data ?? []).find((l: any) => l.attributes?.name === list.create);
        return match
          ? { check, status: 'ok', detail: `list “${list.create}” exists (${match.id})` }
          : { check, status: 'ok', detail: `list “${list.create}” does not exist yet: the first sync creates it` };
      } catch (err) {
        if (!(err instanceof KlaviyoError)) throw err;
        if (err.status === 404 && 'id' in list) {
          return { check, status: 'fail', detail: `list id ${list.id} does not exist in this Klaviyo account: pick an existing list for "${a.name}" or set its list to {"create": "<list name>"}` };
        }
        return { check, status: 'fail', detail: err.status === 0 ? unreachable(klaviyo, err) : `looking the list up failed (${err.message})` };
      }
    }),
  );
}

/** Follows `links.next` of a Klaviyo collection, at most `maxPages` pages. */
export async function fetchAllPages(klaviyo: KlaviyoClient, path: string, query: Record<string, string> = {}, maxPages = 50): Promise<{ data: any[]; truncated: boolean }> {
  const data: any[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const res = await klaviyo.get(path, { ...query, ...(cursor ? { 'page[cursor]': cursor } : {}) }, QUICK);
    data.push(...(res?.data ?? []));
    const next: string | undefined = res?.links?.next;
    cursor = next ? new URL(next).searchParams.get('page[cursor]') ?? undefined : undefined;
    if (!cursor) return { data, truncated: false };
  }
  return { data, truncated: true };
}

export interface MetricRow {
  name: string;
  store: { count: number; lastSeenAt: number } | null;
  klaviyo: { id: string; created: string | null; integration: string | null } | null;
  /** The route browsers get for it (null for a metric only Klaviyo has): Off events never reach Klaviyo. */
  route: Route | null;
  /** The store's events of this name in the window (null for a metric only Klaviyo has). */
  storeInWindow: number | null;
  /** Klaviyo's events of this metric in the window, when it was counted. */
  klaviyoInWindow: number | null;
  /** Why Klaviyo's events were not counted, in words (null when they were, or when only Klaviyo has the metric). */
  notCounted: string | null;
}

/** The events a Verify counts, by event time: `[from, to)` in epoch ms. */
export interface CountWindow {
  from: number;
  to: number;
  days: number;
}

export const DEFAULT_COUNT_DAYS = 7;

/**
 * The last `days` days up to `now`, on whole seconds: Klaviyo keeps event times to the second, so a bound with
 * milliseconds would count an event on one side and not the other. The end is rounded up, so an event sent just
 * before a Verify is in it.
 */
export function countWindow(days: number, now: number): CountWindow {
  const to = Math.ceil(now / 1000) * 1000;
  return { from: to - days * 86_400_000, to, days };
}

/**
 * query_metric_aggregates allows 60 requests a minute per account (3 a second): counting every event name of a
 * big store would hold a Verify for minutes and starve the next one. So a Verify counts at most this many rows,
 * the most recently seen first: about 7 s at 3 a second, and three Verifies a minute.
 */
export const MAX_COUNTED_EVENTS = 20;

/**
 * A count not answered by then is given up: Klaviyo's minute may be spent (a fourth Verify within a minute would
 * wait up to a minute for it), and the operator is better told so than left waiting.
 */
export const COUNT_DEADLINE_MS = 20_000;

export interface VerifyInput {
  storeCounts: { name: string; count: number; lastSeenAt: number }[];
  routeOf(name: string): Route | null;
  /** The store's count per name in the window (RelayStore.eventCountsBetween). */
  countStore(names: string[], from: number, to: number): Promise<{ name: string; count: number }[]>;
  window: CountWindow;
  maxCounted?: number;
  countDeadlineMs?: number;
}

export interface VerifyResult {
  rows: MetricRow[];
  /** Klaviyo has more metrics than were read. */
  truncated: boolean;
  window: CountWindow;
  /** Klaviyo refused every count, e.g. the key lacks a scope: what to fix. */
  countError: string | null;
}

/** Metrics the Track APIs create belong to the "API" integration; another integration may use the same name. */
const TRACKED_INTEGRATION = 'API';

/**
 * Verify events: every event name in the store beside Klaviyo's metric of that name, then Klaviyo's other
 * metrics; and for the most recently seen events not set to Off, how many events each side has in the window
 * (Klaviyo's `POST /api/metric-aggregates`, summed over its days). Identify calls create profiles, not metrics,
 * so `$identify` is left out.
 */
export async function verifyEvents(klaviyo: KlaviyoClient, input: VerifyInput): Promise<VerifyResult> {
  const { window } = input;
  const maxCounted = input.maxCounted ?? MAX_COUNTED_EVENTS;
  const { data, truncated } = await fetchAllPages(klaviyo, '/api/metrics');
  const metrics = new Map<string, NonNullable<MetricRow['klaviyo']>>();
  for (const m of data) {
    const name = m.attributes?.name;
    if (typeof name !== 'string') continue;
    const metric = { id: String(m.id), created: m.attributes?.created ?? null, integration: m.attributes?.integration?.name ?? null };
    const seen = metrics.get(name);
    if (!seen || (seen.integration !== TRACKED_INTEGRATION && metric.integration === TRACKED_INTEGRATION)) metrics.set(name, metric);
  }
  const rows: MetricRow[] = input.storeCounts
    .filter((e) => e.name !== IDENTIFY_EVENT)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((e) => ({
      name: e.name,
      store: { count: e.count, lastSeenAt: e.lastSeenAt },
      klaviyo: metrics.get(e.name) ?? null,
      route: input.routeOf(e.name),
      storeInWindow: null,
      klaviyoInWindow: null,
      notCounted: null,
    }));
  const storeNames = new Set(rows.map((r) => r.name));
  for (const [name, metric] of [...metrics].sort(([a], [b]) => a.localeCompare(b))) {
    if (!storeNames.has(name)) rows.push({ name, store: null, klaviyo: metric, route: null, storeInWindow: null, klaviyoInWindow: null, notCounted: null });
  }

  // Which rows Klaviyo is asked to count, and why the others are not.
  const candidates: MetricRow[] = [];
  for (const r of rows) {
    if (!r.store) continue;
    if (r.route === 'off') r.notCounted = 'not counted: set to Off, never sent to Klaviyo';
    else if (r.klaviyo) {
      if (r.store.lastSeenAt >= window.from) candidates.push(r);
      else r.notCounted = `not counted: no events in the store in the last ${plural(window.days, 'day')}`;
    }
    // No metric of that name: Klaviyo has none of its events (known only when every metric was read).
    else if (truncated) r.notCounted = 'not counted: Klaviyo has more metrics than were read';
    else r.klaviyoInWindow = 0;
  }
  candidates.sort((a, b) => b.store!.lastSeenAt - a.store!.lastSeenAt);
  const counted = candidates.slice(0, maxCounted);
  for (const r of candidates.slice(maxCounted)) r.notCounted = `not counted: a Verify counts the ${maxCounted} most recently seen events (Klaviyo allows 60 counts a minute)`;

  const inStore = rows.filter((r) => r.store);
  const storeCounts = new Map((await input.countStore(inStore.map((r) => r.name), window.from, window.to)).map((c) => [c.name, c.count]));
  for (const r of inStore) r.storeInWindow = storeCounts.get(r.name) ?? 0;

  // One refusal of the key (a missing scope) stops the rest: each would be refused alike.
  const refused = new AbortController();
  const deadlineMs = input.countDeadlineMs ?? COUNT_DEADLINE_MS;
  const deadline = AbortSignal.timeout(deadlineMs);
  const signal = AbortSignal.any([refused.signal, deadline]);
  let countError: string | null = null;
  await Promise.all(counted.map(async (r) => {
    try {
      r.klaviyoInWindow = await countMetric(klaviyo, r.klaviyo!.id, window, signal);
    } catch (err) {
      if (refused.signal.aborted) {
        r.notCounted = 'not counted: Klaviyo refused to count events';
        return;
      }
      if (deadline.aborted) {
        r.notCounted = `not counted: no answer within ${Math.round(deadlineMs / 1000)} s (Klaviyo allows 60 counts a minute, which earlier Verifies may have spent): Verify again in a minute`;
        return;
      }
      if (!(err instanceof KlaviyoError)) throw err;
      if (err.keyProblem) {
        countError = `Klaviyo refused to count events (${err.status}: ${err.detail}): give the private key read access to Metrics (the metrics:read scope)`;
        refused.abort(new Error(countError));
      }
      r.notCounted = `not counted: ${err.status === 0 ? unreachable(klaviyo, err) : err.message}`;
    }
  }));
  return { rows, truncated, window, countError };
}

/** Klaviyo's count of a metric's events in the window, summed over its days. */
async function countMetric(klaviyo: KlaviyoClient, metricId: string, window: CountWindow, signal: AbortSignal): Promise<number> {
  // https://developers.klaviyo.com/en/docs/using-the-query-metric-aggregates-endpoint
  const res = await klaviyo.post('/api/metric-aggregates', {
    data: {
      type: 'metric-aggregate',
      attributes: {
        metric_id: metricId,
        measurements: ['count'],
        interval: 'day',
        filter: [`greater-or-equal(datetime,${klaviyoDatetime(window.from)})`, `less-than(datetime,${klaviyoDatetime(window.to)})`],
        timezone: 'UTC',
      },
    },
  }, { ...QUICK, signal });
  const rows: { measurements?: { count?: unknown } }[] = res?.data?.attributes?.data ?? [];
  let total = 0;
  for (const row of rows) {
    const counts = row.measurements?.count;
    if (!Array.isArray(counts)) throw new KlaviyoError(200, [{ detail: 'Klaviyo answered the count without measurements.count' }]);
    for (const n of counts) total += Number(n) || 0;
  }
  return total;
}

/** ISO 8601 in UTC to the second, as Klaviyo's filter examples write it. */
const klaviyoDatetime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');

const plural = (n: number, word: string) => `${n} ${n === 1 ? word : `${word}s`}`;

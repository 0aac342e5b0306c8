// The connection checks shared by the operator console (Connection section) and `klaviyo-relay doctor`: does
// the private key work and for which account, is the configured public key that account's, do the audiences'
// lists exist, and — for Verify events — which of the store's events Klaviyo has as metrics. Each result names
// what to fix; none ever carries a secret (Klaviyo's error details never echo the key).
import type { AudienceDefinition } from './audiences/definition.js';
import { listByNameFilter } from './audiences/payloads.js';
import { KlaviyoError, type KlaviyoClient } from './klaviyo-client.js';
import { IDENTIFY_EVENT } from '../shared/workflow.js';

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
}

/**
 * Verify events: every event name in the store beside Klaviyo's metric of that name, then Klaviyo's other
 * metrics. Identify calls create profiles, not metrics, so `$identify` is left out.
 */
export async function verifyEvents(
  klaviyo: KlaviyoClient,
  storeCounts: { name: string; count: number; lastSeenAt: number }[],
): Promise<{ rows: MetricRow[]; truncated: boolean }> {
  const { data, truncated } = await fetchAllPages(klaviyo, '/api/metrics');
  const metrics = new Map<string, MetricRow['klaviyo']>();
  for (const m of data) {
    const name = m.attributes?.name;
    if (typeof name === 'string' && !metrics.has(name)) {
      metrics.set(name, { id: String(m.id), created: m.attributes?.created ?? null, integration: m.attributes?.integration?.name ?? null });
    }
  }
  const rows: MetricRow[] = storeCounts
    .filter((e) => e.name !== IDENTIFY_EVENT)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((e) => ({ name: e.name, store: { count: e.count, lastSeenAt: e.lastSeenAt }, klaviyo: metrics.get(e.name) ?? null }));
  const inStore = new Set(rows.map((r) => r.name));
  for (const [name, metric] of [...metrics].sort(([a], [b]) => a.localeCompare(b))) {
    if (!inStore.has(name)) rows.push({ name, store: null, klaviyo: metric });
  }
  return { rows, truncated };
}

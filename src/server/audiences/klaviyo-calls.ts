// The Klaviyo calls an audience sync makes, each a thin function over the retrying client: list resolution,
// bulk import jobs (submit, poll, errors), consent jobs, profile id lookup and list removal.
import type { KlaviyoClient } from '../klaviyo-client.js';
import { KlaviyoError } from '../klaviyo-client.js';
import type { AudienceDefinition } from './definition.js';
import {
  LIMITS, chunk, importJobBody, listByNameFilter, listCreateBody, profilesByFilter, removeProfilesBody, subscribeJobBody,
  unsubscribeJobBody, type Channel, type ConsentMember, type importProfileEntry,
} from './payloads.js';

export type ListSpec = AudienceDefinition['list'];

/** Creates tried before a run gives up on making its list (each followed by a lookup). */
const LIST_CREATE_ATTEMPTS = 5;

/** A Klaviyo 4xx other than 408/429: final. The affected members are logged and the run goes on, partial. */
export const isFinal4xx = (err: unknown): err is KlaviyoError => err instanceof KlaviyoError && !err.retryable;

export interface ResolvedList {
  id?: string;
  name?: string;
  optInProcess?: string;
  /** True when the list does not exist yet and a real run would create it (dry runs only). */
  wouldCreate?: boolean;
  created?: boolean;
}

/** `{id}`: verify it exists. `{create}`: look the name up first and create it only when absent, so a list is made once. */
export async function resolveList(klaviyo: KlaviyoClient, spec: ListSpec, opts: { dryRun: boolean; remembered?: string; signal?: AbortSignal }): Promise<ResolvedList> {
  if ('id' in spec) {
    try {
      const res = await klaviyo.get(`/api/lists/${encodeURIComponent(spec.id)}`, undefined, { signal: opts.signal });
      return { id: res.data.id, name: res.data.attributes?.name, optInProcess: res.data.attributes?.opt_in_process };
    } catch (err) {
      if (err instanceof KlaviyoError && err.status === 404) throw new KlaviyoError(404, [{ detail: `list ${spec.id} does not exist in Klaviyo: fix list.id or use {"create": "<name>"}` }]);
      throw err;
    }
  }
  const byName = async (): Promise<ResolvedList | undefined> => {
    const found = await klaviyo.get('/api/lists', { filter: listByNameFilter(spec.create) }, { signal: opts.signal });
    const lists: any[] = (found.data ?? []).filter((l: any) => l.attributes?.name === spec.create);
    const match = lists.find((l) => l.id === opts.remembered) ?? lists[0];
    return match && { id: match.id, name: spec.create, optInProcess: match.attributes?.opt_in_process };
  };
  const existing = await byName();
  if (existing) return existing;
  if (opts.dryRun) return { name: spec.create, wouldCreate: true, optInProcess: spec.optInProcess };
  // Klaviyo allows 150 list creations a day: a create whose answer got lost is looked up, never blindly repeated.
  // Each create is one attempt; between them the client's retry policy decides the wait.
  for (let attempt = 1; ; attempt++) {
    try {
      const created = await klaviyo.post('/api/lists', listCreateBody(spec.create, spec.optInProcess), { signal: opts.signal, maxAttempts: 1 });
      return { id: created.data.id, name: spec.create, optInProcess: created.data.attributes?.opt_in_process, created: true };
    } catch (err) {
      if (!(err instanceof KlaviyoError) || !err.retryable || attempt >= LIST_CREATE_ATTEMPTS) throw err;
      await klaviyo.clock.sleep(klaviyo.retryWaitMs(attempt, err), opts.signal);
      const made = await byName();
      if (made) return { ...made, created: true };
    }
  }
}

export interface ImportJobStatus {
  status: 'queued' | 'processing' | 'complete' | 'cancelled';
  failed: number;
  completed: number;
  total: number;
}

export async function submitImportJob(klaviyo: KlaviyoClient, entries: ReturnType<typeof importProfileEntry>[], listId: string, signal?: AbortSignal): Promise<string> {
  const res = await klaviyo.post('/api/profile-bulk-import-jobs', importJobBody(entries, listId), { signal });
  return res.data.id as string;
}

export async function getImportJob(klaviyo: KlaviyoClient, jobId: string, signal?: AbortSignal): Promise<ImportJobStatus> {
  const res = await klaviyo.get(`/api/profile-bulk-import-jobs/${encodeURIComponent(jobId)}`, undefined, { signal });
  const a = res.data.attributes ?? {};
  return { status: a.status, failed: a.failed_count ?? 0, completed: a.completed_count ?? 0, total: a.total_count ?? 0 };
}

/** Follow a JSON:API `links.next` URL with the same client (path and query of the absolute link). */
async function* pages(klaviyo: KlaviyoClient, path: string, query: Record<string, string>, signal?: AbortSignal): AsyncGenerator<any[]> {
  let res = await klaviyo.get(path, query, { signal });
  yield res.data ?? [];
  while (res.links?.next) {
    const next = new URL(res.links.next);
    res = await klaviyo.get(next.pathname, Object.fromEntries(next.searchParams), { signal });
    yield res.data ?? [];
  }
}

export interface ImportErrorItem {
  code?: string;
  detail: string;
  pointer?: string;
  payload?: Record<string, any>;
}

export async function getImportErrors(klaviyo: KlaviyoClient, jobId: string, signal?: AbortSignal): Promise<ImportErrorItem[]> {
  const out: ImportErrorItem[] = [];
  for await (const page of pages(klaviyo, `/api/profile-bulk-import-jobs/${encodeURIComponent(jobId)}/import-errors`, { 'page[size]': String(100) }, signal)) {
    for (const e of page) {
      const a = e.attributes ?? {};
      const payload = a.original_payload?.attributes ?? a.original_payload ?? undefined;
      out.push({ code: a.code, detail: a.detail || a.title || a.code || 'import error', pointer: a.source?.pointer, payload });
    }
  }
  return out;
}

export async function subscribe(klaviyo: KlaviyoClient, members: ConsentMember[], channels: Channel[], listId: string, historical: boolean, signal?: AbortSignal) {
  await klaviyo.post('/api/profile-subscription-bulk-create-jobs', subscribeJobBody(members, channels, listId, historical), { signal });
}

/** `listId` set: unsubscribe from that list only; undefined: from the channels account-wide. */
export async function unsubscribe(klaviyo: KlaviyoClient, members: ConsentMember[], channels: Channel[], listId: string | undefined, signal?: AbortSignal) {
  await klaviyo.post('/api/profile-subscription-bulk-delete-jobs', unsubscribeJobBody(members, channels, listId), { signal });
}

export type LookupField = 'external_id' | 'email' | 'phone_number';

/** Klaviyo profile ids for identifier values of one kind, ≤ 100 values per filtered request. */
export async function lookupProfileIds(klaviyo: KlaviyoClient, field: LookupField, values: string[], signal?: AbortSignal): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  const norm = (v: string) => (field === 'email' ? v.toLowerCase() : v);
  for (const batch of chunk(values, LIMITS.lookupValues)) {
    const query = { filter: profilesByFilter(field, batch), 'page[size]': String(LIMITS.lookupPageSize), 'fields[profile]': field };
    for await (const page of pages(klaviyo, '/api/profiles', query, signal)) {
      for (const p of page) {
        const value = p.attributes?.[field];
        if (typeof value !== 'string') continue;
        const ids = found.get(norm(value)) ?? [];
        ids.push(p.id);
        found.set(norm(value), ids);
      }
    }
  }
  return found;
}

export async function removeFromList(klaviyo: KlaviyoClient, listId: string, profileIds: string[], signal?: AbortSignal) {
  for (const ids of chunk(profileIds, LIMITS.removeProfiles)) {
    await klaviyo.delete(`/api/lists/${encodeURIComponent(listId)}/relationships/profiles`, removeProfilesBody(ids), { signal });
  }
}

// The workflow toggles from the companion server (`GET {endpoint}/v1/config?key=`), cached in IndexedDB and
// revalidated with the cached ETag (If-None-Match → 304 keeps the cached copy).
import type { KV } from './storage.js';

export const FIRST_LOAD_WAIT_MS = 3e3;

interface Cached {
  etag?: string | null;
  workflow: unknown;
}

/**
 * Applies the cached workflow at once, then revalidates. `apply` returns false for an invalid config, which is
 * then not cached. Resolves when a config is in force (cached or fetched) or the fetch failed.
 * Without a store (no consent yet) nothing is cached.
 */
export async function loadRemoteWorkflow(kv: KV | false, endpoint: string, publicKey: string, apply: (wf: unknown) => boolean) {
  const key = 'c:' + endpoint;
  const cached = kv && (await kv.get<Cached>(key));
  if (cached) apply(cached.workflow);
  const revalidated = fetch(`${endpoint}/v1/config?key=${encodeURIComponent(publicKey)}`, {
    headers: cached && cached.etag ? { 'if-none-match': cached.etag } : {},
  })
    .then(async (r) => {
      if (r.status == 304) return;
      const { workflow } = r.ok ? await r.json() : Promise.reject(Error('HTTP ' + r.status));
      if (apply(workflow) && kv) kv.put(key, { etag: r.headers.get('etag'), workflow });
    })
    .catch((e) => console.warn(`klaviyo-relay: ${endpoint}/v1/config failed (${e.message}); using the ${cached ? 'cached' : 'built-in'} workflow`));
  // First visit: wait for the server's toggles, but never hold routing back for long on a slow endpoint.
  if (!cached) await Promise.race([revalidated, new Promise((ok) => setTimeout(ok, FIRST_LOAD_WAIT_MS))]);
}

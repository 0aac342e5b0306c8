// The workflow toggles from the companion server (`GET {endpoint}/v1/config?key=`). The request starts at once, in
// parallel with reading the copy cached in IndexedDB: revalidation is the browser's HTTP cache's job (the server
// answers with an ETag and `Cache-Control: no-cache`, so the browser asks with If-None-Match and a 304 reuses its
// copy), and the IndexedDB copy lets a returning visitor route at once, before the answer.
import type { KV } from './storage.js';

/** How long a first visit (nothing cached) waits for the config before the built-in default routes. */
export const FIRST_LOAD_WAIT_MS = 3e3;

/**
 * Applies the server's workflow, or the cached one if it is read first. `apply` returns false for an invalid config,
 * which is then not cached. Resolves when a config is in force (cached or fetched), the fetch failed, or a first
 * visit has waited `waitMs`. Without a store (no consent yet) nothing is cached.
 */
export async function loadRemoteWorkflow(kv: KV | false, endpoint: string, publicKey: string, apply: (wf: unknown) => boolean, waitMs: number) {
  const key = 'w:' + endpoint;
  let answered = false;
  const fetched = fetch(`${endpoint}/v1/config?key=${encodeURIComponent(publicKey)}`)
    .then(async (r) => {
      if (!r.ok) throw Error('HTTP ' + r.status);
      const { workflow } = await r.json();
      answered = true;
      if (apply(workflow) && kv) kv.put(key, workflow);
    })
    .catch((e) => console.warn(`klaviyo-relay: ${endpoint}/v1/config failed (${e.message})`));
  const cached = kv && (await kv.get(key));
  if (cached) {
    if (!answered) apply(cached);
  } else await Promise.race([fetched, new Promise((ok) => setTimeout(ok, waitMs))]);
}

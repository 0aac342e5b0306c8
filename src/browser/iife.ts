// <script> / tag-manager entry. Reads this script's data-* attributes, replays the stub queue
// (`window.klaviyoRelay = window.klaviyoRelay || []`) in order with each call's recorded time, then installs the live
// API in its place, so `klaviyoRelay.push([...])` and `klaviyoRelay.track(...)` keep working.
import { createRelay } from './relay.js';
import type { RelayApi, RelayOptions } from './types.js';

/** `data-*` → init options by the dataset convention; a present attribute that is not "false" is on. */
export function optionsFromDataset(data: DOMStringMap): RelayOptions {
  const flag = (v?: string) => (v === undefined ? undefined : v != 'false');
  return {
    publicKey: data.publicKey,
    endpoint: data.endpoint,
    klaviyoUrl: data.klaviyoUrl,
    cookieDomain: data.cookieDomain,
    requireConsent: flag(data.requireConsent),
    dataLayer: flag(data.dataLayer),
    autoPage: flag(data.autoPage),
    debug: flag(data.debug),
  };
}

const w = window as unknown as { klaviyoRelay?: unknown };
const existing = w.klaviyoRelay as RelayApi | unknown[] | undefined;
const fromTag = optionsFromDataset((document.currentScript as HTMLScriptElement | null)?.dataset || {});
if (existing && !Array.isArray(existing) && typeof existing.track == 'function') {
  existing.init(fromTag); // loaded twice: merge this tag's attributes into the running snippet
} else {
  const api = createRelay(fromTag);
  const queue = Array.isArray(existing) ? existing : [];
  w.klaviyoRelay = api;
  api.push(...(queue as unknown[][]));
}

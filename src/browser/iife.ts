// <script> / tag-manager entry. Reads this script's data-* attributes, replays the stub queue
// (`window.klaviyoRelay = window.klaviyoRelay || []`) in order with each call's recorded time, then installs the live
// API in its place, so `klaviyoRelay.push([...])` and `klaviyoRelay.track(...)` keep working.
import { createRelay } from './relay.js';
import type { RelayApi, RelayOptions } from './types.js';

const VALUES = ['publicKey', 'endpoint', 'klaviyoUrl', 'cookieDomain'];
const FLAGS = ['requireConsent', 'dataLayer', 'autoPage', 'debug', 'relayFallback'];

/**
 * `data-*` → init options. The dataset convention already turns `data-public-key` into `publicKey`, so names map
 * one to one; a flag attribute that is present and not "false" is on.
 */
export function optionsFromDataset(data: DOMStringMap): RelayOptions {
  const options: Record<string, unknown> = {};
  for (const k of [...VALUES, ...FLAGS]) if (data[k] != null) options[k] = VALUES.includes(k) ? data[k] : data[k] != 'false';
  return options;
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

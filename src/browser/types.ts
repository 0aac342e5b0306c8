// Public types of the snippet (exported from index.ts and emitted as .d.ts).
import type { RelayEvent, RelayProfile, Route } from '../shared/wire.js';
import type { WorkflowInput } from '../shared/workflow.js';

export type { RelayEvent, RelayProfile, Route, WorkflowInput };

export interface RelayOptions {
  /** Klaviyo Public API Key (company_id). Nothing leaves the page until it is known. */
  publicKey?: string;
  /** Companion server base URL, e.g. `https://shop.example/relay`. Enables server routing and the store copy. */
  endpoint?: string;
  /** Klaviyo base URL; default `https://a.klaviyo.com` (the sandbox in tests and the demo). */
  klaviyoUrl?: string;
  /** Inline event-workflow toggles; they win over the companion server's `/v1/config`. */
  workflow?: WorkflowInput;
  requireConsent?: boolean;
  /** Bridge GA4 ecommerce events from `window.dataLayer`. */
  dataLayer?: boolean;
  /** Page view on load and on SPA history changes; default true. */
  autoPage?: boolean;
  cookieDomain?: string;
  debug?: boolean;
  /** Outbox cap (default 1,000; oldest evicted first) and TTL in ms (default 7 days). */
  maxEvents?: number;
  ttlMs?: number;
  /** How long a first visit waits for the companion's workflow config before the built-in default routes; default 3,000 ms. */
  configWaitMs?: number;
  /**
   * Opt-in: when Klaviyo's client endpoint keeps failing with no HTTP answer at all (an ad blocker) while the
   * companion answers, hand client events to the companion (route "server", same unique_id) instead.
   */
  relayFallback?: boolean;
}

export interface TrackOptions {
  time?: Date | string | number;
  value?: number;
  valueCurrency?: string;
  uniqueId?: string;
}

/** `klaviyo` = Klaviyo's Client API; `relay` = the companion server's `POST /v1/events` (forwarding or store copy). */
export type Destination = 'klaviyo' | 'relay';

/** One outbox record, stored under its `unique_id`. `to` lists each target destination and whether it is delivered. */
export interface OutboxEntry {
  event: RelayEvent;
  to: Partial<Record<Destination, boolean>>;
  attempts: number;
  /** Enqueue time (ms); TTL and cap order use it. */
  at: number;
  error?: string;
}

/** What the QA panel lists: one row per event waiting in the outbox. */
export interface PendingItem {
  unique_id: string;
  name?: string;
  type: 'track' | 'identify';
  /** Absent while the entry waits for the first workflow config (first visit, up to 3 s). */
  route?: Route;
  destinations: Partial<Record<Destination, 'pending' | 'sent'>>;
  attempts: number;
  time: string;
  error?: string;
}

export type HookName = 'queued' | 'sent' | 'retry' | 'dropped' | 'error';

/** Payload of every hook. `event` is absent for endpoint-wide notices (e.g. a retry wait). */
export interface HookInfo {
  event?: RelayEvent;
  destination?: Destination;
  status?: number;
  /** Why: Klaviyo's error detail, `cap`, `expired`, `consent`, a network message… */
  reason?: string;
  waitMs?: number;
  attempts?: number;
  /** On `retry`: Klaviyo is unreachable, client events now go through the companion (relayFallback). */
  fallback?: boolean;
}

export interface RelayApi {
  init(options: RelayOptions): void;
  track(name: string, properties?: Record<string, unknown>, options?: TrackOptions): void;
  identify(traits: Record<string, unknown>): void;
  page(properties?: Record<string, unknown>): void;
  consent(choice: { granted: boolean }): void;
  reset(): void;
  flush(): Promise<void>;
  on(hook: HookName, cb: (info: HookInfo) => void): () => void;
  ready(cb: (api: RelayApi) => void): void;
  /** `push(['track', name, props])`: the stub/array form of every method. */
  push(...calls: unknown[][]): number;
  /** Read-only view of the outbox for QA tooling. */
  pending(): Promise<PendingItem[]>;
}

// createRelay(): the public API, a thin layer over the outbox (storage) and the flusher (sending). Calls are checked
// synchronously (bad input warns at the call site), then run in order once storage is open and identity restored.
//
// The lifecycle is one `phase`:
//   idle ── init with a publicKey ──▶ loading ── storage open, identity restored ──▶ routing ── config settled ──▶ ready
//                                        └──────── no config to wait for (inline workflow, no endpoint) ─────────▶ ready
// - idle, loading: calls wait in `backlog`.
// - routing: the companion's workflow config is awaited (a first visit waits up to `configWaitMs`, 3 s by default);
//   calls run, events are stored unrouted and routed when it settles. The flusher already sends what earlier pages
//   left routed in the outbox.
// - ready: routes are known; `ready` callbacks fire.
import { timeLimitError } from '../shared/ingestion-limits.js';
import { DEFAULT_KLAVIYO_URL } from '../shared/revision.js';
import type { RelayEvent, RelayProfile } from '../shared/wire.js';
import { IDENTIFY_EVENT, parseWorkflow, routeFor, type Workflow } from '../shared/workflow.js';
import { watchHistory } from './autopage.js';
import { WITH_DATA_LAYER } from './build-flags.js';
import { bridgeDataLayer } from './datalayer.js';
import { createFlusher } from './flusher.js';
import { createHooks } from './hooks.js';
import {
  CONSENT_COOKIE, ID_COOKIE, identifiers, kxFromUrl, mergeTraits, namesAnotherPerson, readCookie, removeCookie, uuid, writeCookie,
} from './identity.js';
import { withFlushLock } from './lock.js';
import { createOutbox, DEFAULT_CAP, DEFAULT_TTL, type Outbox } from './outbox.js';
import { FIRST_LOAD_WAIT_MS, loadRemoteWorkflow } from './remote-config.js';
import { checkName, checkProperties } from './sanitize.js';
import { openKV, type KV } from './storage.js';
import type { OutboxEntry, PendingItem, RelayApi, RelayOptions, TrackOptions } from './types.js';

/** The route key identify() calls look up in `workflow.events`. */
export { IDENTIFY_EVENT };
export const PAGE_EVENT = 'Viewed Page';
const PROFILE_KEY = 'p';

const warn = (msg: string) => console.warn('klaviyo-relay: ' + msg);
const trim = (url: string) => url.replace(/\/+$/, '');

// The lifecycle phases, in order: a phase only ever moves forward.
const IDLE = 0;
const LOADING = 1;
const ROUTING = 2;
const READY = 3;

export function createRelay(initial?: RelayOptions): RelayApi {
  const opts: RelayOptions = {};
  const loadedAt = Date.now();
  const hooks = createHooks(() => opts.debug);
  let phase = IDLE;
  /** Settles when storage is open and identity restored (the end of `loading`). */
  let loaded: Promise<void> | undefined;
  /** Calls made while idle or loading. */
  const backlog: (() => void)[] = [];
  const readyCallbacks: ((api: RelayApi) => void)[] = [];
  /** Events captured before consent: memory only. */
  const held: RelayEvent[] = [];
  let kv: KV;
  let outbox: Outbox;
  let flusher: ReturnType<typeof createFlusher>;
  let workflow: Workflow = { events: {} };
  /** An init({workflow}) is in force: the companion's config is not applied over it. */
  let inlineWorkflow = false;
  let profile: RelayProfile = {};
  let consented = false;
  /** Original time of a call replayed from the stub queue. */
  let stamp: number | undefined;
  let pageWatched = false;
  let layerBridged = false;

  const whenLoaded = (fn: () => void) => (phase >= ROUTING ? fn() : backlog.push(fn));
  const routeOf = (event: RelayEvent) => routeFor(workflow, event.type == 'identify' ? IDENTIFY_EVENT : event.name!, !!opts.endpoint);

  function applyWorkflow(input: unknown): boolean {
    const parsed = parseWorkflow(input);
    if (typeof parsed == 'string') {
      console.error(`klaviyo-relay: workflow config rejected: ${parsed}; the last good one stays in force`);
      return false;
    }
    workflow = parsed;
    return true;
  }

  function persistIdentity() {
    if (!consented) return;
    writeCookie(ID_COOKIE, profile.anonymous_id!, opts.cookieDomain);
    kv.put(PROFILE_KEY, profile);
  }

  function applyConsent(granted: boolean) {
    const before = consented;
    consented = granted;
    if (granted) {
      persistIdentity();
      return held.splice(0).forEach(enqueue);
    }
    held.splice(0).forEach((event) => hooks.emit('dropped', { event, reason: 'consent' }));
    removeCookie(ID_COOKIE, opts.cookieDomain);
    // Only what was stored under consent needs clearing; touching IndexedDB otherwise would create it.
    if (before) kv.put(PROFILE_KEY, undefined), outbox.clear('consent');
  }

  /** The consent marker cookie is shared by every tab: a choice made in another tab applies here at the next flush. */
  function syncConsent() {
    const marker = readCookie(CONSENT_COOKIE);
    if (marker && marker == '1' != consented) applyConsent(marker == '1');
    return consented;
  }

  const enqueue = (event: RelayEvent) => flusher.add(event);

  function capture(event: Omit<RelayEvent, 'route' | 'profile'>) {
    whenLoaded(() => {
      const full = { ...event, profile: event.type == 'identify' ? JSON.parse(JSON.stringify(profile)) : identifiers(profile) } as RelayEvent;
      consented ? enqueue(full) : held.push(full);
    });
  }

  const timeOf = (t: TrackOptions['time']) => new Date(t ?? stamp ?? Date.now());

  function enableFeatures() {
    if (opts.autoPage !== false && !pageWatched) (pageWatched = true), watchHistory(() => api.page());
    if (opts.dataLayer && !layerBridged) {
      layerBridged = true;
      if (WITH_DATA_LAYER) bridgeDataLayer(window, api.track);
      else warn('dataLayer needs klaviyo-relay.gtm.min.js; this build has no dataLayer bridge');
    }
  }

  /** routing → ready (or loading → ready): routes are known. */
  function becomeReady() {
    phase = READY;
    flusher.flush();
    readyCallbacks.splice(0).forEach((cb) => api.ready(cb));
  }

  /** idle → loading → routing: opens storage and restores identity while the workflow config is fetched. */
  async function load() {
    await 0; // let the rest of a synchronous stub replay (later init calls) land first
    kv = openKV('klaviyo-relay', (reason) => {
      warn(`IndexedDB is unavailable (${reason}); events are kept in memory for this page`);
      hooks.emit('error', { reason: 'storage: ' + reason });
    });
    outbox = createOutbox(kv, hooks.emit, () => ({
      cap: opts.maxEvents || DEFAULT_CAP,
      ttl: opts.ttlMs || DEFAULT_TTL,
    }));
    const tabId = uuid();
    flusher = createFlusher(
      outbox,
      hooks,
      opts,
      // Consent is checked again at every flush, not only at capture: a denial in another tab or a later call wins.
      syncConsent,
      (event) => (phase == READY ? routeOf(event) : undefined),
      (flush) => withFlushLock(kv, tabId, flush),
    );
    const marker = readCookie(CONSENT_COOKIE);
    consented = marker ? marker == '1' : !opts.requireConsent;
    // Started before storage is read: the config request and IndexedDB run in parallel.
    const config =
      opts.endpoint && !inlineWorkflow &&
      loadRemoteWorkflow(consented && kv, opts.endpoint, opts.publicKey!, (wf) => !inlineWorkflow && applyWorkflow(wf), opts.configWaitMs ?? FIRST_LOAD_WAIT_MS);
    // Without consent IndexedDB is not even opened (opening creates the database). The outbox is not read here: the
    // first flush reads it, so a large outbox left by earlier pages does not hold readiness back.
    const stored = consented && (await kv.get<RelayProfile>(PROFILE_KEY));
    profile = { ...stored, anonymous_id: readCookie(ID_COOKIE) || (stored && stored.anonymous_id) || uuid() };
    const kx = kxFromUrl(location.href);
    if (kx) profile._kx = kx;
    persistIdentity();
    phase = config ? ROUTING : READY;
    if (opts.autoPage !== false) (stamp = loadedAt), api.page(), (stamp = undefined);
    backlog.splice(0).forEach((fn) => fn());
    enableFeatures();
    addEventListener('online', flusher.online);
    addEventListener('pagehide', flusher.pagehide);
    document.addEventListener('visibilitychange', flusher.flush);
    if (config) {
      // What earlier pages left routed goes now; this page's own events wait for their routes.
      flusher.flush();
      config.then(() => phase == ROUTING && becomeReady()).catch((e) => hooks.fail('init', e));
    } else becomeReady();
  }

  // ---- the public methods (each wrapped by the never-throw guard below, push included) ----

  const methods: RelayApi = {
    init(o) {
      if (!o || typeof o != 'object') return warn('init() needs an options object');
      for (const k in o) if ((o as any)[k] !== undefined) (opts as any)[k] = (o as any)[k];
      opts.klaviyoUrl = trim(opts.klaviyoUrl || DEFAULT_KLAVIYO_URL);
      if (opts.endpoint) opts.endpoint = trim(opts.endpoint);
      if (o.workflow !== undefined && applyWorkflow(o.workflow)) {
        inlineWorkflow = true;
        if (phase == ROUTING) becomeReady();
      }
      if (opts.publicKey && phase == IDLE) {
        phase = LOADING;
        loaded = load().catch((e) => hooks.fail('init', e));
      }
      if (phase >= ROUTING) enableFeatures();
    },
    track(name, properties, o) {
      const props = checkProperties(properties);
      const time = timeOf(o?.time);
      const problem = checkName(name) || (typeof props == 'string' && props) || timeLimitError(time.getTime(), Date.now());
      if (problem) return warn(`track(${JSON.stringify(String(name).slice(0, 40))}) ignored: ${problem}`);
      const event: Omit<RelayEvent, 'route' | 'profile'> = { type: 'track', name, properties: props as {}, time: time.toISOString(), unique_id: o?.uniqueId || uuid() };
      if (Number.isFinite(o?.value)) event.value = o!.value;
      if (o?.valueCurrency) event.value_currency = o.valueCurrency;
      capture(event);
    },
    identify(traits) {
      const checked = traits ? checkProperties(traits) : 'traits are missing';
      if (typeof checked == 'string') return warn('identify() ignored: ' + checked);
      const time = timeOf(undefined).toISOString();
      whenLoaded(() => {
        // One device, two people: someone else starts afresh, as reset() then identify() would. Events already
        // queued keep the identifiers they were captured with.
        if (namesAnotherPerson(profile, checked)) profile = { anonymous_id: uuid() };
        mergeTraits(profile, checked).forEach((p) => warn('identify(): ' + p + '; left out'));
        persistIdentity();
        capture({ type: 'identify', time, unique_id: uuid() });
      });
    },
    page(properties) {
      const props = checkProperties(properties);
      if (typeof props == 'string') return warn('page() ignored: ' + props);
      methods.track(PAGE_EVENT, { URL: location.href, Path: location.pathname, Title: document.title, Referrer: document.referrer, ...props });
    },
    consent(choice) {
      if (typeof choice?.granted != 'boolean') return warn('consent() needs {granted: true|false}');
      whenLoaded(() => {
        writeCookie(CONSENT_COOKIE, choice.granted ? '1' : '0', opts.cookieDomain);
        applyConsent(choice.granted);
        flusher.flush();
      });
    },
    reset() {
      whenLoaded(() => {
        profile = { anonymous_id: uuid() };
        persistIdentity();
      });
    },
    flush: () => (loaded ? loaded.then(() => flusher.flush()) : Promise.resolve()),
    on: (hook, cb) => hooks.on(hook, cb),
    ready(cb) {
      phase == READY ? cb(api) : readyCallbacks.push(cb);
    },
    // Events held for consent are listed too, owing nothing yet, so a QA tester sees why they wait.
    pending: async () =>
      (phase < ROUTING ? [] : consented ? await outbox.load() : held.map((event) => ({ event, to: {}, attempts: 0, error: 'waiting for consent' }))).map(
        ({ event: e, to, attempts, error }): PendingItem => ({
          unique_id: e.unique_id, name: e.name, type: e.type || 'track', route: e.route, attempts, time: e.time, error,
          destinations: Object.fromEntries(Object.entries(to).map(([d, sent]) => [d, sent ? 'sent' : 'pending'])),
        }),
      ),
    push(...calls) {
      for (const call of calls) {
        if (!Array.isArray(call)) {
          warn("push() ignored a call that is not an array such as ['track', name, properties]");
          continue;
        }
        // Only the API's own methods: a pushed name must never reach Object.prototype (`constructor`, `__proto__`).
        const method = call[0] as keyof RelayApi;
        if (!Object.prototype.hasOwnProperty.call(methods, method)) {
          warn(`push(): unknown method ${JSON.stringify(method)}`);
          continue;
        }
        stamp = (call as { t?: number }).t;
        (api[method] as Function)(...call.slice(1));
        stamp = undefined;
      }
      return calls.length;
    },
  };

  const api = {} as RelayApi;
  // No public method ever throws into the host page: a failure is logged and reported on 'error'.
  for (const [name, fn] of Object.entries(methods)) {
    (api as any)[name] = (...args: unknown[]) => {
      try {
        const result = (fn as Function)(...args);
        return result?.catch ? result.catch((e: unknown) => hooks.fail(name, e)) : result;
      } catch (e) {
        hooks.fail(name, e);
      }
    };
  }
  if (initial) api.init(initial);
  return api;
}

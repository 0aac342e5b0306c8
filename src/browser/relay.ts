// createRelay(): the public API. Calls are checked synchronously (bad input warns at the call site), then run in
// order once storage is open and identity restored. Events go into the outbox at once; one tracked before the
// workflow config is known (a first visit waits up to 3 s for it) is stored unrouted and routed when the config lands.
import { timeLimitError } from '../shared/ingestion-limits.js';
import { DEFAULT_KLAVIYO_URL } from '../shared/revision.js';
import type { RelayEvent, RelayProfile } from '../shared/wire.js';
import { parseWorkflow, routeFor, type Workflow } from '../shared/workflow.js';
import { watchHistory } from './autopage.js';
import { WITH_DATA_LAYER } from './build-flags.js';
import { bridgeDataLayer } from './datalayer.js';
import { createDelivery, type Target } from './delivery.js';
import { createHooks } from './hooks.js';
import {
  CONSENT_COOKIE, ID_COOKIE, identifiers, kxFromUrl, mergeTraits, namesAnotherPerson, readCookie, removeCookie, uuid, writeCookie,
} from './identity.js';
import { withFlushLock } from './lock.js';
import { createOutbox, DEFAULT_CAP, DEFAULT_TTL, owes, type Outbox } from './outbox.js';
import { loadRemoteWorkflow } from './remote-config.js';
import { checkName, checkProperties } from './sanitize.js';
import { openKV, type KV } from './storage.js';
import type { Destination, OutboxEntry, PendingItem, RelayApi, RelayOptions, TrackOptions } from './types.js';

/** The route key identify() calls look up in `workflow.events`. */
export const IDENTIFY_EVENT = '$identify';
export const PAGE_EVENT = 'Viewed Page';
const PROFILE_KEY = 'p';

const warn = (msg: string) => console.warn('klaviyo-relay: ' + msg);
const trim = (url: string) => url.replace(/\/+$/, '');

export function createRelay(initial?: RelayOptions): RelayApi {
  const opts: RelayOptions = {};
  const loadedAt = Date.now();
  const hooks = createHooks(() => opts.debug);
  const backlog: (() => void)[] = [];
  const readyCallbacks: ((api: RelayApi) => void)[] = [];
  /** Events captured before consent: memory only. */
  const held: RelayEvent[] = [];
  let kv: KV;
  let outbox: Outbox;
  let delivery: ReturnType<typeof createDelivery>;
  let workflow: Workflow = { events: {} };
  let inlineWorkflow = false;
  let profile: RelayProfile = {};
  let consented = false;
  let booted: Promise<void> | undefined;
  /** Storage open and identity restored: calls run. */
  let loaded = false;
  /** The workflow config is in force too: routes are known, flushes run, ready callbacks fire. */
  let ready = false;
  /** No config is awaited from the companion server (none asked for, or it has answered or timed out). */
  let routable = false;
  /** This tab's entries stored before the config was known; routed (and reported `queued`) once it is. */
  const early: OutboxEntry[] = [];
  /** Original time of a call replayed from the stub queue. */
  let stamp: number | undefined;
  let lastAt = 0;
  let flushing: Promise<void> | undefined;
  /** One follow-up flush queued behind the running one: a call made mid-flush must see its own events go. */
  let next: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let due = Infinity;
  let pageWatched = false;
  let layerBridged = false;

  const whenLoaded = (fn: () => void) => (loaded ? fn() : backlog.push(fn));
  const routeOf = (event: RelayEvent) => routeFor(workflow, event.type == 'identify' ? IDENTIFY_EVENT : event.name!, !!opts.endpoint);
  const target = (): Target => ({
    publicKey: opts.publicKey!,
    klaviyoUrl: trim(opts.klaviyoUrl || DEFAULT_KLAVIYO_URL),
    endpoint: opts.endpoint && trim(opts.endpoint),
  });

  function applyWorkflow(input: unknown): boolean {
    const parsed = parseWorkflow(input);
    if (parsed.ok) workflow = parsed.workflow;
    else console.error(`klaviyo-relay: workflow config rejected: ${parsed.error}. The last good config stays in force.`);
    return parsed.ok;
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

  // ---- outbox and flushing ----

  function enqueue(event: RelayEvent) {
    if (!event.route && (routable || inlineWorkflow)) event.route = routeOf(event);
    const to: OutboxEntry['to'] = {};
    if (event.route == 'client') to.klaviyo = false;
    else if (event.route == 'server' && !opts.endpoint)
      return hooks.emit('dropped', { event, reason: 'route "server" needs an endpoint' });
    if (opts.endpoint) to.relay = false;
    if (!Object.keys(to).length) return; // `off` without an endpoint goes nowhere
    lastAt = Math.max(Date.now(), lastAt + 1e-3);
    const entry: OutboxEntry = { event, to, attempts: 0, at: lastAt };
    // Unrouted (only ever with an endpoint, so the store copy is owed either way): reported once routed.
    if (!event.route) return early.push(entry), void outbox.add(entry);
    outbox.add(entry).then(() => hooks.emit('queued', { event }));
    schedule(500);
  }

  function schedule(ms: number) {
    if (Date.now() + ms >= due) return;
    clearTimeout(timer);
    due = Date.now() + ms;
    timer = setTimeout(() => ((due = Infinity), runFlush()), ms);
  }

  /** Retry when something is still owed: at the end of the longest relevant backoff, at least 1 s from now. */
  function reschedule() {
    if (!consented || navigator.onLine === false) return;
    const owed = (d: Destination) => [...outbox.live.values()].some((e) => owes(e, d));
    const waits = (['klaviyo', 'relay'] as const).filter(owed).map((d) => delivery.blockedUntil[d] - Date.now());
    if (waits.length) schedule(Math.max(1e3, Math.min(...waits)));
  }

  function runFlush(): Promise<void> {
    if (!ready) return booted ? booted.then(runFlush) : Promise.resolve();
    if (flushing) return (next ||= flushing.then(() => ((next = undefined), runFlush())));
    return (flushing = (async () => {
      // Consent is checked again here, not only at capture: a denial in another tab or a later call wins.
      if (syncConsent() && navigator.onLine !== false)
        await withFlushLock(kv, tabId, async () => delivery.send(await outbox.route(await outbox.load(), routeOf), target()));
    })()
      .finally(() => (flushing = undefined))
      .then(reschedule)
      .catch((e) => report('flush', e)));
  }

  // ---- capture ----

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

  async function boot() {
    await 0; // let the rest of a synchronous stub replay (later init calls) land first
    kv = openKV('klaviyo-relay', (reason) => {
      warn(`IndexedDB is unavailable (${reason}); events are kept in memory for this page only`);
      hooks.emit('error', { reason: 'storage: ' + reason });
    });
    outbox = createOutbox(kv, (info) => hooks.emit('dropped', info), () => ({
      cap: opts.maxEvents || DEFAULT_CAP,
      ttl: opts.ttlMs || DEFAULT_TTL,
    }));
    delivery = createDelivery(outbox, hooks.emit);
    const marker = readCookie(CONSENT_COOKIE);
    consented = marker ? marker == '1' : !opts.requireConsent;
    const config =
      opts.endpoint && !inlineWorkflow &&
      loadRemoteWorkflow(consented && kv, trim(opts.endpoint), opts.publicKey!, (wf) => !inlineWorkflow && applyWorkflow(wf) && (routable = true));
    routable = !config;
    // Without consent IndexedDB is not even opened (opening creates the database).
    const [stored] = await Promise.all([consented && kv.get<RelayProfile>(PROFILE_KEY), consented && outbox.load()]);
    profile = { ...stored, anonymous_id: readCookie(ID_COOKIE) || (stored && stored.anonymous_id) || uuid() };
    const kx = kxFromUrl(location.href);
    if (kx) profile._kx = kx;
    persistIdentity();
    loaded = true;
    if (opts.autoPage !== false) (stamp = loadedAt), api.page(), (stamp = undefined);
    backlog.splice(0).forEach((fn) => fn());
    enableFeatures();
    await config;
    routable = ready = true;
    held.forEach((e) => (e.route ||= routeOf(e)));
    outbox.route(early.splice(0), routeOf).then((routed) => routed.forEach(({ event }) => hooks.emit('queued', { event })));
    addEventListener('online', () => (delivery.online(), runFlush()));
    addEventListener('pagehide', () => consented && delivery.send([...outbox.live.values()], target(), true));
    document.addEventListener('visibilitychange', () => runFlush());
    runFlush();
    readyCallbacks.splice(0).forEach((cb) => api.ready(cb));
  }

  // ---- the public methods (each wrapped by the never-throw guard below, push included) ----

  const methods: RelayApi = {
    init(o) {
      if (!o || typeof o != 'object') return warn('init() needs an options object');
      for (const k in o) if ((o as any)[k] !== undefined) (opts as any)[k] = (o as any)[k];
      if (o.workflow !== undefined && applyWorkflow(o.workflow)) inlineWorkflow = true;
      if (opts.publicKey && !booted) booted = boot().catch((e) => report('init', e));
      if (loaded) enableFeatures();
    },
    track(name, properties, o) {
      const props = checkProperties(properties);
      const time = timeOf(o?.time);
      const problem = checkName(name) || (typeof props == 'string' && props) || timeLimitError(time.getTime(), Date.now());
      if (problem) return warn(`track(${JSON.stringify(String(name).slice(0, 40))}) ignored: ${problem}`);
      const event: Omit<RelayEvent, 'route' | 'profile'> = { type: 'track', name, properties: props as {}, time: time.toISOString(), unique_id: o?.uniqueId || uuid() };
      if (typeof o?.value == 'number' && isFinite(o.value)) event.value = o.value;
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
        runFlush();
      });
    },
    reset() {
      whenLoaded(() => {
        profile = { anonymous_id: uuid() };
        persistIdentity();
      });
    },
    flush: () => runFlush(),
    on: (hook, cb) => hooks.on(hook, cb),
    ready(cb) {
      ready ? cb(api) : readyCallbacks.push(cb);
    },
    // Events held for consent are listed too, owing nothing yet, so a QA tester sees why they wait.
    pending: async () =>
      (!loaded ? [] : consented ? await outbox.load() : held.map((event) => ({ event, to: {}, attempts: 0, error: 'waiting for consent' }))).map(
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

  const tabId = uuid();
  const api = {} as RelayApi;
  // No public method ever throws into the host page: a failure is logged and reported on 'error'.
  for (const [name, fn] of Object.entries(methods)) {
    (api as any)[name] = (...args: unknown[]) => {
      try {
        const result = (fn as Function)(...args);
        return result?.catch ? result.catch((e: unknown) => report(name, e)) : result;
      } catch (e) {
        report(name, e);
      }
    };
  }
  const report = (name: string, e: unknown) => {
    console.error(`klaviyo-relay: ${name}() failed`, e);
    hooks.emit('error', { reason: String(e) });
  };
  if (initial) api.init(initial);
  return api;
}

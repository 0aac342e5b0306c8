// @vitest-environment happy-dom
import { describe, it, expect, vi, beforeEach } from 'vitest';
import { freshBrowser, isReady, recordHooks } from './helpers.js';
import { openKV } from '../../src/browser/storage.js';
import { createOutbox } from '../../src/browser/outbox.js';
import { createRelay } from '../../src/browser/index.js';
import type { OutboxEntry } from '../../src/browser/types.js';
import { eventually } from '../support/wait-for.js';

const t0 = Date.now();
/** `at` is an offset from the start of the run in ms (TTL compares it with the clock). */
const entry = (id: string, at: number, to: OutboxEntry['to'] = { klaviyo: false }): OutboxEntry => ({
  event: { type: 'track', name: 'E' + id, time: new Date(t0 + at).toISOString(), unique_id: id, route: 'client', profile: {} },
  to, attempts: 0, at: t0 + at,
});

beforeEach(() => void freshBrowser());

describe('outbox', () => {
  it('writes one IndexedDB key per event, and a second store handle (another tab) sees them', async () => {
    const box = createOutbox(openKV('t', () => {}), () => {}, () => ({ cap: 10, ttl: 1e9 }));
    await Promise.all([box.add(entry('a', 1)), box.add(entry('b', 2))]);
    const other = createOutbox(openKV('t', () => {}), () => {}, () => ({ cap: 10, ttl: 1e9 }));
    expect((await other.load()).map((e) => e.event.unique_id)).toEqual(['a', 'b']);
    const keys: IDBValidKey[] = await new Promise((ok) => {
      indexedDB.open('t').onsuccess = (ev: any) => {
        const req = ev.target.result.transaction('kv').objectStore('kv').getAllKeys();
        req.onsuccess = () => ok(req.result);
      };
    });
    expect(keys).toEqual(['e:a', 'e:b']);
  });

  it('caps the outbox: the oldest are evicted first and each eviction is reported', async () => {
    const dropped: any[] = [];
    const box = createOutbox(openKV('t', () => {}), (hook, i) => hook == 'dropped' && dropped.push(i), () => ({ cap: 3, ttl: 1e9 }));
    for (let i = 1; i <= 5; i++) await box.add(entry('id' + i, i));
    expect(dropped.map((d) => [d.event.unique_id, d.reason])).toEqual([['id1', 'cap'], ['id2', 'cap']]);
    expect((await box.load()).map((e) => e.event.unique_id)).toEqual(['id3', 'id4', 'id5']);
  });

  it('drops entries older than the TTL at load, reporting them as expired', async () => {
    const dropped: any[] = [];
    const box = createOutbox(openKV('t', () => {}), (hook, i) => hook == 'dropped' && dropped.push(i), () => ({ cap: 10, ttl: 1000 }));
    await box.add(entry('old', Date.now() - t0 - 5000));
    await box.add(entry('new', Date.now() - t0));
    expect((await box.load()).map((e) => e.event.unique_id)).toEqual(['new']);
    expect(dropped).toMatchObject([{ reason: 'expired', event: { unique_id: 'old' } }]);
    expect((await createOutbox(openKV('t', () => {}), () => {}, () => ({ cap: 10, ttl: 1e9 })).load()).length).toBe(1);
  });

  it('deletes an entry only when no destination is owed any more', async () => {
    const box = createOutbox(openKV('t', () => {}), () => {}, () => ({ cap: 10, ttl: 1e9 }));
    const e = entry('x', 1, { klaviyo: false, relay: false });
    await box.add(e);
    e.to.klaviyo = true;
    await box.save(e);
    expect((await box.load())[0].to).toEqual({ klaviyo: true, relay: false });
    e.to.relay = true;
    await box.save(e);
    expect(await box.load()).toEqual([]);
  });

  it('routes an entry stored before the config once, atomically: a second tab routing it later keeps the first result', async () => {
    const limits = () => ({ cap: 10, ttl: 1e9 });
    const tabA = createOutbox(openKV('t', () => {}), () => {}, limits);
    const tabB = createOutbox(openKV('t', () => {}), () => {}, limits);
    const unrouted = (): OutboxEntry => {
      const e = entry('u', 1, { relay: false });
      delete (e.event as any).route;
      return e;
    };
    await tabA.add(unrouted());
    const [routedByB] = await tabB.route(await tabB.load(), () => 'client');
    expect(routedByB).toMatchObject({ event: { route: 'client' }, to: { klaviyo: false, relay: false } });
    routedByB.to.klaviyo = true; // B delivered the Klaviyo copy
    await tabB.save(routedByB);
    const [routedByA] = await tabA.route([unrouted()], () => 'server');
    expect(routedByA).toMatchObject({ event: { route: 'client' }, to: { klaviyo: true, relay: false } });
    routedByB.to.relay = true;
    await tabB.save(routedByB);
    expect(await tabA.route([unrouted()], () => 'server')).toEqual([]);
  });
});

describe('IndexedDB unavailable', () => {
  it('falls back to memory, warns once, and still queues, delivers and caps', async () => {
    const { sent, state } = freshBrowser(() => 'network-error');
    delete (globalThis as any).indexedDB;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const api = createRelay({ publicKey: 'ABC123', klaviyoUrl: 'https://k.test', autoPage: false, maxEvents: 2 });
    const hooks = recordHooks(api);
    api.track('One');
    api.track('Two');
    api.track('Three');
    await isReady(api);
    await eventually(() => expect(hooks.queued).toHaveLength(3));
    expect(warn.mock.calls.filter((c) => /IndexedDB is unavailable/.test(c[0]))).toHaveLength(1);
    expect(hooks.dropped).toMatchObject([{ reason: 'cap', event: { name: 'One' } }]);
    expect((await api.pending()).map((p) => p.name)).toEqual(['Two', 'Three']);
    await eventually(() => expect(sent).toHaveLength(2)); // the load-time flush tried both, offline
    state.respond = () => new Response(null, { status: 202 });
    window.dispatchEvent(new Event('online'));
    await eventually(async () => expect(await api.pending()).toEqual([]));
    expect(sent.filter((r) => r.keepalive !== undefined).map((r) => r.body.data.attributes.metric.data.attributes.name).sort()).toEqual(['Three', 'Three', 'Two', 'Two']);
    expect(hooks.sent).toHaveLength(2);
    warn.mockRestore();
  });

  it('a failing write (quota) keeps the event in memory and warns once', async () => {
    const warnings: string[] = [];
    const box = createOutbox(openKV('q', (r) => warnings.push(r)), () => {}, () => ({ cap: 10, ttl: 1e9 }));
    const real = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('quota', 'QuotaExceededError');
    };
    try {
      expect(await box.add(entry('a', 1))).toBe(false);
      expect(await box.add(entry('b', 2))).toBe(false);
    } finally {
      IDBObjectStore.prototype.put = real;
    }
    expect(warnings).toEqual(['quota']);
    expect(await box.add(entry('c', 3))).toBe(false); // IndexedDB is not tried again
    expect((await box.load()).map((e) => e.event.unique_id)).toEqual(['a', 'b', 'c']);
  });

  it('an entry added while a load is under way stays if IndexedDB then fails', async () => {
    const warnings: string[] = [];
    const box = createOutbox(openKV('q', (r) => warnings.push(r)), () => {}, () => ({ cap: 10, ttl: 1e9 }));
    await box.add(entry('a', 1));
    const loading = box.load();
    const real = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('quota', 'QuotaExceededError');
    };
    try {
      const written = box.add(entry('b', 2));
      expect((await loading).map((e) => e.event.unique_id)).toEqual(['a', 'b']);
      expect(await written).toBe(false);
    } finally {
      IDBObjectStore.prototype.put = real;
    }
    expect(warnings).toEqual(['quota']);
    expect((await box.load()).map((e) => e.event.unique_id)).toEqual(['a', 'b']);
  });

  it('an entry stored before the config is routed in memory too', async () => {
    delete (globalThis as any).indexedDB;
    const queued: string[] = [];
    const box = createOutbox(openKV('q', () => {}), (hook, i) => hook == 'queued' && queued.push(i.event!.unique_id), () => ({ cap: 10, ttl: 1e9 }));
    const unrouted = entry('u', 1, { relay: false });
    delete (unrouted.event as any).route;
    await box.add(unrouted);
    const [routed] = await box.route(await box.load(), () => 'client');
    expect(routed).toMatchObject({ event: { unique_id: 'u', route: 'client' }, to: { klaviyo: false, relay: false } });
    expect(queued).toEqual(['u']);
    expect((await box.load()).map((e) => e.event.route)).toEqual(['client']);
  });
});

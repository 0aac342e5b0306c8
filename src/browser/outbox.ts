// The durable outbox: one IndexedDB key per event (`e:<unique_id>`), written before any network attempt.
// An entry lists each destination it still owes; it is deleted only when every one has answered 2xx (or dropped it).
// The outbox also keeps every entry in memory (`live`): without IndexedDB, that is where events wait for this page.
import type { KV } from './storage.js';
import type { RelayEvent, Route } from '../shared/wire.js';
import type { Destination, HookInfo, HookName, OutboxEntry } from './types.js';

const PREFIX = 'e:';
export const DEFAULT_CAP = 1000;
export const DEFAULT_TTL = 7 * 864e5;

export interface Outbox {
  /** This tab's view: its own entries plus whatever the last `load()` found. Read synchronously on pagehide. */
  live: Map<string, OutboxEntry>;
  /** Stores a new entry (evicting the oldest past the cap); resolves after the commit. */
  add(entry: OutboxEntry): Promise<boolean>;
  /** Persists a changed entry, or deletes it once no destination is owed. */
  save(entry: OutboxEntry): Promise<boolean>;
  /** Re-reads the store (other tabs write to it), drops expired entries and applies the cap; oldest first. */
  load(): Promise<OutboxEntry[]>;
  /**
   * Gives a route to entries stored before the workflow config was known (their `event.route` is unset). Each is
   * routed in one atomic read-modify-write, so when two tabs race the first one wins and no delivery state is
   * overwritten; each is reported `queued` once it has its route. Resolves with the stored entries, leaving out any
   * already gone. While `routeOf` answers undefined (the workflow is not known yet) an entry stays unrouted.
   */
  route(entries: OutboxEntry[], routeOf: (event: RelayEvent) => Route | undefined): Promise<OutboxEntry[]>;
  /** Drops everything (consent denied). */
  clear(reason: string): Promise<void>;
}

export const owes = (entry: OutboxEntry, dest: Destination) => entry.to[dest] === false;
const byAge = (a: OutboxEntry, b: OutboxEntry) => a.at - b.at;

export function createOutbox(
  kv: KV,
  /** Reports `dropped` (evicted, expired, cleared) and `queued` (routed). */
  emit: (hook: HookName, info: HookInfo) => void,
  limits: () => { cap: number; ttl: number },
): Outbox {
  const live = new Map<string, OutboxEntry>();
  const key = (e: OutboxEntry) => PREFIX + e.event.unique_id;
  /** Stores `value` as the entry's record in both views; undefined deletes it. */
  const put = (e: OutboxEntry, value?: OutboxEntry) => {
    value ? live.set(e.event.unique_id, value) : live.delete(e.event.unique_id);
    return kv.put(key(e), value);
  };
  const drop = (e: OutboxEntry, reason: string) => (emit('dropped', { event: e.event, reason }), put(e));
  const evictOverCap = () => {
    const { cap } = limits();
    if (live.size > cap) [...live.values()].sort(byAge).slice(0, -cap).map((e) => drop(e, 'cap'));
  };
  const save = (e: OutboxEntry) => put(e, Object.values(e.to).includes(false) ? e : undefined);
  async function load() {
    const stored = await kv.list<OutboxEntry>(PREFIX);
    const oldest = Date.now() - limits().ttl;
    // Without IndexedDB, this tab's own entries (in memory) are all there are.
    if (stored) {
      live.clear();
      for (const e of stored) live.set(e.event.unique_id, e);
    }
    for (const e of live.values()) if (e.at < oldest) drop(e, 'expired');
    evictOverCap();
    return [...live.values()].sort(byAge);
  }
  return {
    live,
    add(e) {
      live.set(e.event.unique_id, e);
      evictOverCap();
      return save(e);
    },
    save,
    load,
    route: (entries, routeOf) =>
      Promise.all(
        entries.map((e) =>
          e.event.route || !routeOf(e.event)
            ? e
            : kv
                .update<OutboxEntry>(key(e), (old) => {
                  if (old && !old.event.route && (old.event.route = routeOf(old.event)!) == 'client') old.to.klaviyo = false;
                  return old;
                }, e)
                .then((stored) => {
                  if (stored) live.set(e.event.unique_id, stored), emit('queued', { event: stored.event });
                  else live.delete(e.event.unique_id);
                  return stored;
                }),
        ),
      ).then((routed) => routed.filter((e): e is OutboxEntry => !!e)),
    async clear(reason) {
      await Promise.all((await load()).map((e) => drop(e, reason)));
    },
  };
}

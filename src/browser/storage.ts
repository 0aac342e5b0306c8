// One IndexedDB object store (via idb-keyval) with an in-memory twin. Writes made in the same tick are committed in
// one transaction (still one key per value), which is what lets 1,000 `track` calls queue durably in a few ms.
// When IndexedDB is missing, blocked or over quota, the store switches to memory for the rest of the page and warns once.
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';

export interface KV {
  get<T>(key: string): Promise<T | undefined>;
  /** Write (or delete, with `undefined`); resolves once committed: true in IndexedDB, false when kept in memory only. */
  put(key: string, value: unknown): Promise<boolean>;
  /** Every value whose key starts with `prefix`; IndexedDB is authoritative (other tabs write there too). */
  list<T>(prefix: string): Promise<T[]>;
  /** Atomic read-modify-write (one readwrite transaction) across tabs; resolves with the value now stored. */
  update<T>(key: string, fn: (old: T | undefined) => T | undefined): Promise<T | undefined>;
  readonly memoryOnly: boolean;
}

export function openKV(dbName: string, onFallback: (reason: string) => void): KV {
  const mem = new Map<string, unknown>();
  let idb: UseStore | undefined;
  let batch: Map<string, unknown> | undefined;
  let commit: Promise<boolean> = Promise.resolve(true);
  const fail = (e: unknown): false => {
    if (idb) onFallback(String((e as Error)?.message || e));
    idb = undefined;
    return false;
  };
  // Runs one transaction; a synchronous throw (no indexedDB global) becomes a rejection.
  const tx = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => T | PromiseLike<T>) =>
    new Promise<T>((ok) => ok(idb!(mode, fn)));
  try {
    idb = createStore(dbName, 'kv');
  } catch (e) {
    fail(e);
  }
  const range = (prefix: string) => IDBKeyRange.bound(prefix, prefix + '\uffff');

  const kv: KV = {
    get memoryOnly() {
      return !idb;
    },
    get: <T>(key: string) =>
      commit.then(() => (idb ? tx('readonly', (s) => promisifyRequest(s.get(key))).catch(fail) : 0)).then((v) =>
        idb ? (v as T | undefined) : (mem.get(key) as T | undefined),
      ),
    put(key, value) {
      value === undefined ? mem.delete(key) : mem.set(key, value);
      if (!batch) {
        const writes = (batch = new Map());
        commit = commit.then(() => {
          batch = undefined;
          if (!idb) return false;
          return tx('readwrite', (s) => {
            writes.forEach((v, k) => (v === undefined ? s.delete(k) : s.put(v, k)));
            return promisifyRequest(s.transaction);
          }).then(() => true, fail);
        });
      }
      batch.set(key, value);
      return commit;
    },
    list: <T>(prefix: string) =>
      commit
        .then(() =>
          idb &&
          tx('readonly', (s) => {
            const keys = s.getAllKeys(range(prefix));
            return promisifyRequest(s.getAll(range(prefix))).then((values) => [keys.result, values]);
          }).catch(fail),
        )
        .then((found) => {
          const mine = (k: string) => !k.indexOf(prefix);
          // IndexedDB wins, except for writes still waiting in the next batch (they are newer).
          const settled = (k: string) => !batch?.has(k);
          if (found) {
            [...mem.keys()].filter(mine).filter(settled).forEach((k) => mem.delete(k));
            found[0].forEach((k, i) => settled(k as string) && mem.set(k as string, found[1][i]));
          }
          return [...mem].filter(([k]) => mine(k)).map(([, v]) => v as T);
        }),
    update: <T>(key: string, fn: (old: T | undefined) => T | undefined) => {
      const inMemory = () => {
        const next = fn(mem.get(key) as T | undefined);
        next === undefined ? mem.delete(key) : mem.set(key, next);
        return next;
      };
      return commit.then(() => {
        if (!idb) return inMemory();
        let next: T | undefined;
        return tx('readwrite', (s) => {
          const req = s.get(key);
          req.onsuccess = () => {
            next = fn(req.result);
            next === undefined ? s.delete(key) : s.put(next, key);
          };
          return promisifyRequest(s.transaction);
        }).then(() => (next === undefined ? mem.delete(key) : mem.set(key, next), next), (e) => (fail(e), inMemory()));
      });
    },
  };
  return kv;
}

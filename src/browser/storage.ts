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
}

export function openKV(dbName: string, onFallback: (reason: string) => void): KV {
  const mem = new Map<string, any>();
  // idb-keyval opens the database lazily: a missing `indexedDB` shows up as the first transaction's failure.
  let idb: UseStore | undefined = createStore(dbName, 'kv');
  let batch: Map<string, unknown> | undefined;
  let commit: Promise<unknown> = Promise.resolve();
  const memPut = (key: string, value: unknown) => (value === undefined ? mem.delete(key) : mem.set(key, value));
  /** Runs one transaction after the pending writes; undefined when in memory (or once IndexedDB has just failed). */
  const tx = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => T | PromiseLike<T>): Promise<T | undefined> =>
    commit.then(() => idb && idb(mode, fn)).catch((e): undefined => {
      if (idb) onFallback(String(e?.message || e));
      idb = undefined;
    });

  return {
    get: (key) => tx('readonly', (s) => promisifyRequest(s.get(key))).then((v) => (idb ? v : mem.get(key))),
    put(key, value) {
      memPut(key, value);
      if (!batch) {
        const writes = (batch = new Map());
        commit = tx('readwrite', (s) => {
          batch = undefined;
          writes.forEach((v, k) => (v === undefined ? s.delete(k) : s.put(v, k)));
          return promisifyRequest(s.transaction);
        }).then(() => (batch = undefined, !!idb));
      }
      batch.set(key, value);
      return commit as Promise<boolean>;
    },
    list(prefix) {
      const ours = (k: string) => !k.indexOf(prefix);
      const read = (): Promise<any[]> => {
        const before = commit;
        return tx('readonly', (s) => {
          const range = IDBKeyRange.bound(prefix, prefix + '\uffff');
          const keys = s.getAllKeys(range);
          return promisifyRequest(s.getAll(range)).then((values) => [keys.result as string[], values] as const);
        }).then((found) => {
          // Writes batched after the read began commit after it, so it cannot see them: read again behind them.
          // A read that nothing overtook is the whole truth (other tabs write there too), and memory follows it.
          if (found && commit != before) return read();
          if (found) {
            for (const k of [...mem.keys()]) if (ours(k)) mem.delete(k);
            found[0].forEach((k, i) => mem.set(k, found[1][i]));
          }
          return [...mem.keys()].filter(ours).map((k) => mem.get(k));
        });
      };
      return read();
    },
    update(key, fn) {
      let next: any;
      return tx('readwrite', (s) => {
        const req = s.get(key);
        req.onsuccess = () => {
          next = fn(req.result);
          next === undefined ? s.delete(key) : s.put(next, key);
        };
        return promisifyRequest(s.transaction);
      }).then(() => (memPut(key, idb ? next : (next = fn(mem.get(key)))), next));
    },
  };
}

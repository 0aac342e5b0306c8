// One IndexedDB object store (via idb-keyval). Writes made in the same tick are committed in one transaction (still
// one key per value), which is what lets 1,000 `track` calls queue durably in a few ms.
// When IndexedDB is missing, blocked or over quota, the store stops trying for the rest of the page and warns once;
// its callers keep what they hold in memory (the outbox keeps its entries).
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';

export interface KV {
  /** The stored value; undefined when there is none, or no IndexedDB. */
  get<T>(key: string): Promise<T | undefined>;
  /** Write (or delete, with `undefined`); resolves once committed: true, or false when IndexedDB is unavailable. */
  put(key: string, value: unknown): Promise<boolean>;
  /**
   * Every value whose key starts with `prefix`, including every write made before it resolves (other tabs write
   * there too); undefined when IndexedDB is unavailable.
   */
  list<T>(prefix: string): Promise<T[] | undefined>;
  /**
   * Atomic read-modify-write (one readwrite transaction) across tabs; resolves with the value now stored. Without
   * IndexedDB, `fn` is applied to `inMemory`, the caller's own copy.
   */
  update<T>(key: string, fn: (old: T | undefined) => T | undefined, inMemory?: T): Promise<T | undefined>;
}

export function openKV(dbName: string, onFallback: (reason: string) => void): KV {
  // idb-keyval opens the database lazily: a missing `indexedDB` shows up as the first transaction's failure.
  let idb: UseStore | undefined = createStore(dbName, 'kv');
  let batch: Map<string, unknown> | undefined;
  let commit: Promise<unknown> = Promise.resolve();
  /** Runs one transaction after the pending writes; undefined without IndexedDB (or once it has just failed). */
  const tx = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => T | PromiseLike<T>): Promise<T | undefined> =>
    commit.then(() => idb && idb(mode, fn)).catch((e): undefined => {
      if (idb) onFallback(String(e?.message || e));
      idb = undefined;
    });

  const list = <T>(prefix: string): Promise<T[] | undefined> => {
    const before = commit;
    return tx('readonly', (s) => promisifyRequest(s.getAll(IDBKeyRange.bound(prefix, prefix + '\uffff')))).then((found) =>
      // Writes batched after the read began commit after it, so it could not see them: read again behind them.
      found && commit != before ? list<T>(prefix) : found,
    );
  };

  return {
    get: (key) => tx('readonly', (s) => promisifyRequest(s.get(key))),
    put(key, value) {
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
    list,
    update(key, fn, inMemory) {
      let next: any;
      return tx('readwrite', (s) => {
        const req = s.get(key);
        req.onsuccess = () => {
          next = fn(req.result);
          next === undefined ? s.delete(key) : s.put(next, key);
        };
        return promisifyRequest(s.transaction);
      }).then(() => (idb ? next : fn(inMemory)));
    },
  };
}

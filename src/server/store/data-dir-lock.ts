// The embedded store's claim on its data folder: one `serve` process per RELAY_DATA_DIR.
import Database from 'better-sqlite3';
import { join, resolve } from 'node:path';
import { ensureDataDir, isUnwritable, StartupError, unwritableDataDir } from '../startup.js';

/**
 * Claim the data folder for this process. The claim is an exclusive SQLite lock on `serve.lock` (an OS-level
 * fcntl lock), so the kernel releases it the moment the process dies, even by kill -9: a restart never waits for
 * a stale claim, and a second `serve` on the same folder is refused instead of releasing the first one's outbox
 * claims. Other processes (`klaviyo-relay sync`, `logs`) open the database itself and are not blocked.
 */
export function lockDataDir(dir: string): { release(): void } {
  ensureDataDir(dir);
  const path = join(dir, 'serve.lock');
  let lock: Database.Database | undefined;
  try {
    lock = new Database(path, { timeout: 0 });
    lock.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the exclusive lock; in EXCLUSIVE locking mode it is held until the connection closes.
    lock.exec('CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, started_at INTEGER NOT NULL)');
    lock.prepare('INSERT OR REPLACE INTO owner (id, pid, started_at) VALUES (1, ?, ?)').run(process.pid, Date.now());
  } catch (err) {
    lock?.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new StartupError(
        `RELAY_DATA_DIR ${resolve(dir)} is in use by another klaviyo-relay serve process; stop it, or give each server its own RELAY_DATA_DIR`,
      );
    }
    if (isUnwritable(err)) throw unwritableDataDir(dir, err);
    throw err;
  }
  return { release: () => lock!.close() };
}


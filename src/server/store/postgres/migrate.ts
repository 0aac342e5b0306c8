// Versioned schema migrations on PostgreSQL. Each module (core store, audiences, …) owns an append-only list
// of SQL steps; step i is version i+1. Migrations run at start under an advisory lock, so instances that start
// together take turns and each step is applied exactly once, in its own transaction.
import type { Pool } from './pool.js';
import { ADVISORY_LOCK_NAMESPACE, ADVISORY_LOCKS } from './locks.js';

export interface MigrationSet {
  /** Unique per module, e.g. 'core' or 'audiences'. */
  module: string;
  /** Ordered SQL steps. Append only: never edit or reorder a step that has shipped. */
  steps: string[];
}

/** Apply the not-yet-applied steps of each set, in order. Returns how many steps ran. */
export async function runMigrations(pool: Pool, sets: MigrationSet[]): Promise<number> {
  const client = await pool.connect();
  let applied = 0;
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK_NAMESPACE, ADVISORY_LOCKS.migrations]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        module TEXT NOT NULL, version INTEGER NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (module, version))`);
      for (const { module, steps } of sets) {
        const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations WHERE module = $1', [module]);
        const done = new Set(rows.map((r) => r.version));
        for (const [i, sql] of steps.entries()) {
          if (done.has(i + 1)) continue;
          await client.query('BEGIN');
          try {
            await client.query(sql);
            await client.query('INSERT INTO schema_migrations (module, version, applied_at) VALUES ($1, $2, $3)', [module, i + 1, Date.now()]);
            await client.query('COMMIT');
            applied++;
          } catch (err) {
            await client.query('ROLLBACK');
            throw new Error(`migration ${module} v${i + 1} failed: ${(err as Error).message}`, { cause: err });
          }
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK_NAMESPACE, ADVISORY_LOCKS.migrations]);
    }
  } finally {
    client.release();
  }
  return applied;
}

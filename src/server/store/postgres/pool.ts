// The PostgreSQL connection pool (node-postgres). Every query binds its values as parameters.
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

const INT8 = 20;
const NUMERIC = 1700;

/** Ids, counts and epoch-millisecond times are BIGINT; they fit a JS number, so read them as numbers, not strings. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 || oid === NUMERIC) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface PoolOptions {
  /** Connections this process keeps at most (default 10). */
  max?: number;
  /** Errors on idle connections (e.g. the server restarted): logged, the pool reconnects on next use. */
  onError?: (err: Error) => void;
}

export function createPool(databaseUrl: string, options: PoolOptions = {}): Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.max ?? 10,
    types,
    application_name: 'klaviyo-relay',
  });
  pool.on('error', (err) => options.onError?.(err));
  return pool;
}

/** A dedicated connection outside the pool, for session state such as a held advisory lock. */
export function createSessionClient(databaseUrl: string): pg.Client {
  return new pg.Client({ connectionString: databaseUrl, types, application_name: 'klaviyo-relay', keepAlive: true });
}

/** Run `work` in one transaction on a pooled connection: COMMIT when it resolves, ROLLBACK when it throws. */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

// Forwarder leadership on PostgreSQL: a session-level advisory lock held on a connection of its own. Exactly one
// session holds it; when the holder's process dies or its connection breaks, PostgreSQL ends the session and the
// lock is free for the next instance that tries. TCP keepalives on the server side notice a vanished host.
import type pg from 'pg';
import type { ForwarderLeadership } from '../types.js';
import { createSessionClient } from './pool.js';
import { ADVISORY_LOCK_NAMESPACE, ADVISORY_LOCKS } from './locks.js';

export function createAdvisoryLeadership(databaseUrl: string): ForwarderLeadership {
  let session: pg.Client | undefined;
  let held = false;
  let releasing = false;
  const listeners: ((reason: string) => void)[] = [];

  /** The session is gone: whatever it held is released by PostgreSQL. */
  function dropped(reason: string) {
    const client = session;
    session = undefined;
    client?.end().catch(() => {});
    if (held && !releasing) {
      held = false;
      for (const listener of listeners) listener(reason);
    }
    held = false;
  }

  async function connect(): Promise<pg.Client> {
    const client = createSessionClient(databaseUrl);
    client.on('error', (err) => {
      if (session === client) dropped(`leadership connection failed: ${err.message}`);
    });
    client.on('end', () => {
      if (session === client) dropped('leadership connection closed');
    });
    await client.connect();
    // A holder whose host vanishes (no FIN/RST) is noticed by the server within ~25 s, which frees the lock.
    await client.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3');
    session = client;
    return client;
  }

  return {
    shared: true,
    async acquire() {
      try {
        const client = session ?? (await connect());
        if (held) {
          await client.query('SELECT 1'); // still connected, so still holding
          return held;
        }
        const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [ADVISORY_LOCK_NAMESPACE, ADVISORY_LOCKS.forwarder]);
        held = rows[0]!.ok;
        return held;
      } catch (err) {
        dropped(`leadership check failed: ${(err as Error).message}`);
        return false;
      }
    },
    get held() {
      return held;
    },
    onLost(listener) {
      listeners.push(listener);
    },
    async release() {
      const client = session;
      if (!client) return;
      releasing = true;
      try {
        // Ending the session releases the lock; unlocking first frees it even if end() is slow.
        if (held) await client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK_NAMESPACE, ADVISORY_LOCKS.forwarder]).catch(() => {});
        held = false;
        session = undefined;
        await client.end().catch(() => {});
      } finally {
        releasing = false;
      }
    },
  };
}

// RelayStore on PostgreSQL, shared by any number of `serve` instances. Same semantics as the SQLite store:
// events deduplicated by unique_id, profiles stitched by the shared planner (stitching.ts), `server` items queued.
// Across instances:
// - A batch locks its identifiers (transaction-scoped advisory locks, in key order) and then the profiles
//   they belong to (row locks), so two instances never stitch one person from stale reads. A conflict that can
//   only be seen after waiting (a merge deleted a profile; the same unique_id committed elsewhere; a deadlock)
//   rolls the batch back and runs it again.
// - Outbox claims carry the claiming instance and a lease on the database clock. Only an expired lease (its holder
//   died or lost its connection) makes an inflight item due again, so no item is sent by two live instances.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ValidEvent } from '../../../shared/wire-schema.js';
import { IDENTIFY_EVENT } from '../../../shared/workflow.js';
import {
  aliasValue, assignProfileIds, batchAliases, planIngest, type IngestPlan, type ProfileState,
} from '../stitching.js';
import { toOutboxItem, toStoredProfile, type ClaimedRow } from '../row-mapping.js';
import type {
  IngestResult, OutboxRow, OutboxStatus, RecentEvent, RelayStore, StoreCounts, StoredProfile,
} from '../types.js';
import { MAX_KEY_LENGTH, MAX_KEYS, PROFILE_SCAN, rankedKeys, rankedProfileKeys, type PropertyKeyCount } from '../property-keys.js';
import { SEGMENT_PROFILE_COLUMNS } from '../segment-rules.js';
import { inTransaction, type Pool, type PoolClient } from './pool.js';
import { createAdvisoryLeadership } from './leadership.js';

export const DEFAULT_CLAIM_LEASE_MS = 30_000;

export interface PostgresStoreOptions {
  pool: Pool;
  /** For the forwarder leadership's own session connection. */
  databaseUrl: string;
  /** Names this instance in outbox claims (default host:pid:random). */
  instanceId?: string;
  /** How long a claim holds without renewal (default 30 s): a killed instance's items wait this long at most. */
  claimLeaseMs?: number;
}

/** The database's clock in epoch ms: leases compare against one clock whatever the instances' clocks say. */
const DB_NOW = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

const PROFILE_COLUMNS = [
  'id', 'email', 'phone_number', 'external_id', 'anonymous_id', 'kx', 'first_name', 'last_name', 'organization', 'title',
  'locale', 'image', 'location', 'properties', 'first_seen', 'last_seen', 'updated_at',
] as const;
const PROFILE_RECORD = `id bigint, email text, phone_number text, external_id text, anonymous_id text, kx text,
  first_name text, last_name text, organization text, title text, locale text, image text, location jsonb, properties jsonb,
  first_seen bigint, last_seen bigint, updated_at bigint`;
/**
 * New profiles get their ids here ($1: the plan's negative placeholders, in order) and are written together with
 * the updated ones ($2); answers placeholder → id.
 */
const WRITE_PROFILES = `WITH new_ids AS MATERIALIZED (
    SELECT x.placeholder, nextval(pg_get_serial_sequence('profiles', 'id')) AS id FROM unnest($1::bigint[]) AS x(placeholder)
  ), written AS (
    INSERT INTO profiles (${PROFILE_COLUMNS.join(', ')})
    SELECT COALESCE(n.id, p.id), ${PROFILE_COLUMNS.filter((c) => c !== 'id').map((c) => `p.${c}`).join(', ')}
      FROM jsonb_to_recordset($2::jsonb) AS p(${PROFILE_RECORD}) LEFT JOIN new_ids n ON n.placeholder = p.id
    ON CONFLICT (id) DO UPDATE SET ${PROFILE_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')}
  )
  SELECT placeholder, id FROM new_ids`;

/**
 * The samples property keys are counted over (property-keys.ts): the newest events of one name walk
 * events_name_time backwards, the newest profiles the primary key (up to PROFILE_SCAN of them, keeping those with
 * custom properties or a location), and both stop after the sample (no sort).
 */
export const EVENT_SAMPLE_SQL = 'SELECT properties FROM events WHERE name = $1 ORDER BY time DESC LIMIT $2';
const PROFILE_SAMPLE_COLUMNS = ['id', 'properties', 'location', ...SEGMENT_PROFILE_COLUMNS].join(', ');
export const PROFILE_SAMPLE_SQL = `SELECT ${PROFILE_SAMPLE_COLUMNS} FROM (SELECT ${PROFILE_SAMPLE_COLUMNS} FROM profiles ORDER BY id DESC LIMIT ${PROFILE_SCAN}) newest
  WHERE properties IS NOT NULL OR location IS NOT NULL ORDER BY id DESC LIMIT $1`;

/** A JSONB column as an object to take keys from: jsonb_object_keys fails on anything else (and NULL has none). */
const objectOrEmpty = (column: string) => `CASE WHEN jsonb_typeof(${column}) = 'object' THEN ${column} ELSE '{}'::jsonb END`;

/** Stored aliases re-pointed ($1 kinds, $2 values, $3 profile ids): rare, so a statement of its own. */
const MOVE_ALIASES = `UPDATE profile_aliases a SET profile_id = x.profile_id
  FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(kind, value, profile_id) WHERE a.kind = x.kind AND a.value = x.value`;

/**
 * The rest of a batch in one statement: aliases linked ($1-$3), events ($4, in order) with their outbox items,
 * and the per-name counts ($5-$7) in this connection's slot.
 */
const WRITE_EVENTS = `WITH linked AS (
    INSERT INTO profile_aliases (kind, value, profile_id) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
  ), inserted AS (
    INSERT INTO events (unique_id, public_key, type, name, properties, time, value, value_currency, route, profile_id, profile, received_at)
    SELECT e.unique_id, e.public_key, e.type, e.name, e.properties, e.time, e.value, e.value_currency, e.route, e.profile_id, e.profile, e.received_at
    FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS x(doc, ord),
      jsonb_to_record(x.doc) AS e(unique_id text, public_key text, type text, name text, properties jsonb, time bigint,
        value float8, value_currency text, route text, profile_id bigint, profile jsonb, received_at bigint)
    ORDER BY x.ord
    RETURNING id, route, received_at
  ), queued AS (
    INSERT INTO forward_outbox (event_id, updated_at) SELECT id, received_at FROM inserted WHERE route = 'server'
  )
  INSERT INTO event_name_counts (name, slot, count, last_seen_at)
    SELECT x.name, pg_backend_pid() % 64, x.count, x.last_seen_at FROM unnest($5::text[], $6::bigint[], $7::bigint[]) AS x(name, count, last_seen_at)
  ON CONFLICT (name, slot) DO UPDATE SET count = event_name_counts.count + excluded.count,
    last_seen_at = GREATEST(event_name_counts.last_seen_at, excluded.last_seen_at)`;

/** Take the batch's identifiers in key order ($1 kinds, $2 values): two batches sharing one take turns. */
const LOCK_IDENTIFIERS = `SELECT pg_advisory_xact_lock(k) FROM (
    SELECT DISTINCT hashtextextended(kind || ':' || value, 0) AS k FROM unnest($1::text[], $2::text[]) AS x(kind, value) ORDER BY 1
  ) AS keys`;

/**
 * One read for both: which unique_ids ($1) are stored already and on which route, and who owns the identifiers
 * ($2 kinds, $3 values).
 */
const READ_KNOWN = `SELECT 'stored' AS kind, e.unique_id AS value, NULL::bigint AS profile_id, e.route
    FROM unnest($1::text[]) AS u(unique_id) CROSS JOIN LATERAL (SELECT unique_id, route FROM events WHERE events.unique_id = u.unique_id) AS e
  UNION ALL
  SELECT x.kind, x.value, a.profile_id, NULL FROM unnest($2::text[], $3::text[]) AS x(kind, value)
    CROSS JOIN LATERAL (SELECT profile_id FROM profile_aliases WHERE kind = x.kind AND value = x.value) AS a`;

/**
 * Stored client events handed over as server ($1 unique_ids): re-routed and queued. The route test makes a
 * concurrent second hand-over of the same event a no-op; answers the unique_ids actually queued.
 */
const HAND_OVER = `WITH rerouted AS (
    UPDATE events SET route = 'server' WHERE unique_id = ANY($1::text[]) AND route = 'client' RETURNING id, unique_id
  ), queued AS (
    INSERT INTO forward_outbox (event_id, updated_at) SELECT id, $2 FROM rerouted
  )
  SELECT unique_id FROM rerouted`;

const LOCK_PROFILES = 'SELECT * FROM profiles WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE';

const CLAIM = `WITH pending AS (
    SELECT event_id, next_attempt_at AS due_at FROM forward_outbox
      WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, event_id LIMIT $2 FOR UPDATE SKIP LOCKED
  ), lapsed AS (
    SELECT event_id, 0::bigint AS due_at FROM forward_outbox
      WHERE status = 'inflight' AND lease_until <= ${DB_NOW} ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED
  ), picked AS (
    SELECT event_id FROM (SELECT * FROM pending UNION ALL SELECT * FROM lapsed) AS due ORDER BY due_at, event_id LIMIT $2
  ), claimed AS (
    -- Rows another claimer has locked are skipped above; the status test is repeated here all the same.
    UPDATE forward_outbox o SET status = 'inflight', attempts = o.attempts + 1, claimed_by = $3,
        lease_until = ${DB_NOW} + $4, updated_at = $1
      FROM picked WHERE o.event_id = picked.event_id
        AND ((o.status = 'pending' AND o.next_attempt_at <= $1) OR (o.status = 'inflight' AND o.lease_until <= ${DB_NOW}))
      RETURNING o.event_id, o.attempts
  )
  SELECT c.event_id, c.attempts, e.unique_id, e.type, e.name, e.properties, e.time, e.value, e.value_currency,
      e.profile, e.profile_id, p.email AS known_email, p.phone_number AS known_phone, p.external_id AS known_external_id
    FROM claimed c JOIN events e ON e.id = c.event_id LEFT JOIN profiles p ON p.id = e.profile_id
    ORDER BY c.event_id`;

const OUTBOX_ROWS = `SELECT o.event_id AS "eventId", e.unique_id, e.type, e.name, o.status, o.attempts, o.next_attempt_at, o.last_error, o.note
  FROM forward_outbox o JOIN events e ON e.id = o.event_id`;

/**
 * PostgreSQL text cannot hold U+0000, which JSON (and so an event) may carry: such characters become U+FFFD, the
 * replacement character, so the event is stored rather than refused. Only an odd run of backslashes before
 * `u0000` is an escape; `\\u0000` is a backslash followed by text.
 */
function withoutNul(events: ValidEvent[]): ValidEvent[] {
  const json = JSON.stringify(events);
  if (!json.includes('\\u0000')) return events;
  return JSON.parse(json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd')) as ValidEvent[];
}

/**
 * The hot statements run as named prepared statements: each connection parses and plans them once, not on every
 * batch (their CTEs cost more to plan than to run on a small batch).
 */
const prepared = (name: string, text: string) => (values: unknown[]) => ({ name, text, values });
const statements = {
  lockIdentifiers: prepared('relay_lock_identifiers', LOCK_IDENTIFIERS),
  readKnown: prepared('relay_read_known', READ_KNOWN),
  lockProfiles: prepared('relay_lock_profiles', LOCK_PROFILES),
  writeProfiles: prepared('relay_write_profiles', WRITE_PROFILES),
  writeEvents: prepared('relay_write_events', WRITE_EVENTS),
  claim: prepared('relay_claim', CLAIM),
};

/** Errors after which a batch runs again from the start: the retry sees what the other transaction committed. */
const RETRYABLE = new Set([
  '40P01', // deadlock detected
  '40001', // serialization failure
  '23505', // unique violation: the same unique_id (or identifier) was committed by another instance meanwhile
]);
class StaleRead extends Error {}
const MAX_ATTEMPTS = 8;

/** Group commit: at most this many ingest transactions per instance at once, each of up to GROUP_EVENTS events. */
const INGEST_TRANSACTIONS = 2;
const GROUP_EVENTS = 2000;

interface PendingBatch {
  publicKey: string;
  events: ValidEvent[];
  receivedAt: number;
  resolve(result: IngestResult): void;
  reject(err: unknown): void;
}

async function withRetries<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      const retryable = err instanceof StaleRead || RETRYABLE.has((err as { code?: string }).code ?? '');
      if (!retryable || attempt >= MAX_ATTEMPTS) throw err;
    }
  }
}

export function createPostgresStore(options: PostgresStoreOptions): RelayStore {
  const { pool } = options;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseMs = options.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS;
  const leadership = createAdvisoryLeadership(options.databaseUrl);

  /** Write a plan over `group`'s events (in order): new and changed profiles, merges, then the rest at once. */
  async function applyPlan(c: PoolClient, plan: IngestPlan, group: PendingBatch[], batchOf: number[]): Promise<void> {
    const profiles = [...plan.created, ...plan.updated];
    if (profiles.length) {
      const { rows } = await c.query<{ placeholder: number; id: number }>(statements.writeProfiles([plan.created.map((p) => p.id), JSON.stringify(profiles)]));
      const ids = new Map(rows.map((r) => [r.placeholder, r.id]));
      assignProfileIds(plan, (placeholder) => ids.get(placeholder)!);
    }
    if (plan.merges.length) {
      const from = plan.merges.map((m) => m.from);
      const into = plan.merges.map((m) => m.into);
      await c.query(`UPDATE profile_aliases a SET profile_id = m.into_id FROM unnest($1::bigint[], $2::bigint[]) AS m(from_id, into_id)
        WHERE a.profile_id = m.from_id`, [from, into]);
      await c.query(`UPDATE events e SET profile_id = m.into_id FROM unnest($1::bigint[], $2::bigint[]) AS m(from_id, into_id)
        WHERE e.profile_id = m.from_id`, [from, into]);
      await c.query('DELETE FROM profiles WHERE id = ANY($1::bigint[])', [from]);
    }
    const byName = new Map<string, { count: number; lastSeenAt: number }>();
    const rows = plan.events.map(({ index, event: ev, route, time, profileId }) => {
      const { publicKey, receivedAt } = group[batchOf[index]!]!;
      // Identify events carry no name: they are counted under the name their workflow toggle uses.
      const name = ev.name ?? IDENTIFY_EVENT;
      const seen = byName.get(name) ?? { count: 0, lastSeenAt: time };
      byName.set(name, { count: seen.count + 1, lastSeenAt: Math.max(seen.lastSeenAt, time) });
      return {
        unique_id: ev.unique_id, public_key: publicKey, type: ev.type, name: ev.name ?? null, properties: ev.properties ?? {}, time,
        value: ev.value ?? null, value_currency: ev.value_currency ?? null, route, profile_id: profileId, profile: ev.profile,
        received_at: receivedAt,
      };
    });
    const columns = (list: IngestPlan['aliasInserts']) => [list.map((a) => a.kind), list.map((a) => a.value), list.map((a) => a.profileId)];
    if (plan.aliasMoves.length) await c.query(MOVE_ALIASES, columns(plan.aliasMoves));
    if (!rows.length && !plan.aliasInserts.length) return;
    const names = [...byName.keys()];
    // Last statement before COMMIT: the count rows stay locked as briefly as possible.
    await c.query(statements.writeEvents([
      ...columns(plan.aliasInserts), JSON.stringify(rows),
      names, names.map((n) => byName.get(n)!.count), names.map((n) => byName.get(n)!.lastSeenAt),
    ]));
  }

  /** Ingest several requests' batches in one transaction (in arrival order); one result per batch. */
  async function ingestGroup(group: PendingBatch[]): Promise<IngestResult[]> {
    const events = group.flatMap((b) => b.events);
    const batchOf = group.flatMap((b, i) => b.events.map(() => i));
    const now = Math.max(...group.map((b) => b.receivedAt));
    return inTransaction(pool, async (c) => {
      const aliases = batchAliases(events);
      const kinds = aliases.map((a) => a.kind);
      const values = aliases.map((a) => a.value);
      if (aliases.length) {
        await c.query(statements.lockIdentifiers([kinds, values]));
      }
      const { rows: known } = await c.query<{ kind: string; value: string; profile_id: number | null; route: string | null }>(
        statements.readKnown([events.map((e) => e.unique_id), kinds, values]));
      const storedRoutes = new Map<string, string>();
      const owners = new Map<string, number>();
      for (const r of known) {
        if (r.profile_id === null) storedRoutes.set(r.value, r.route!);
        else owners.set(`${r.kind}:${r.value}`, r.profile_id);
      }
      const profiles = new Map<number, ProfileState>();
      const ownerIds = [...new Set(owners.values())];
      if (ownerIds.length) {
        const locked = await c.query<ProfileState>(statements.lockProfiles([ownerIds]));
        // A profile gone by the time its lock was granted was merged away by another instance: read again.
        if (locked.rows.length < ownerIds.length) throw new StaleRead('a profile was merged meanwhile');
        for (const p of locked.rows) profiles.set(p.id, p);
      }
      const plan = planIngest(events, {
        storedRoute: (uniqueId) => storedRoutes.get(uniqueId),
        owner: (a) => owners.get(`${a.kind}:${a.value}`),
        profile: (id) => profiles.get(id)!,
      }, now);
      await applyPlan(c, plan, group, batchOf);
      const results = group.map(() => ({ stored: 0, duplicates: 0, queued: 0 }));
      for (const { index, route } of plan.events) {
        const result = results[batchOf[index]!]!;
        result.stored++;
        if (route === 'server') result.queued++;
      }
      for (const index of plan.duplicates) results[batchOf[index]!]!.duplicates++;
      if (plan.handOvers.length) {
        const { rows } = await c.query<{ unique_id: string }>(HAND_OVER, [plan.handOvers.map((h) => h.uniqueId), now]);
        const queued = new Set(rows.map((r) => r.unique_id));
        for (const { index, uniqueId } of plan.handOvers) {
          // Not queued: another instance handed it over first, so this one is a duplicate after all.
          if (queued.has(uniqueId)) results[batchOf[index]!]!.queued++;
          else results[batchOf[index]!]!.duplicates++;
        }
      }
      return results;
    });
  }

  /**
   * Group commit: requests that arrive while earlier transactions run share the next transaction, so a busy
   * instance pays one commit (one WAL flush) for many requests. If a group fails for a reason a retry cannot
   * fix, each batch runs alone so only the faulty one fails.
   */
  let waiting: PendingBatch[] = [];
  let running = 0;
  function pump() {
    while (running < INGEST_TRANSACTIONS && waiting.length) {
      let size = 0;
      let take = 0;
      while (take < waiting.length && (take === 0 || size + waiting[take]!.events.length <= GROUP_EVENTS)) size += waiting[take++]!.events.length;
      const group = waiting.slice(0, take);
      waiting = waiting.slice(take);
      running++;
      void runGroup(group).finally(() => {
        running--;
        pump();
      });
    }
  }
  async function runGroup(group: PendingBatch[]): Promise<void> {
    try {
      const results = await withRetries(() => ingestGroup(group));
      group.forEach((b, i) => b.resolve(results[i]!));
    } catch (err) {
      if (group.length === 1) return group[0]!.reject(err);
      for (const batch of group) {
        await withRetries(() => ingestGroup([batch])).then(([result]) => batch.resolve(result!), batch.reject);
      }
    }
  }

  const settle = async (sql: string, ids: number[], params: unknown[] = []) => {
    if (ids.length) await pool.query(sql, [ids, ...params]);
  };

  return {
    async ping() {
      await pool.query('SELECT 1');
    },
    ingest(publicKey, events, receivedAt = Date.now()) {
      return new Promise<IngestResult>((resolve, reject) => {
        waiting.push({ publicKey, events: withoutNul(events), receivedAt, resolve, reject });
        pump();
      });
    },
    async findProfile(kind, value) {
      const { rows } = await pool.query<ProfileState>(
        'SELECT p.* FROM profile_aliases a JOIN profiles p ON p.id = a.profile_id WHERE a.kind = $1 AND a.value = $2', [kind, aliasValue(kind, value)]);
      if (!rows[0]) return undefined;
      const aliases = await pool.query<StoredProfile['aliases'][number]>(
        'SELECT kind, value FROM profile_aliases WHERE profile_id = $1 ORDER BY kind, value', [rows[0].id]);
      return toStoredProfile(rows[0], aliases.rows);
    },
    async releaseClaims() {
      const r = await pool.query(`UPDATE forward_outbox SET status = 'pending', next_attempt_at = 0, claimed_by = NULL, lease_until = NULL, updated_at = $2
        WHERE status = 'inflight' AND claimed_by = $1`, [instanceId, Date.now()]);
      return r.rowCount ?? 0;
    },
    async renewClaims() {
      const r = await pool.query(`UPDATE forward_outbox SET lease_until = ${DB_NOW} + $2 WHERE status = 'inflight' AND claimed_by = $1`, [instanceId, leaseMs]);
      return r.rowCount ?? 0;
    },
    async requeueFailed() {
      const r = await pool.query(`UPDATE forward_outbox SET status = 'pending', next_attempt_at = 0, updated_at = $1 WHERE status = 'failed'`, [Date.now()]);
      return r.rowCount ?? 0;
    },
    async claimDue(limit, now = Date.now()) {
      const { rows } = await pool.query<ClaimedRow>(statements.claim([now, limit, instanceId, leaseMs]));
      return rows.map(toOutboxItem);
    },
    async markSent(ids, note) {
      // Delivered is the truth whoever holds the claim now.
      await settle(`UPDATE forward_outbox SET status = 'sent', last_error = NULL, note = $3, claimed_by = NULL, lease_until = NULL, updated_at = $2
        WHERE event_id = ANY($1::bigint[])`, ids, [Date.now(), note ?? null]);
    },
    async markFailed(ids, error) {
      await settle(`UPDATE forward_outbox SET status = 'failed', last_error = $2, claimed_by = NULL, lease_until = NULL, updated_at = $3
        WHERE event_id = ANY($1::bigint[]) AND status = 'inflight' AND claimed_by = $4`, ids, [error, Date.now(), instanceId]);
    },
    async reschedule(ids, at, error) {
      await settle(`UPDATE forward_outbox SET status = 'pending', next_attempt_at = $2, last_error = $3, claimed_by = NULL, lease_until = NULL,
        updated_at = $4 WHERE event_id = ANY($1::bigint[]) AND status = 'inflight' AND claimed_by = $5`, ids, [at, error, Date.now(), instanceId]);
    },
    forwarderLeadership: () => leadership,
    async listOutbox({ status, limit = 100 } = {}) {
      const { rows } = status
        ? await pool.query<OutboxRow>(`${OUTBOX_ROWS} WHERE o.status = $1 ORDER BY o.event_id LIMIT $2`, [status, limit])
        : await pool.query<OutboxRow>(`${OUTBOX_ROWS} ORDER BY o.event_id LIMIT $1`, [limit]);
      return rows;
    },
    async counts(): Promise<StoreCounts> {
      const [events, profiles, outboxRows, routeRows] = await Promise.all([
        pool.query<{ n: number }>('SELECT COUNT(*) AS n FROM events'),
        pool.query<{ n: number }>('SELECT COUNT(*) AS n FROM profiles'),
        pool.query<{ status: OutboxStatus; n: number }>('SELECT status, COUNT(*) AS n FROM forward_outbox GROUP BY status'),
        pool.query<{ route: string; n: number }>('SELECT route, COUNT(*) AS n FROM events GROUP BY route'),
      ]);
      const outbox: Record<OutboxStatus, number> = { pending: 0, inflight: 0, sent: 0, failed: 0 };
      for (const r of outboxRows.rows) outbox[r.status] = r.n;
      return { events: events.rows[0]!.n, profiles: profiles.rows[0]!.n, outbox, routes: Object.fromEntries(routeRows.rows.map((r) => [r.route, r.n])) };
    },
    async recentEvents(limit) {
      const { rows } = await pool.query<RecentEvent>(`SELECT e.unique_id, e.type, e.name, e.route, e.received_at, o.status AS forward_status,
          o.attempts AS forward_attempts, o.last_error
        FROM events e LEFT JOIN forward_outbox o ON o.event_id = e.id ORDER BY e.id DESC LIMIT $1`, [limit]);
      return rows;
    },
    async eventCounts() {
      const { rows } = await pool.query<{ name: string; count: number; lastSeenAt: number }>(
        'SELECT name, SUM(count) AS count, MAX(last_seen_at) AS "lastSeenAt" FROM event_name_counts GROUP BY name ORDER BY name');
      return rows;
    },
    async eventCountsBetween(names, from, to) {
      // events_name_time answers each name's range; identify events have no name (NULL).
      const { rows } = await pool.query<{ name: string | null; count: number }>(
        `SELECT name, COUNT(*)::int AS count FROM events
          WHERE (name = ANY($1::text[]) OR (name IS NULL AND $2)) AND time >= $3 AND time < $4 GROUP BY name`,
        [names.filter((n) => n !== IDENTIFY_EVENT), names.includes(IDENTIFY_EVENT), from, to]);
      const counted = new Map(rows.map((r) => [r.name ?? IDENTIFY_EVENT, r.count]));
      return names.map((name) => ({ name, count: counted.get(name) ?? 0 }));
    },
    async eventPropertyKeys(name, sample) {
      const { rows } = await pool.query<PropertyKeyCount & { sampled: number }>(
        `WITH s AS MATERIALIZED (${EVENT_SAMPLE_SQL})
        SELECT (SELECT COUNT(*)::int FROM s) AS sampled, k.key, k.count FROM (SELECT 1) one LEFT JOIN (
          SELECT k AS key, COUNT(*)::int AS count FROM s CROSS JOIN LATERAL jsonb_object_keys(${objectOrEmpty('s.properties')}) k
          WHERE length(k) <= $3 GROUP BY k ORDER BY count DESC, k COLLATE "C" LIMIT $4
        ) k ON true`, [name, sample, MAX_KEY_LENGTH, MAX_KEYS + 1]);
      return rankedKeys(rows[0]?.sampled ?? 0, rows.filter((r) => r.key !== null));
    },
    async profilePropertyKeys(sample) {
      // The columns holding a value on the newest profiles, and their custom keys.
      const [{ rows: [columns] }, { rows: custom }] = await Promise.all([
        pool.query<Record<string, number>>(`SELECT COUNT(*)::int AS sampled, ${SEGMENT_PROFILE_COLUMNS.map((c) => `COUNT(${c})::int AS ${c}`).join(', ')}
          FROM (${PROFILE_SAMPLE_SQL}) s`, [sample]),
        pool.query<PropertyKeyCount>(`WITH s AS MATERIALIZED (${PROFILE_SAMPLE_SQL})
          SELECT key, COUNT(*)::int AS count FROM (
            SELECT 'properties.' || k AS key FROM s CROSS JOIN LATERAL jsonb_object_keys(${objectOrEmpty('s.properties')}) k WHERE length(k) <= $2
            UNION ALL
            SELECT 'location.' || k FROM s CROSS JOIN LATERAL jsonb_object_keys(${objectOrEmpty('s.location')}) k WHERE length(k) <= $2
          ) keys GROUP BY key ORDER BY count DESC, key COLLATE "C" LIMIT $3`, [sample, MAX_KEY_LENGTH, MAX_KEYS + 1]),
      ]);
      const { sampled, ...columnCounts } = columns!;
      return rankedProfileKeys(sampled, columnCounts, custom);
    },
    async loadWorkflowOverride() {
      const { rows } = await pool.query<{ value: unknown; updated_at: number }>("SELECT value, updated_at FROM settings WHERE key = 'workflow'");
      return rows[0] && { workflow: rows[0].value, updatedAt: rows[0].updated_at };
    },
    async saveWorkflowOverride(workflow) {
      await pool.query(`INSERT INTO settings (key, value, updated_at) VALUES ('workflow', $1::jsonb, $2)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, [JSON.stringify(workflow), Date.now()]);
    },
    async clearWorkflowOverride() {
      await pool.query("DELETE FROM settings WHERE key = 'workflow'");
    },
    async close() {
      await leadership.release();
    },
  };
}

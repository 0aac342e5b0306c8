// RelayStore on the embedded SQLite database (db.ts schema). Every statement is prepared once; a batch is
// ingested in one transaction, so a request either stores all its valid events or none. One process owns the
// database, so it always leads forwarding and its claims need no lease.
import type { Db } from './db.js';
import type { ValidEvent } from '../../shared/wire-schema.js';
import { IDENTIFY_EVENT } from '../../shared/workflow.js';
import {
  aliasValue, assignProfileIds, batchAliases, planIngest, type Alias, type ProfileState,
} from './stitching.js';
import { soleLeadership, toOutboxItem, toStoredProfile, type ClaimedRow } from './row-mapping.js';
import { MAX_KEY_LENGTH, MAX_KEYS, PROFILE_SCAN, rankedKeys, rankedProfileKeys, type PropertyKeyCount } from './property-keys.js';
import { SEGMENT_PROFILE_COLUMNS } from './segment-rules.js';
import type { IngestResult, OutboxRow, OutboxStatus, RecentEvent, RelayStore, StoreCounts } from './types.js';

export { aliasValue };

type ProfileRow = Omit<ProfileState, 'location' | 'properties'> & { location: string | null; properties: string | null };

const OUTBOX_ROWS = `SELECT o.event_id AS eventId, e.unique_id, e.type, e.name, o.status, o.attempts, o.next_attempt_at, o.last_error, o.note
  FROM forward_outbox o JOIN events e ON e.id = o.event_id`;

const parseObject = (json: string | null): Record<string, unknown> | null => (json ? JSON.parse(json) : null);
const fromRow = (row: ProfileRow): ProfileState => ({ ...row, location: parseObject(row.location), properties: parseObject(row.properties) });
const toRow = (p: ProfileState): ProfileRow => ({
  ...p, location: p.location && JSON.stringify(p.location), properties: p.properties && JSON.stringify(p.properties),
});

/**
 * The samples property keys are counted over (property-keys.ts): the newest events of one name walk
 * events_name_time backwards, the newest profiles the primary key (up to PROFILE_SCAN of them, keeping those with
 * custom properties or a location), and both stop after the sample (no sort).
 */
export const EVENT_SAMPLE_SQL = 'SELECT properties FROM events WHERE name = ? ORDER BY time DESC LIMIT ?';
const PROFILE_SAMPLE_COLUMNS = ['id', 'properties', 'location', ...SEGMENT_PROFILE_COLUMNS].join(', ');
export const PROFILE_SAMPLE_SQL = `SELECT ${PROFILE_SAMPLE_COLUMNS} FROM (SELECT ${PROFILE_SAMPLE_COLUMNS} FROM profiles ORDER BY id DESC LIMIT ${PROFILE_SCAN}) newest
  WHERE properties IS NOT NULL OR location IS NOT NULL ORDER BY id DESC LIMIT ?`;

export function createSqliteStore(db: Db): RelayStore {
  const q = {
    storedEvent: db.prepare<[string], { id: number; route: string }>('SELECT id, route FROM events WHERE unique_id = ?'),
    routeToServer: db.prepare("UPDATE events SET route = 'server' WHERE id = ?"),
    insertEvent: db.prepare(`INSERT INTO events (unique_id, public_key, type, name, properties, time, value, value_currency, route, profile_id, profile, received_at)
      VALUES (@unique_id, @public_key, @type, @name, @properties, @time, @value, @value_currency, @route, @profile_id, @profile, @received_at)`),
    enqueue: db.prepare(`INSERT INTO forward_outbox (event_id, status, next_attempt_at, updated_at) VALUES (?, 'pending', 0, ?)`),
    aliasOwner: db.prepare('SELECT profile_id FROM profile_aliases WHERE kind = ? AND value = ?').pluck(),
    insertAlias: db.prepare('INSERT INTO profile_aliases (kind, value, profile_id) VALUES (?, ?, ?)'),
    moveAlias: db.prepare('UPDATE profile_aliases SET profile_id = ? WHERE kind = ? AND value = ?'),
    moveAllAliases: db.prepare('UPDATE profile_aliases SET profile_id = ? WHERE profile_id = ?'),
    moveEvents: db.prepare('UPDATE events SET profile_id = ? WHERE profile_id = ?'),
    profile: db.prepare('SELECT * FROM profiles WHERE id = ?'),
    profileAliases: db.prepare('SELECT kind, value FROM profile_aliases WHERE profile_id = ? ORDER BY kind, value'),
    insertProfile: db.prepare('INSERT INTO profiles (first_seen, last_seen, updated_at) VALUES (?, ?, ?)'),
    updateProfile: db.prepare(`UPDATE profiles SET email=@email, phone_number=@phone_number, external_id=@external_id,
      anonymous_id=@anonymous_id, kx=@kx, first_name=@first_name, last_name=@last_name, organization=@organization,
      title=@title, locale=@locale, image=@image, location=@location, properties=@properties,
      first_seen=@first_seen, last_seen=@last_seen, updated_at=@updated_at WHERE id=@id`),
    deleteProfile: db.prepare('DELETE FROM profiles WHERE id = ?'),

    requeueFailed: db.prepare(`UPDATE forward_outbox SET status='pending', next_attempt_at=0, updated_at=? WHERE status='failed'`),
    releaseClaims: db.prepare(`UPDATE forward_outbox SET status='pending', next_attempt_at=0, updated_at=? WHERE status='inflight'`),
    renewClaims: db.prepare(`UPDATE forward_outbox SET updated_at=? WHERE status='inflight'`),
    due: db.prepare(`SELECT o.event_id, o.attempts + 1 AS attempts, e.unique_id, e.type, e.name, e.properties, e.time, e.value, e.value_currency,
        e.profile, e.profile_id, p.email AS known_email, p.phone_number AS known_phone, p.external_id AS known_external_id
      FROM forward_outbox o JOIN events e ON e.id = o.event_id LEFT JOIN profiles p ON p.id = e.profile_id
      WHERE o.status = 'pending' AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.event_id LIMIT ?`),
    claim: db.prepare(`UPDATE forward_outbox SET status='inflight', attempts=attempts+1, updated_at=? WHERE event_id=?`),
    sent: db.prepare(`UPDATE forward_outbox SET status='sent', last_error=NULL, note=?, updated_at=? WHERE event_id=?`),
    failed: db.prepare(`UPDATE forward_outbox SET status='failed', last_error=?, updated_at=? WHERE event_id=?`),
    reschedule: db.prepare(`UPDATE forward_outbox SET status='pending', next_attempt_at=?, last_error=?, updated_at=? WHERE event_id=?`),
    outboxAll: db.prepare(`${OUTBOX_ROWS} ORDER BY o.event_id LIMIT ?`),
    outboxByStatus: db.prepare(`${OUTBOX_ROWS} WHERE o.status = ? ORDER BY o.event_id LIMIT ?`),
    recent: db.prepare(`SELECT e.unique_id, e.type, e.name, e.route, e.received_at, o.status AS forward_status,
        o.attempts AS forward_attempts, o.last_error
      FROM events e LEFT JOIN forward_outbox o ON o.event_id = e.id ORDER BY e.id DESC LIMIT ?`),
    countEvents: db.prepare('SELECT COUNT(*) FROM events').pluck(),
    countProfiles: db.prepare('SELECT COUNT(*) FROM profiles').pluck(),
    countOutbox: db.prepare('SELECT status, COUNT(*) AS n FROM forward_outbox GROUP BY status'),
    countRoutes: db.prepare('SELECT route, COUNT(*) AS n FROM events GROUP BY route'),
    loadWorkflow: db.prepare('SELECT workflow, updated_at FROM workflow_override WHERE id = 1'),
    clearWorkflow: db.prepare('DELETE FROM workflow_override WHERE id = 1'),
    saveWorkflow: db.prepare(`INSERT INTO workflow_override (id, workflow, updated_at) VALUES (1, ?, ?)
      ON CONFLICT (id) DO UPDATE SET workflow = excluded.workflow, updated_at = excluded.updated_at`),
    // Covered by events_name_time: no table read. Identify events have no name (NULL).
    eventCounts: db.prepare('SELECT name, COUNT(*) AS count, MAX(time) AS lastSeenAt FROM events GROUP BY name'),
    // A range of events_name_time per name; `IS` also matches the NULL name of identify events.
    eventCountBetween: db.prepare<[string | null, number, number], number>('SELECT COUNT(*) FROM events WHERE name IS ? AND time >= ? AND time < ?').pluck(),
    eventSampleSize: db.prepare<[string, number], number>(`SELECT COUNT(*) FROM (${EVENT_SAMPLE_SQL})`).pluck(),
    eventKeys: db.prepare<[string, number, number, number], PropertyKeyCount>(`SELECT k.key AS key, COUNT(*) AS count
      FROM (${EVENT_SAMPLE_SQL}) s, json_each(s.properties) k
      WHERE json_type(s.properties) = 'object' AND length(k.key) <= ? GROUP BY k.key ORDER BY count DESC, key LIMIT ?`),
    // The columns holding a value on the newest profiles, and their custom keys.
    profileColumnCounts: db.prepare<[number], Record<string, number>>(`SELECT COUNT(*) AS sampled, ${SEGMENT_PROFILE_COLUMNS.map((c) => `COUNT(${c}) AS ${c}`).join(', ')}
      FROM (${PROFILE_SAMPLE_SQL})`),
    profileKeys: db.prepare<[number, number, number, number], PropertyKeyCount>(`WITH s AS (${PROFILE_SAMPLE_SQL})
      SELECT key, COUNT(*) AS count FROM (
        SELECT 'properties.' || k.key AS key FROM s, json_each(s.properties) k WHERE json_type(s.properties) = 'object' AND length(k.key) <= ?
        UNION ALL
        SELECT 'location.' || k.key FROM s, json_each(s.location) k WHERE json_type(s.location) = 'object' AND length(k.key) <= ?
      ) GROUP BY key ORDER BY count DESC, key LIMIT ?`),
  };

  const ownerOf = (a: Alias) => q.aliasOwner.get(a.kind, a.value) as number | undefined;

  const ingestBatch = db.transaction((publicKey: string, events: ValidEvent[], now: number): IngestResult => {
    const plan = planIngest(events, {
      storedRoute: (uniqueId) => q.storedEvent.get(uniqueId)?.route,
      owner: ownerOf,
      profile: (id) => fromRow(q.profile.get(id) as ProfileRow),
    }, now);
    const ids = new Map<number, number>();
    for (const p of plan.created) ids.set(p.id, Number(q.insertProfile.run(p.first_seen, p.last_seen, now).lastInsertRowid));
    assignProfileIds(plan, (placeholder) => ids.get(placeholder)!);
    for (const { from, into } of plan.merges) {
      q.moveAllAliases.run(into, from);
      q.moveEvents.run(into, from);
      q.deleteProfile.run(from);
    }
    for (const p of [...plan.created, ...plan.updated]) q.updateProfile.run(toRow(p));
    for (const a of plan.aliasInserts) q.insertAlias.run(a.kind, a.value, a.profileId);
    for (const a of plan.aliasMoves) q.moveAlias.run(a.profileId, a.kind, a.value);
    let queued = 0;
    for (const { event: ev, route, time, profileId } of plan.events) {
      const { lastInsertRowid } = q.insertEvent.run({
        unique_id: ev.unique_id, public_key: publicKey, type: ev.type, name: ev.name ?? null,
        properties: JSON.stringify(ev.properties ?? {}), time, value: ev.value ?? null, value_currency: ev.value_currency ?? null,
        route, profile_id: profileId, profile: JSON.stringify(ev.profile), received_at: now,
      });
      if (route === 'server') {
        q.enqueue.run(lastInsertRowid, now);
        queued++;
      }
    }
    for (const { uniqueId } of plan.handOvers) {
      const { id } = q.storedEvent.get(uniqueId)!;
      q.routeToServer.run(id);
      q.enqueue.run(id, now);
      queued++;
    }
    return { stored: plan.events.length, duplicates: plan.duplicates.length, queued };
  });

  /**
   * Group commit: batches that arrive in the same event-loop turn share one SQLite commit, each inside its own
   * savepoint (better-sqlite3 nests transactions that way), so one batch failing rolls back only itself. Under
   * load this turns hundreds of small commits into a few larger ones; alone, a batch commits on the next tick.
   */
  type PendingIngest = { publicKey: string; events: ValidEvent[]; receivedAt: number; resolve(r: IngestResult): void; reject(e: unknown): void };
  let pending: PendingIngest[] = [];
  /** The first batch error of the group being committed: SQLite may roll back the whole transaction on it
   * (disk full), and then the commit's "no transaction is active" must not hide the real cause. */
  let groupError: unknown;
  const commitGroup = db.transaction((group: PendingIngest[]) =>
    group.map((p) => {
      try {
        return { result: ingestBatch(p.publicKey, p.events, p.receivedAt) };
      } catch (error) {
        groupError ??= error;
        return { error };
      }
    }),
  );
  function flushGroup() {
    const group = pending;
    pending = [];
    let outcomes: ({ result: IngestResult } | { error: unknown })[];
    groupError = undefined;
    try {
      outcomes = commitGroup(group);
    } catch (error) {
      if (!db.inTransaction && groupError) error = groupError;
      for (const p of group) p.reject(error);
      return;
    }
    outcomes.forEach((o, i) => ('error' in o ? group[i]!.reject(o.error) : group[i]!.resolve(o.result)));
  }

  const claimBatch = db.transaction((limit: number, now: number) => {
    const rows = q.due.all(now, limit) as (Omit<ClaimedRow, 'properties' | 'profile'> & { properties: string; profile: string })[];
    for (const r of rows) q.claim.run(now, r.event_id);
    return rows.map((r) => toOutboxItem({ ...r, properties: JSON.parse(r.properties), profile: JSON.parse(r.profile) }));
  });

  const updateEach = (ids: number[], run: (id: number) => void) => db.transaction(() => ids.forEach(run))();
  const leadership = soleLeadership();

  return {
    async ping() {
      db.prepare('SELECT 1').get();
    },
    ingest(publicKey, events, receivedAt = Date.now()) {
      return new Promise<IngestResult>((resolve, reject) => {
        if (!pending.length) setImmediate(flushGroup);
        pending.push({ publicKey, events, receivedAt, resolve, reject });
      });
    },
    async findProfile(kind, value) {
      const id = ownerOf({ kind, value: aliasValue(kind, value) });
      if (id === undefined) return undefined;
      return toStoredProfile(fromRow(q.profile.get(id) as ProfileRow), q.profileAliases.all(id) as { kind: never; value: string }[]);
    },
    async releaseClaims() {
      return q.releaseClaims.run(Date.now()).changes;
    },
    async renewClaims() {
      return q.renewClaims.run(Date.now()).changes;
    },
    async requeueFailed() {
      return q.requeueFailed.run(Date.now()).changes;
    },
    async claimDue(limit, now = Date.now()) {
      return claimBatch(limit, now);
    },
    async markSent(ids, note) {
      const now = Date.now();
      updateEach(ids, (id) => q.sent.run(note ?? null, now, id));
    },
    async markFailed(ids, error) {
      const now = Date.now();
      updateEach(ids, (id) => q.failed.run(error, now, id));
    },
    async reschedule(ids, at, error) {
      const now = Date.now();
      updateEach(ids, (id) => q.reschedule.run(at, error, now, id));
    },
    forwarderLeadership: () => leadership,
    async listOutbox({ status, limit = 100 } = {}) {
      return (status ? q.outboxByStatus.all(status, limit) : q.outboxAll.all(limit)) as OutboxRow[];
    },
    async counts(): Promise<StoreCounts> {
      const outbox: Record<OutboxStatus, number> = { pending: 0, inflight: 0, sent: 0, failed: 0 };
      for (const r of q.countOutbox.all() as { status: OutboxStatus; n: number }[]) outbox[r.status] = r.n;
      const routes = Object.fromEntries((q.countRoutes.all() as { route: string; n: number }[]).map((r) => [r.route, r.n]));
      return { events: q.countEvents.get() as number, profiles: q.countProfiles.get() as number, outbox, routes };
    },
    async recentEvents(limit) {
      return q.recent.all(limit) as RecentEvent[];
    },
    async loadWorkflowOverride() {
      const row = q.loadWorkflow.get() as { workflow: string; updated_at: number } | undefined;
      return row && { workflow: JSON.parse(row.workflow), updatedAt: row.updated_at };
    },
    async saveWorkflowOverride(workflow) {
      q.saveWorkflow.run(JSON.stringify(workflow), Date.now());
    },
    async clearWorkflowOverride() {
      q.clearWorkflow.run();
    },
    async eventCounts() {
      return (q.eventCounts.all() as { name: string | null; count: number; lastSeenAt: number }[])
        .map((r) => ({ name: r.name ?? IDENTIFY_EVENT, count: r.count, lastSeenAt: r.lastSeenAt }));
    },
    async eventCountsBetween(names, from, to) {
      return names.map((name) => ({ name, count: q.eventCountBetween.get(name === IDENTIFY_EVENT ? null : name, from, to) ?? 0 }));
    },
    async eventPropertyKeys(name, sample) {
      return rankedKeys(q.eventSampleSize.get(name, sample) ?? 0, q.eventKeys.all(name, sample, MAX_KEY_LENGTH, MAX_KEYS + 1));
    },
    async profilePropertyKeys(sample) {
      const { sampled, ...columns } = q.profileColumnCounts.get(sample)!;
      return rankedProfileKeys(sampled, columns, q.profileKeys.all(sample, MAX_KEY_LENGTH, MAX_KEY_LENGTH, MAX_KEYS + 1));
    },
    async close() {
      await leadership.release();
      if (db.open) db.close();
    },
  };
}

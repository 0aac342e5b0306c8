// RelayStore on the embedded SQLite database (db.ts schema). Every statement is prepared once; a batch is
// ingested in one transaction, so a request either stores all its valid events or none.
import type { Db } from './db.js';
import type { ValidEvent } from '../../shared/wire-schema.js';
import type { RelayEvent, RelayProfile } from '../../shared/wire.js';
import type {
  AliasKind, IngestResult, OutboxItem, OutboxRow, OutboxStatus, RelayStore, StoreCounts, StoredProfile,
} from './types.js';

/** Stitching order: the strongest identifier decides which profile an event belongs to. */
const ALIAS_KINDS: AliasKind[] = ['external_id', 'email', 'phone_number', 'anonymous_id'];
/** Identifiers that name a person: two profiles holding different values of one of these are different people. */
const PERSON_KEYS = ['external_id', 'email', 'phone_number'] as const;
const TRAIT_KEYS = ['first_name', 'last_name', 'organization', 'title', 'locale', 'image'] as const;

interface ProfileRow {
  id: number;
  email: string | null; phone_number: string | null; external_id: string | null; anonymous_id: string | null; kx: string | null;
  first_name: string | null; last_name: string | null; organization: string | null; title: string | null;
  locale: string | null; image: string | null;
  location: string | null; properties: string | null;
  first_seen: number; last_seen: number; updated_at: number;
}

/** Emails are matched case-insensitively; other identifiers as sent. */
export function aliasValue(kind: AliasKind, value: string): string {
  return kind === 'email' ? value.toLowerCase() : value;
}

function aliasesOf(profile: RelayProfile): { kind: AliasKind; value: string }[] {
  return ALIAS_KINDS.filter((k) => profile[k]).map((kind) => ({ kind, value: aliasValue(kind, profile[kind]!) }));
}

const OUTBOX_ROWS = `SELECT o.event_id AS eventId, e.unique_id, e.type, e.name, o.status, o.attempts, o.next_attempt_at, o.last_error, o.note
  FROM forward_outbox o JOIN events e ON e.id = o.event_id`;

const parseObject = (json: string | null): Record<string, unknown> => (json ? JSON.parse(json) : {});

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
    due: db.prepare(`SELECT o.event_id, o.attempts, e.unique_id, e.type, e.name, e.properties, e.time, e.value, e.value_currency,
        e.profile, e.profile_id, p.email AS known_email, p.phone_number AS known_phone, p.external_id AS known_external_id
      FROM forward_outbox o JOIN events e ON e.id = o.event_id LEFT JOIN profiles p ON p.id = e.profile_id
      WHERE o.status = 'pending' AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.event_id LIMIT ?`),
    claim: db.prepare(`UPDATE forward_outbox SET status='inflight', attempts=attempts+1, updated_at=? WHERE event_id=?`),
    nextDue: db.prepare(`SELECT MIN(next_attempt_at) FROM forward_outbox WHERE status='pending'`).pluck(),
    sent: db.prepare(`UPDATE forward_outbox SET status='sent', last_error=NULL, note=?, updated_at=? WHERE event_id=?`),
    failed: db.prepare(`UPDATE forward_outbox SET status='failed', last_error=?, updated_at=? WHERE event_id=?`),
    reschedule: db.prepare(`UPDATE forward_outbox SET status='pending', next_attempt_at=?, last_error=?, updated_at=? WHERE event_id=?`),
    outboxAll: db.prepare(`${OUTBOX_ROWS} ORDER BY o.event_id LIMIT ?`),
    outboxByStatus: db.prepare(`${OUTBOX_ROWS} WHERE o.status = ? ORDER BY o.event_id LIMIT ?`),
    countEvents: db.prepare('SELECT COUNT(*) FROM events').pluck(),
    countProfiles: db.prepare('SELECT COUNT(*) FROM profiles').pluck(),
    countOutbox: db.prepare('SELECT status, COUNT(*) AS n FROM forward_outbox GROUP BY status'),
  };

  /**
   * Profiles touched by the batch being ingested, written once at its end: a browser's batch usually carries one
   * visitor, so twenty events cost one profile write, not twenty.
   */
  let touched = new Map<number, ProfileRow>();
  const loadProfile = (id: number): ProfileRow => {
    let row = touched.get(id);
    if (!row) touched.set(id, (row = q.profile.get(id) as ProfileRow));
    return row;
  };

  /** Fold `from` into `into`: the survivor keeps its own values and fills the gaps from the other. */
  function mergeProfiles(into: ProfileRow, from: ProfileRow): void {
    q.moveAllAliases.run(into.id, from.id);
    q.moveEvents.run(into.id, from.id);
    q.deleteProfile.run(from.id);
    touched.delete(from.id);
    for (const key of Object.keys(into) as (keyof ProfileRow)[]) {
      if (into[key] === null && from[key] !== null) (into as any)[key] = from[key];
    }
    into.properties = JSON.stringify({ ...parseObject(from.properties), ...parseObject(into.properties) });
    into.location = JSON.stringify({ ...parseObject(from.location), ...parseObject(into.location) });
    into.first_seen = Math.min(into.first_seen, from.first_seen);
    into.last_seen = Math.max(into.last_seen, from.last_seen);
  }

  const conflicts = (a: ProfileRow, b: ProfileRow) =>
    PERSON_KEYS.some((k) => a[k] !== null && b[k] !== null && aliasValue(k, a[k]!) !== aliasValue(k, b[k]!));

  /**
   * Find or create the profile for an event's identifiers, linking them all to it. Two existing profiles are
   * merged when the event proves they are one person (e.g. an anonymous visitor identifies). Profiles holding
   * different emails/external ids are never merged; the browser's anonymous id then moves to the identified one.
   */
  function stitch(profile: RelayProfile, time: number, now: number): number | null {
    const aliases = aliasesOf(profile);
    if (!aliases.length) return null;
    const owners = aliases.map((a) => q.aliasOwner.get(a.kind, a.value) as number | undefined);
    const ownerIds = [...new Set(owners.filter((id): id is number => id !== undefined))];

    let target: ProfileRow;
    if (!ownerIds.length) {
      target = loadProfile(Number(q.insertProfile.run(time, time, now).lastInsertRowid));
    } else {
      target = loadProfile(ownerIds[0]!); // owners follow ALIAS_KINDS: the strongest match wins
      for (const id of ownerIds.slice(1)) {
        const other = loadProfile(id);
        if (!conflicts(target, other)) mergeProfiles(target, other);
      }
    }
    aliases.forEach((a, i) => {
      // Re-read: a merge above may have moved this alias onto the target already.
      const owner = owners[i] === undefined ? undefined : (q.aliasOwner.get(a.kind, a.value) as number | undefined);
      if (owner === undefined) q.insertAlias.run(a.kind, a.value, target.id);
      else if (owner !== target.id && a.kind === 'anonymous_id') q.moveAlias.run(target.id, a.kind, a.value);
    });
    applyTraits(target, profile, time, now);
    return target.id;
  }

  /** The newest non-empty values win; custom properties and location merge key by key. */
  function applyTraits(row: ProfileRow, profile: RelayProfile, time: number, now: number): void {
    const newer = time >= row.last_seen;
    const set = (key: keyof ProfileRow, value: string | undefined) => {
      if (value && (newer || row[key] === null)) (row as any)[key] = value;
    };
    for (const k of PERSON_KEYS) set(k, profile[k]);
    set('anonymous_id', profile.anonymous_id);
    set('kx', profile._kx);
    for (const k of TRAIT_KEYS) set(k, profile[k]);
    if (profile.properties) {
      const current = parseObject(row.properties);
      row.properties = JSON.stringify(newer ? { ...current, ...profile.properties } : { ...profile.properties, ...current });
    }
    if (profile.location) {
      const current = parseObject(row.location);
      row.location = JSON.stringify(newer ? { ...current, ...profile.location } : { ...profile.location, ...current });
    }
    row.first_seen = Math.min(row.first_seen, time);
    row.last_seen = Math.max(row.last_seen, time);
    row.updated_at = now;
  }

  const ingestBatch = db.transaction((publicKey: string, events: ValidEvent[], now: number): IngestResult => {
    touched = new Map();
    const result: IngestResult = { stored: 0, duplicates: 0, queued: 0 };
    for (const ev of events) {
      const stored = q.storedEvent.get(ev.unique_id);
      if (stored) {
        // A client event whose store copy is already here comes again as "server" when the browser could not reach
        // Klaviyo (an ad blocker) and handed it over: forward it now, once. Any other repeat is a duplicate.
        if (stored.route === 'client' && ev.route === 'server') {
          q.routeToServer.run(stored.id);
          q.enqueue.run(stored.id, now);
          result.queued++;
        } else result.duplicates++;
        continue;
      }
      const time = Date.parse(ev.time);
      const profileId = stitch(ev.profile, time, now);
      const { lastInsertRowid } = q.insertEvent.run({
        unique_id: ev.unique_id, public_key: publicKey, type: ev.type, name: ev.name ?? null,
        properties: JSON.stringify(ev.properties ?? {}), time, value: ev.value ?? null, value_currency: ev.value_currency ?? null,
        route: ev.route, profile_id: profileId, profile: JSON.stringify(ev.profile), received_at: now,
      });
      result.stored++;
      if (ev.route === 'server') {
        q.enqueue.run(lastInsertRowid, now);
        result.queued++;
      }
    }
    for (const row of touched.values()) q.updateProfile.run(row);
    touched = new Map();
    return result;
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

  const claimBatch = db.transaction((limit: number, now: number): OutboxItem[] => {
    const rows = q.due.all(now, limit) as any[];
    for (const r of rows) q.claim.run(now, r.event_id);
    return rows.map((r) => ({
      eventId: r.event_id,
      attempts: r.attempts + 1,
      profileId: r.profile_id,
      event: {
        type: r.type, name: r.name ?? undefined, properties: JSON.parse(r.properties), time: new Date(r.time).toISOString(),
        ...(r.value !== null ? { value: r.value } : {}), ...(r.value_currency ? { value_currency: r.value_currency } : {}),
        unique_id: r.unique_id, route: 'server', profile: JSON.parse(r.profile),
      } satisfies RelayEvent,
      known: {
        ...(r.known_email ? { email: r.known_email } : {}),
        ...(r.known_phone ? { phone_number: r.known_phone } : {}),
        ...(r.known_external_id ? { external_id: r.known_external_id } : {}),
      },
    }));
  });

  const updateEach = (ids: number[], run: (id: number) => void) => db.transaction(() => ids.forEach(run))();

  return {
    ingest(publicKey, events, receivedAt = Date.now()) {
      return new Promise<IngestResult>((resolve, reject) => {
        if (!pending.length) setImmediate(flushGroup);
        pending.push({ publicKey, events, receivedAt, resolve, reject });
      });
    },
    async findProfile(kind, value) {
      const id = q.aliasOwner.get(kind, aliasValue(kind, value)) as number | undefined;
      if (id === undefined) return undefined;
      const row = q.profile.get(id) as ProfileRow;
      return {
        id: row.id, email: row.email, phone_number: row.phone_number, external_id: row.external_id, anonymous_id: row.anonymous_id,
        first_name: row.first_name, last_name: row.last_name, properties: parseObject(row.properties),
        aliases: q.profileAliases.all(id) as StoredProfile['aliases'], first_seen: row.first_seen, last_seen: row.last_seen,
      };
    },
    async releaseClaims() {
      return q.releaseClaims.run(Date.now()).changes;
    },
    async requeueFailed() {
      return q.requeueFailed.run(Date.now()).changes;
    },
    async claimDue(limit, now = Date.now()) {
      return claimBatch(limit, now);
    },
    async nextDueAt() {
      return (q.nextDue.get() as number | null) ?? undefined;
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
    async listOutbox({ status, limit = 100 } = {}) {
      return (status ? q.outboxByStatus.all(status, limit) : q.outboxAll.all(limit)) as OutboxRow[];
    },
    async counts(): Promise<StoreCounts> {
      const outbox: Record<OutboxStatus, number> = { pending: 0, inflight: 0, sent: 0, failed: 0 };
      for (const r of q.countOutbox.all() as { status: OutboxStatus; n: number }[]) outbox[r.status] = r.n;
      return { events: q.countEvents.get() as number, profiles: q.countProfiles.get() as number, outbox };
    },
  };
}

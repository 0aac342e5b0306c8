// Profile stitching, the same for every backend: given what the store already knows about a batch's identifiers,
// plan which profile each new event belongs to and what must change (profiles created, merged, updated; aliases
// linked or moved). The planner only reads through `StitchLookup` and returns the changes; each store loads
// what it needs, then applies the plan inside the batch's transaction.
import type { ValidEvent } from '../../shared/wire-schema.js';
import type { RelayProfile } from '../../shared/wire.js';
import type { AliasKind } from './types.js';

/** Stitching order: the strongest identifier decides which profile an event belongs to. */
export const ALIAS_KINDS: AliasKind[] = ['external_id', 'email', 'phone_number', 'anonymous_id'];
/** Identifiers that name a person: two profiles holding different values of one of these are different people. */
const PERSON_KEYS = ['external_id', 'email', 'phone_number'] as const;
const TRAIT_KEYS = ['first_name', 'last_name', 'organization', 'title', 'locale', 'image'] as const;

/** One stitched person as stored. Identifier columns hold the latest known value. */
export interface ProfileState {
  id: number;
  email: string | null; phone_number: string | null; external_id: string | null; anonymous_id: string | null; kx: string | null;
  first_name: string | null; last_name: string | null; organization: string | null; title: string | null;
  locale: string | null; image: string | null;
  location: Record<string, unknown> | null;
  properties: Record<string, unknown> | null;
  first_seen: number; last_seen: number; updated_at: number;
}

export interface Alias {
  kind: AliasKind;
  value: string;
}

/** Emails are matched case-insensitively; other identifiers as sent. */
export function aliasValue(kind: AliasKind, value: string): string {
  return kind === 'email' ? value.toLowerCase() : value;
}

export function aliasesOf(profile: RelayProfile): Alias[] {
  return ALIAS_KINDS.filter((k) => profile[k]).map((kind) => ({ kind, value: aliasValue(kind, profile[kind]!) }));
}

/** Every alias a batch mentions, each once: what a store loads (and locks) before planning. */
export function batchAliases(events: ValidEvent[]): Alias[] {
  const seen = new Map<string, Alias>();
  for (const ev of events) for (const a of aliasesOf(ev.profile)) seen.set(`${a.kind}\u0000${a.value}`, a);
  return [...seen.values()];
}

/** What the store knows before the batch: read-only. */
export interface StitchLookup {
  /** The workflow route of the stored event with this unique_id, if one is stored. */
  storedRoute(uniqueId: string): string | undefined;
  /** The profile owning an alias, if any. */
  owner(alias: Alias): number | undefined;
  /** A stored profile (only ever asked for owners returned above). */
  profile(id: number): ProfileState;
}

export interface PlannedEvent {
  /** Position in the planned batch. */
  index: number;
  event: ValidEvent;
  /** The route to store: the event's own, or `server` when a repeat later in the batch handed it over. */
  route: ValidEvent['route'];
  /** Epoch ms of `event.time`. */
  time: number;
  /** Final profile id; negative ids are profiles this plan creates. Null when the event carried no identifier. */
  profileId: number | null;
}

export interface IngestPlan {
  /** New events in batch order (repeats of a stored or earlier unique_id are left out). */
  events: PlannedEvent[];
  /**
   * Stored `client` events that came again as `server`: the browser could not reach Klaviyo and handed them over.
   * Each is re-routed to `server` and queued, once. `index` is the position of the event that handed it over.
   */
  handOvers: { index: number; uniqueId: string }[];
  /** Positions of the repeats that change nothing. */
  duplicates: number[];
  /** Profiles to create (negative placeholder ids) and stored profiles to update, in their final state. */
  created: ProfileState[];
  updated: ProfileState[];
  /** Stored profiles folded into another: move their aliases and events to `into`, then delete them. */
  merges: { from: number; into: number }[];
  /** Aliases not stored before, with their final owner. */
  aliasInserts: (Alias & { profileId: number })[];
  /** Stored aliases whose owner changes beyond the merges (a browser's anonymous id following a new person). */
  aliasMoves: (Alias & { profileId: number })[];
}

const aliasKey = (a: Alias) => `${a.kind}\u0000${a.value}`;

/**
 * Find or create each event's profile, linking its identifiers to it. Two existing profiles are merged when an
 * event proves they are one person (e.g. an anonymous visitor identifies). Profiles holding different emails,
 * phones or external ids are never merged; the browser's anonymous id then moves to the newly identified one
 * ("two people on one device").
 */
export function planIngest(batch: ValidEvent[], lookup: StitchLookup, now: number): IngestPlan {
  const profiles = new Map<number, ProfileState>();
  const mergedInto = new Map<number, number>();
  /** Every alias the batch touched: its current owner, and its owner before the batch (undefined: new alias). */
  const aliases = new Map<string, Alias & { owner: number; storedOwner: number | undefined }>();
  /** Profiles this batch changed (a stored profile loaded only to be compared is not rewritten). */
  const changed = new Set<number>();
  const events: PlannedEvent[] = [];
  let nextNewId = -1;
  const duplicates: number[] = [];

  const resolve = (id: number): number => {
    while (mergedInto.has(id)) id = mergedInto.get(id)!;
    return id;
  };
  const ownerOf = (a: Alias): number | undefined => {
    const known = aliases.get(aliasKey(a));
    if (known) return resolve(known.owner);
    const stored = lookup.owner(a);
    if (stored === undefined) return undefined;
    aliases.set(aliasKey(a), { ...a, owner: stored, storedOwner: stored });
    return resolve(stored);
  };
  const load = (id: number): ProfileState => {
    let row = profiles.get(id);
    if (!row) {
      const stored = lookup.profile(id);
      row = { ...stored, location: stored.location && { ...stored.location }, properties: stored.properties && { ...stored.properties } };
      profiles.set(id, row);
    }
    return row;
  };
  const link = (a: Alias, owner: number) => {
    const known = aliases.get(aliasKey(a));
    if (known) known.owner = owner;
    else aliases.set(aliasKey(a), { ...a, owner, storedOwner: undefined });
  };

  const conflicts = (a: ProfileState, b: ProfileState) =>
    PERSON_KEYS.some((k) => a[k] !== null && b[k] !== null && aliasValue(k, a[k]!) !== aliasValue(k, b[k]!));

  /** Fold `from` into `into`: the survivor keeps its own values and fills the gaps from the other. */
  function merge(into: ProfileState, from: ProfileState): void {
    mergedInto.set(from.id, into.id);
    changed.add(into.id);
    for (const key of Object.keys(into) as (keyof ProfileState)[]) {
      if (into[key] === null && from[key] !== null) (into as any)[key] = from[key];
    }
    into.properties = { ...from.properties, ...into.properties };
    into.location = { ...from.location, ...into.location };
    into.first_seen = Math.min(into.first_seen, from.first_seen);
    into.last_seen = Math.max(into.last_seen, from.last_seen);
  }

  /** The newest non-empty values win; custom properties and location merge key by key. */
  function applyTraits(row: ProfileState, profile: RelayProfile, time: number): void {
    changed.add(row.id);
    const newer = time >= row.last_seen;
    const set = (key: keyof ProfileState, value: string | undefined) => {
      if (value && (newer || row[key] === null)) (row as any)[key] = value;
    };
    for (const k of PERSON_KEYS) set(k, profile[k]);
    set('anonymous_id', profile.anonymous_id);
    set('kx', profile._kx);
    for (const k of TRAIT_KEYS) set(k, profile[k]);
    if (profile.properties) row.properties = newer ? { ...row.properties, ...profile.properties } : { ...profile.properties, ...row.properties };
    if (profile.location) row.location = newer ? { ...row.location, ...profile.location } : { ...profile.location, ...row.location };
    row.first_seen = Math.min(row.first_seen, time);
    row.last_seen = Math.max(row.last_seen, time);
    row.updated_at = now;
  }

  function stitch(profile: RelayProfile, time: number): number | null {
    const eventAliases = aliasesOf(profile);
    if (!eventAliases.length) return null;
    const ownerIds = [...new Set(eventAliases.map(ownerOf).filter((id): id is number => id !== undefined))];

    let target: ProfileState;
    if (!ownerIds.length) {
      target = {
        id: nextNewId--, email: null, phone_number: null, external_id: null, anonymous_id: null, kx: null,
        first_name: null, last_name: null, organization: null, title: null, locale: null, image: null,
        location: null, properties: null, first_seen: time, last_seen: time, updated_at: now,
      };
      profiles.set(target.id, target);
    } else {
      target = load(ownerIds[0]!); // owners follow ALIAS_KINDS: the strongest match wins
      for (const id of ownerIds.slice(1)) {
        const other = load(id);
        if (!conflicts(target, other)) merge(target, other);
      }
    }
    for (const a of eventAliases) {
      const owner = ownerOf(a);
      if (owner === undefined) link(a, target.id);
      else if (owner !== target.id && a.kind === 'anonymous_id') link(a, target.id);
    }
    applyTraits(target, profile, time);
    return target.id;
  }

  const planned = new Map<string, PlannedEvent>();
  const handOvers: IngestPlan['handOvers'] = [];
  batch.forEach((event, index) => {
    const earlier = planned.get(event.unique_id);
    const storedRoute = earlier ? undefined : lookup.storedRoute(event.unique_id);
    if (earlier || storedRoute !== undefined) {
      // A repeat. Only a client event coming again as server changes anything: it is forwarded now, once.
      const handOver = event.route === 'server' && (earlier ? earlier.route === 'client' : storedRoute === 'client');
      if (!handOver || handOvers.some((h) => h.uniqueId === event.unique_id)) duplicates.push(index);
      else if (earlier) earlier.route = 'server';
      else handOvers.push({ index, uniqueId: event.unique_id });
      return;
    }
    const time = Date.parse(event.time);
    const plannedEvent: PlannedEvent = { index, event, route: event.route, time, profileId: stitch(event.profile, time) };
    planned.set(event.unique_id, plannedEvent);
    events.push(plannedEvent);
  });

  for (const e of events) if (e.profileId !== null) e.profileId = resolve(e.profileId);
  const live = [...profiles.values()].filter((p) => changed.has(p.id) && !mergedInto.has(p.id));
  const aliasInserts: IngestPlan['aliasInserts'] = [];
  const aliasMoves: IngestPlan['aliasMoves'] = [];
  for (const a of aliases.values()) {
    const owner = resolve(a.owner);
    if (a.storedOwner === undefined) aliasInserts.push({ kind: a.kind, value: a.value, profileId: owner });
    else if (resolve(a.storedOwner) !== owner) aliasMoves.push({ kind: a.kind, value: a.value, profileId: owner });
  }
  return {
    events,
    handOvers,
    duplicates,
    created: live.filter((p) => p.id < 0),
    updated: live.filter((p) => p.id > 0),
    merges: [...mergedInto.keys()].filter((id) => id > 0).map((from) => ({ from, into: resolve(from) })),
    aliasInserts,
    aliasMoves,
  };
}

/** Replace placeholder (negative) profile ids with the ids the store assigned. */
export function assignProfileIds(plan: IngestPlan, idFor: (placeholder: number) => number): void {
  const real = (id: number) => (id < 0 ? idFor(id) : id);
  for (const p of plan.created) p.id = idFor(p.id);
  for (const e of plan.events) if (e.profileId !== null) e.profileId = real(e.profileId);
  for (const m of plan.merges) m.into = real(m.into);
  for (const a of plan.aliasInserts) a.profileId = real(a.profileId);
  for (const a of plan.aliasMoves) a.profileId = real(a.profileId);
}

// Profiles with identity resolution by id, external_id, email, phone_number and anonymous_id, and per-channel
// marketing consent.
import { ApiError } from '../errors.js';
import { ulid } from '../ids.js';

export type Consent = 'SUBSCRIBED' | 'NEVER_SUBSCRIBED' | 'UNSUBSCRIBED';
export type Channel = 'email' | 'sms';

export interface ChannelConsent {
  consent: Consent;
  /** When it last changed; also the source, e.g. 'bulk subscribe job 01J…'. */
  timestamp?: string;
  method?: string;
}

export interface Profile {
  id: string;
  email?: string;
  phone_number?: string;
  external_id?: string;
  anonymous_id?: string;
  /** first_name, last_name, organization, locale, title, image, location. */
  attributes: Record<string, unknown>;
  properties: Record<string, unknown>;
  subscriptions: { email: { marketing: ChannelConsent }; sms: { marketing: ChannelConsent } };
  /** Double opt-in requests waiting for the person to confirm. */
  pendingOptIns: Array<{ listId: string; channel: Channel; requestedAt: string }>;
  /** Set when an unsubscribe for a list the profile was not on unsubscribed it from everything. */
  globalUnsubscribe?: { at: string; channels: Channel[]; reason: string };
  created: string;
  updated: string;
}

export type UpsertMode = 'import' | 'server' | 'client';

export const IDENTIFIERS = ['external_id', 'email', 'phone_number', 'anonymous_id'] as const;
export type Identifier = (typeof IDENTIFIERS)[number];
export type Identity = Partial<Record<Identifier | 'id', string>>;

const ATTRIBUTE_FIELDS = ['first_name', 'last_name', 'organization', 'locale', 'title', 'image', 'location'];

/** Klaviyo treats emails case-insensitively. */
export function normalizeIdentity(attrs: Record<string, any>, id?: string | null): Identity {
  const out: Identity = {};
  if (id) out.id = id;
  for (const key of IDENTIFIERS) {
    const v = attrs?.[key];
    if (typeof v === 'string' && v.trim()) out[key] = key === 'email' ? v.trim().toLowerCase() : v.trim();
  }
  return out;
}

export const hasIdentifier = (identity: Identity) => Object.keys(identity).length > 0;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const E164 = /^\+[1-9]\d{6,14}$/;

/** Identifier format problems, as [field, detail] pairs. */
export function identityProblems(identity: Identity): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (identity.email !== undefined && !EMAIL.test(identity.email)) out.push(['email', `Invalid email address '${identity.email}'.`]);
  if (identity.phone_number !== undefined && !E164.test(identity.phone_number)) {
    out.push(['phone_number', `Invalid phone number format '${identity.phone_number}' (Example of a valid format: +12345678901).`]);
  }
  return out;
}

/** The identifiers a server profile write (import or PATCH) may set; anonymous_id is the client API's. */
const PATCHABLE_IDENTIFIERS = ['external_id', 'email', 'phone_number'] as const;

/** Klaviyo's answer when a write's identifiers already sit on another profile. */
function duplicateProfile(key: Identifier | 'id', owner: Profile): ApiError {
  // Klaviyo points at the attributes as a whole and names the profile that holds the identifier in meta.
  return new ApiError(409, 'duplicate_profile', `A profile already exists with one of these identifiers (${key}).`, { pointer: key === 'id' ? '/data/id' : '/data/attributes' }, {}, { duplicate_profile_id: owner.id });
}

const neverSubscribed = (): ChannelConsent => ({ consent: 'NEVER_SUBSCRIBED' });

export class ProfileStore {
  readonly byId = new Map<string, Profile>();
  private readonly index: Record<Identifier, Map<string, string>> = {
    external_id: new Map(),
    email: new Map(),
    phone_number: new Map(),
    anonymous_id: new Map(),
  };

  get(id: string): Profile | undefined {
    return this.byId.get(id);
  }

  all(): Profile[] {
    return [...this.byId.values()];
  }

  find(key: Identifier, value: string): Profile | undefined {
    const id = this.index[key].get(key === 'email' ? value.toLowerCase() : value);
    return id ? this.byId.get(id) : undefined;
  }

  /**
   * The profiles an identity points at, highest-priority identifier first (id, external_id, email, phone,
   * anonymous_id). Throws 404 for an unknown id.
   */
  private matches(identity: Identity): Array<{ key: Identifier | 'id'; profile: Profile }> {
    const out: Array<{ key: Identifier | 'id'; profile: Profile }> = [];
    if (identity.id) {
      const p = this.byId.get(identity.id);
      if (!p) throw new ApiError(404, 'not_found', `A profile with id '${identity.id}' does not exist.`, { pointer: '/data/id' });
      out.push({ key: 'id', profile: p });
    }
    for (const key of IDENTIFIERS) {
      const v = identity[key];
      const p = v === undefined ? undefined : this.find(key, v);
      if (p) out.push({ key, profile: p });
    }
    return out;
  }

  /**
   * Creates or updates the profile an identity resolves to.
   * 'import' (server profile writes): identifiers that belong to different profiles → 409 duplicate_profile.
   * 'server' (server events, consent jobs): the highest-priority match wins and identifiers owned elsewhere stay there.
   * 'client' (/client/*): as 'server', and an identifier the profile already has is never changed; the client API
   * answers 202 and ignores the new value, as Klaviyo documents.
   */
  upsert(identity: Identity, update: { attributes?: Record<string, any>; meta?: Record<string, any> } = {}, mode: UpsertMode = 'server'): { profile: Profile; created: boolean } {
    const found = this.matches(identity);
    let profile = found[0]?.profile;
    const conflict = found.find((m) => m.profile !== profile);
    if (conflict && mode === 'import') {
      throw duplicateProfile(conflict.key, conflict.profile);
    }
    const now = new Date().toISOString();
    const created = !profile;
    if (!profile) {
      profile = {
        id: ulid(),
        attributes: {},
        properties: {},
        subscriptions: { email: { marketing: neverSubscribed() }, sms: { marketing: neverSubscribed() } },
        pendingOptIns: [],
        created: now,
        updated: now,
      };
      this.byId.set(profile.id, profile);
    }
    for (const key of IDENTIFIERS) {
      const v = identity[key];
      if (v === undefined || profile[key] === v) continue;
      if (mode === 'client' && profile[key] !== undefined) continue;
      const owner = this.find(key, v);
      if (owner && owner !== profile) continue; // loose mode: the identifier stays with its owner
      if (profile[key] !== undefined) this.index[key].delete(profile[key]!);
      profile[key] = v;
      this.index[key].set(v, profile.id);
    }
    this.applyAttributes(profile, update.attributes ?? {}, update.meta);
    profile.updated = now;
    return { profile, created };
  }

  /**
   * PATCH semantics: a field sent as null (or '') is cleared, one left out is unchanged. An identifier that belongs
   * to another profile → 409 duplicate_profile naming it, checked before anything changes.
   */
  patch(profile: Profile, attrs: Record<string, any>, meta?: Record<string, any>): void {
    const identity = normalizeIdentity(attrs);
    for (const key of PATCHABLE_IDENTIFIERS) {
      const v = identity[key];
      const owner = v === undefined ? undefined : this.find(key, v);
      if (owner && owner !== profile) throw duplicateProfile(key, owner);
    }
    for (const key of PATCHABLE_IDENTIFIERS) {
      if (!(key in attrs)) continue;
      if (profile[key] !== undefined) this.index[key].delete(profile[key]!);
      const v = identity[key];
      if (v === undefined) delete profile[key];
      else {
        profile[key] = v;
        this.index[key].set(v, profile.id);
      }
    }
    this.applyAttributes(profile, attrs, meta);
    if (attrs.properties === null) profile.properties = {};
    profile.updated = new Date().toISOString();
  }

  private applyAttributes(profile: Profile, attrs: Record<string, any>, meta?: Record<string, any>): void {
    for (const key of ATTRIBUTE_FIELDS) {
      if (!(key in attrs)) continue;
      const v = attrs[key];
      if (v === null || v === '') delete profile.attributes[key];
      else if (key === 'location' && typeof v === 'object') profile.attributes.location = { ...(profile.attributes.location as object), ...v };
      else profile.attributes[key] = v;
    }
    if (attrs.properties && typeof attrs.properties === 'object') Object.assign(profile.properties, attrs.properties);
    const patch = meta?.patch_properties;
    if (patch) {
      for (const [k, v] of Object.entries<any>(patch.append ?? {})) {
        const cur = profile.properties[k];
        profile.properties[k] = [...(Array.isArray(cur) ? cur : cur === undefined ? [] : [cur]), ...(Array.isArray(v) ? v : [v])];
      }
      for (const [k, v] of Object.entries<any>(patch.unappend ?? {})) {
        const cur = profile.properties[k];
        if (Array.isArray(cur)) profile.properties[k] = cur.filter((x) => !(Array.isArray(v) ? v : [v]).includes(x));
      }
      const unset = patch.unset;
      for (const k of Array.isArray(unset) ? unset : unset ? [unset] : []) delete profile.properties[k];
    }
  }

  setConsent(profile: Profile, channel: Channel, consent: Consent, method: string): void {
    profile.subscriptions[channel].marketing = { consent, timestamp: new Date().toISOString(), method };
    profile.updated = new Date().toISOString();
  }

  clear(): void {
    this.byId.clear();
    for (const key of IDENTIFIERS) this.index[key].clear();
  }

  /** Rebuilds the indexes from a snapshot. */
  load(profiles: Profile[]): void {
    this.clear();
    for (const p of profiles) {
      this.byId.set(p.id, p);
      for (const key of IDENTIFIERS) if (p[key] !== undefined) this.index[key].set(p[key]!, p.id);
    }
  }
}

// Map one source member to Klaviyo profile attributes, then validate its identifiers: an invalid email or phone is
// dropped (the member still syncs on what remains), and a member with no identifier left is skipped. Pure and
// allocation-light: it runs once per member of a 1M audience.
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import type { AudienceDefinition } from './definition.js';

/** A source member: a flat or nested record (CSV row, NDJSON object, or a store profile). */
export type SourceMember = Record<string, unknown>;

export type ProfileAttributes = Record<string, unknown> & {
  email?: string;
  phone_number?: string;
  external_id?: string;
  location?: Record<string, unknown>;
  properties?: Record<string, unknown>;
};

export type MapOutcome =
  | {
      kind: 'ok';
      /** Stable identity of the member across runs (diff state key). */
      key: string;
      attributes: ProfileAttributes;
      /** Names of fields dropped because they failed validation (counted as invalid_fields). */
      droppedFields: string[];
      consentedAt?: string;
    }
  | { kind: 'anonymous' }
  | { kind: 'invalid'; reason: string };

export interface MapperOptions {
  defaultPhoneRegion?: string;
  /** A stable member id the source itself knows (a store profile id); otherwise external_id, email or phone. */
  sourceKey?: (member: SourceMember) => string | undefined;
}

const STANDARD_FIELDS = ['email', 'phone_number', 'external_id', 'first_name', 'last_name', 'organization', 'title', 'locale', 'image'];
const LOCATION_FIELDS = ['address1', 'address2', 'city', 'country', 'region', 'zip', 'timezone', 'latitude', 'longitude', 'ip'];

/** With no explicit mapping, every same-named Klaviyo field of the source is used. */
export const DEFAULT_MAPPING: AudienceDefinition['mapping'] = [
  ...STANDARD_FIELDS.map((f) => ({ from: f, to: f })),
  ...LOCATION_FIELDS.map((f) => ({ from: `location.${f}`, to: `location.${f}` })),
];

const EMAIL = /^[^\s@"(),:;<>[\\\]]+@[^\s@"(),:;<>[\\\]]+\.[^\s@"(),:;<>[\\\].]{2,}$/;

export function normaliseEmail(value: string): string | undefined {
  const email = value.trim().toLowerCase();
  return email.length <= 254 && EMAIL.test(email) && !email.includes('..') ? email : undefined;
}

/** E.164, or undefined. Without a leading "+" the number needs a default region (the audience's or the config's `defaultPhoneRegion`); without one it is invalid. */
export function normalisePhone(value: string, defaultRegion?: string): string | undefined {
  const text = value.trim();
  if (!text) return undefined;
  if (!text.startsWith('+') && !defaultRegion) return undefined;
  const parsed = parsePhoneNumberFromString(text, defaultRegion?.toUpperCase() as CountryCode | undefined);
  return parsed?.isValid() ? parsed.number : undefined;
}

/**
 * The value at `path`: an exact key first (CSV headers may contain dots), then a dotted walk through objects.
 * Only the member's own keys count: `constructor` or `__proto__` never reads what every object inherits.
 */
export function readField(member: SourceMember, path: string): unknown {
  if (Object.hasOwn(member, path)) return member[path];
  if (!path.includes('.')) return undefined;
  let node: unknown = member;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

const isEmpty = (v: unknown) => v === undefined || v === null || v === '';

/** Custom properties keep their JSON type; CSV gives strings, so plain decimal numbers there become numbers. */
function propertyValue(v: unknown): unknown {
  if (typeof v === 'string' && /^-?(0|[1-9]\d{0,14})(\.\d+)?$/.test(v)) return Number(v);
  return v;
}

function asText(v: unknown): string | undefined {
  if (isEmpty(v)) return undefined;
  if (typeof v === 'string') return v.trim() || undefined;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function parseConsentTime(v: unknown): string | undefined {
  if (isEmpty(v)) return undefined;
  const ms = typeof v === 'number' ? v : Date.parse(String(v));
  return Number.isFinite(ms) && ms <= Date.now() ? new Date(ms).toISOString() : undefined;
}

/** Build the mapper for one definition; the returned function maps and validates one member. */
export function createMapper(def: AudienceDefinition, options: MapperOptions = {}) {
  const mapping = def.mapping.length ? def.mapping : DEFAULT_MAPPING;
  const region = def.defaultPhoneRegion ?? options.defaultPhoneRegion;
  const externalIdSource = mapping.find((m) => m.to === 'external_id')?.from;

  return function mapMember(member: SourceMember): MapOutcome {
    const attributes: ProfileAttributes = {};
    const droppedFields: string[] = [];
    let sourceExternalId: string | undefined;

    for (const { from, to } of mapping) {
      const raw = readField(member, from);
      if (isEmpty(raw)) continue;
      if (to === 'email') {
        const email = typeof raw === 'string' ? normaliseEmail(raw) : undefined;
        if (email) attributes.email = email;
        else droppedFields.push('email');
      } else if (to === 'phone_number') {
        const phone = typeof raw === 'string' || typeof raw === 'number' ? normalisePhone(String(raw), region) : undefined;
        if (phone) attributes.phone_number = phone;
        else droppedFields.push('phone_number');
      } else if (to === 'external_id') {
        const id = asText(raw);
        if (id === undefined) continue;
        sourceExternalId = id;
        // excludeExternalId omits the key entirely (never null, which would clear Klaviyo's value); the id still keys the diff state.
        if (!def.excludeExternalId) attributes.external_id = id;
      } else if (to.startsWith('location.')) {
        const field = to.slice(9);
        const value = field === 'latitude' || field === 'longitude' ? (typeof raw === 'number' ? raw : asText(raw)) : asText(raw);
        if (value === undefined) continue;
        (attributes.location ??= {})[field] = value;
      } else if (to.startsWith('properties.')) {
        (attributes.properties ??= {})[to.slice(11)] = propertyValue(raw);
      } else {
        const value = asText(raw);
        if (value !== undefined) attributes[to] = value;
      }
    }

    const consentedAt = def.consentedAtField ? parseConsentTime(readField(member, def.consentedAtField)) : undefined;
    if (attributes.email || attributes.phone_number || attributes.external_id) {
      const key =
        options.sourceKey?.(member) ??
        (sourceExternalId !== undefined ? `x:${sourceExternalId}` : attributes.email ? `e:${attributes.email}` : `p:${attributes.phone_number}`);
      return { kind: 'ok', key, attributes, droppedFields, consentedAt };
    }
    if (droppedFields.includes('email') || droppedFields.includes('phone_number')) {
      return { kind: 'invalid', reason: `no valid identifier left (invalid ${droppedFields.join(' and ')})` };
    }

    // Anonymous: keyed by its anonymous id as external_id when allowed (never together with excludeExternalId).
    const anonymousId = asText(readField(member, 'anonymous_id'));
    if (def.allowAnonymous && anonymousId) {
      attributes.external_id = anonymousId;
      return { kind: 'ok', key: options.sourceKey?.(member) ?? `x:${anonymousId}`, attributes, droppedFields, consentedAt };
    }
    return { kind: 'anonymous' };
  };
}

export type Mapper = ReturnType<typeof createMapper>;

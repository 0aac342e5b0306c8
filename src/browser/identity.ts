// Who the visitor is: the anonymous-id cookie (js-cookie) mirrored in IndexedDB, traits merged by identify(),
// and `_kx` from a Klaviyo email link. Every event carries the identifiers, never the whole trait set.
import Cookies from 'js-cookie';
import type { RelayProfile } from '../shared/wire.js';
import { PROFILE_IDENTIFIERS } from '../shared/wire.js';
import { isEmail, toE164 } from './sanitize.js';

export const ID_COOKIE = 'klaviyo_relay_id';
export const CONSENT_COOKIE = 'klaviyo_relay_consent';
/** Profile attributes of Klaviyo's own (the identifiers, then the rest); any other trait goes to `properties`. */
const STANDARD: readonly string[] = [...PROFILE_IDENTIFIERS, 'first_name', 'last_name', 'organization', 'title', 'locale', 'image', 'location'];

export const cookieAttributes = (domain?: string): Cookies.CookieAttributes => ({
  expires: 365,
  sameSite: 'Lax',
  secure: location.protocol == 'https:',
  domain, // js-cookie leaves out an empty or undefined attribute
});

export const readCookie = (name: string) => Cookies.get(name);
export const writeCookie = (name: string, value: string, domain?: string) => Cookies.set(name, value, cookieAttributes(domain));
export const removeCookie = (name: string, domain?: string) => Cookies.remove(name, { domain });

/** crypto.randomUUID needs a secure context; a blob URL ends in a random (v4) UUID on plain http too. */
export const uuid = (): string => {
  if (crypto.randomUUID) return crypto.randomUUID();
  const url = URL.createObjectURL(new Blob());
  URL.revokeObjectURL(url);
  return url.slice(-36);
};

/** `_kx` from the landing URL (Klaviyo appends it to email links). */
export const kxFromUrl = (href: string) => new URL(href).searchParams.get('_kx') || undefined;

/** A trait as the profile keeps it: phone numbers in E.164; undefined for a malformed email or phone. */
const normalize = (k: string, raw: unknown) => (k == 'phone_number' ? toE164(raw) : k != 'email' || isEmail(raw) ? raw : undefined);

/**
 * Whether identify() traits name someone other than the person this profile holds: an email (case-insensitive, as
 * Klaviyo compares them), phone number or external id different from the one already held. Klaviyo's Client API
 * never changes an existing profile's identifiers, so merging a second person here would be silent and permanent.
 */
export function namesAnotherPerson(profile: RelayProfile, traits: Record<string, unknown>): boolean {
  return (['email', 'phone_number', 'external_id'] as const).some((k) => {
    const next = normalize(k, traits[k]);
    return profile[k] != null && next != null && next !== '' && String(next).toLowerCase() != String(profile[k]).toLowerCase();
  });
}

/**
 * Merges identify() traits into a profile. Returns the problems found; a malformed email or phone is left out
 * (Klaviyo would reject the whole request), the rest is kept.
 */
export function mergeTraits(profile: RelayProfile, traits: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const p = profile as Record<string, unknown>;
  for (const k in traits) {
    const raw = traits[k];
    const v = normalize(k, raw);
    if (raw == null || raw === '' || k == 'anonymous_id') continue;
    if (v === undefined) problems.push(`${k} ${JSON.stringify(raw)} is not ${k == 'email' ? 'an email address' : 'E.164 (+ and country code)'}`);
    else if (STANDARD.includes(k)) p[k] = v;
    else p.properties = { ...p.properties as object, [k]: v };
  }
  return problems;
}

/** The identifiers every event carries. */
export function identifiers(profile: RelayProfile): RelayProfile {
  const out: Record<string, unknown> = {};
  for (const k of PROFILE_IDENTIFIERS) if (profile[k]) out[k] = profile[k];
  return out;
}

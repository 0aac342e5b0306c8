// The wire contract between the snippet and the companion server: the body of POST /v1/events (docs/wire-format.md).
// Field names follow Klaviyo's attribute names so payload builders can pass them through.

export type Route = 'client' | 'server' | 'off';

export interface RelayLocation {
  address1?: string;
  address2?: string;
  city?: string;
  country?: string;
  region?: string;
  zip?: string;
  timezone?: string;
  ip?: string;
  latitude?: number | string;
  longitude?: number | string;
}

/** Identifiers and traits known for the visitor when the event was captured. */
export interface RelayProfile {
  anonymous_id?: string;
  email?: string;
  phone_number?: string;
  external_id?: string;
  _kx?: string;
  first_name?: string;
  last_name?: string;
  organization?: string;
  title?: string;
  locale?: string;
  image?: string;
  location?: RelayLocation;
  /** Custom traits. */
  properties?: Record<string, unknown>;
}

export interface RelayEvent {
  /** Defaults to `track`. */
  type?: 'track' | 'identify';
  /** Metric name; required for `track`. */
  name?: string;
  properties?: Record<string, unknown>;
  /** ISO-8601 capture time. */
  time: string;
  value?: number;
  value_currency?: string;
  /** UUID made at track time; Klaviyo de-duplicates on it. */
  unique_id: string;
  route: Route;
  profile: RelayProfile;
}

export interface EventsBatch {
  public_key: string;
  events: RelayEvent[];
}

export interface EventsResponse {
  accepted: number;
  rejected: { index: number; error: string }[];
}

/** Identifier fields: a profile needs at least one of these to exist in Klaviyo. */
export const PROFILE_IDENTIFIERS = ['email', 'phone_number', 'external_id', 'anonymous_id', '_kx'] as const;

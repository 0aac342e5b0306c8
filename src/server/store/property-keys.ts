// Which property names the store holds, for the console's suggestions: the top-level keys seen on a bounded sample
// of the newest events of one name (or the newest profiles carrying custom data), counted and ranked. Both
// backends read the sample through an index (events_name_time, the profiles primary key) and count in SQL, so the
// work is bounded alike on a store of a thousand events or a hundred million. Keys are shopper data: one longer than MAX_KEY_LENGTH is left
// out (cut short it would name a property nobody has), and at most MAX_KEYS are returned, most carried first.
import { SEGMENT_PROFILE_COLUMNS } from './segment-rules.js';

/** How many of the newest events (or profiles) are read by default, and at most. */
export const PROPERTY_KEY_SAMPLE = 500;
/**
 * Profiles are sampled among the newest this many: most profiles are anonymous visitors who never carry custom
 * properties, so the sample is the newest profiles *with* custom properties or a location found among them.
 */
export const PROFILE_SCAN = 10_000;
/** Keys longer than this (in characters) are left out. */
export const MAX_KEY_LENGTH = 100;
/** At most this many keys are returned (besides the profile columns, which are always listed). */
export const MAX_KEYS = 200;

export interface PropertyKeyCount {
  key: string;
  /** How many of the sampled events (profiles) carry it. */
  count: number;
}

export interface PropertyKeySample {
  /** How many events (profiles) were read: at most the sample size asked for. */
  sampled: number;
  /** Most carried first, then by name. */
  keys: PropertyKeyCount[];
  /** More keys than MAX_KEYS were seen: the least carried were left out. */
  truncated: boolean;
}

export const byCountThenKey = (a: PropertyKeyCount, b: PropertyKeyCount) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** The ranked keys from SQL asked for MAX_KEYS + 1 rows (so one more says there were more). */
export function rankedKeys(sampled: number, rows: PropertyKeyCount[]): PropertyKeySample {
  return { sampled, keys: rows.slice(0, MAX_KEYS).map((r) => ({ key: r.key, count: Number(r.count) })), truncated: rows.length > MAX_KEYS };
}

/**
 * The profile sample's keys: every profile column a trait rule can name (always listed, it is valid on any
 * profile, with how many sampled profiles hold a value), then the custom `properties.<key>` and `location.<key>`
 * keys counted in SQL (asked for MAX_KEYS + 1 rows).
 */
export function rankedProfileKeys(sampled: number, columnCounts: Record<string, number | string>, custom: PropertyKeyCount[]): PropertyKeySample {
  const ranked = rankedKeys(sampled, custom);
  const columns = SEGMENT_PROFILE_COLUMNS.map((key) => ({ key, count: Number(columnCounts[key] ?? 0) }));
  return { ...ranked, keys: [...columns, ...ranked.keys].sort(byCountThenKey) };
}

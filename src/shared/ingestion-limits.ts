// Klaviyo's ingestion limits for events, shared by the snippet (checked before an event is queued), the companion
// server (checked per event at intake) and the sandbox (answered 400 on every event endpoint).
// Source: https://developers.klaviyo.com/en/docs/rate-limits-and-error-handling, "Ingestion limits".
// Plain code, no zod: the snippet imports it and pays for every byte.

export const INGESTION_LIMITS = {
  /** Top-level keys of an event's properties. */
  properties: 300,
  /** UTF-8 bytes of any single string value. */
  fieldBytes: 100_000,
  /** Items of any array, at any depth. */
  arrayItems: 4000,
  /** Levels of nested objects and arrays, the properties object itself being level 1. */
  nestingLevels: 10,
  /** The earliest event time Klaviyo takes: 2000-01-01T00:00:00Z. */
  earliestTime: 946684800000,
  /** How far ahead of now an event time may be: one year. */
  futureMs: 31536000000,
} as const;

/**
 * UTF-8 bytes of a string, measured with a Blob as the snippet measures request bodies; a string of at most a quarter
 * of the limit in code units cannot exceed it (≤ 4 bytes each) and is not measured.
 */
const utf8Bytes = (text: string) => (text.length * 4 <= INGESTION_LIMITS.fieldBytes ? text.length : new Blob([text]).size);

function valueError(value: unknown, level: number): string | undefined {
  if (typeof value == 'string') return utf8Bytes(value) > INGESTION_LIMITS.fieldBytes ? `a field is larger than ${INGESTION_LIMITS.fieldBytes} bytes` : undefined;
  if (!value || typeof value != 'object') return;
  if (level > INGESTION_LIMITS.nestingLevels) return `properties are nested more than ${INGESTION_LIMITS.nestingLevels} levels deep`;
  if (Array.isArray(value) && value.length > INGESTION_LIMITS.arrayItems) return `an array has more than ${INGESTION_LIMITS.arrayItems} items`;
  for (const item of Object.values(value)) {
    const error = valueError(item, level + 1);
    if (error) return error;
  }
}

/** Why Klaviyo would refuse these properties, naming the limit, or undefined when they are within every limit. */
export function propertiesLimitError(properties: unknown): string | undefined {
  if (!properties || typeof properties != 'object') return;
  if (Object.keys(properties).length > INGESTION_LIMITS.properties) return `more than ${INGESTION_LIMITS.properties} properties`;
  return valueError(properties, 1);
}

/** Why Klaviyo would refuse this event time (epoch ms or ISO string), or undefined when it is in range. */
export function timeLimitError(time: number | string, now: number): string | undefined {
  const at = new Date(time).getTime();
  if (!(at >= INGESTION_LIMITS.earliestTime)) return 'the event time is before 2000-01-01';
  if (at > now + INGESTION_LIMITS.futureMs) return 'the event time is more than one year ahead';
  return undefined;
}

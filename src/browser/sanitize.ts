// Input checks for the public methods (SPEC §7). Each returns a reason to ignore the call, or the cleaned value.
// Klaviyo's limits: ≤ 400 properties per event, strings ≤ 100 KB; the whole event must fit a 1 MiB relay batch.

export const MAX_NAME = 128;
export const MAX_PROPERTIES = 400;
export const MAX_STRING = 1e5;
export const MAX_EVENT_CHARS = 5e5;

export type Checked<T> = { ok: T } | { error: string };

export function checkName(name: unknown): string | undefined {
  if (typeof name != 'string' || !name.trim()) return 'the event name must be a non-empty string';
  if (name.length > MAX_NAME) return `the event name is longer than ${MAX_NAME} characters`;
}

/**
 * A plain object within Klaviyo's limits, deep-copied through JSON: later mutation by the page cannot change a queued
 * event, and IndexedDB never meets a value it cannot clone (functions, DOM nodes).
 */
export function checkProperties(props: unknown): Checked<Record<string, unknown>> {
  if (props == null) return { ok: {} };
  if (typeof props != 'object' || Array.isArray(props)) return { error: 'properties must be a plain object' };
  if (Object.keys(props).length > MAX_PROPERTIES) return { error: `more than ${MAX_PROPERTIES} properties` };
  let json: string;
  try {
    json = JSON.stringify(props, (_, v) => {
      if (typeof v == 'string' && v.length > MAX_STRING) throw Error(`a string property is longer than ${MAX_STRING} characters`);
      return v;
    });
  } catch (e) {
    return { error: /circular|cyclic/i.test(String(e)) ? 'properties are cyclic' : (e as Error).message };
  }
  if (json.length > MAX_EVENT_CHARS) return { error: `properties exceed ${MAX_EVENT_CHARS} characters of JSON` };
  return { ok: JSON.parse(json) };
}

/** E.164: `+`, then 7–15 digits; spaces, dots, dashes and brackets are tolerated and removed. */
export function toE164(phone: unknown): string | undefined {
  const p = typeof phone == 'string' ? phone.replace(/[\s().-]/g, '') : '';
  if (/^\+[1-9]\d{6,14}$/.test(p)) return p;
}

export const isEmail = (v: unknown) => typeof v == 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v);

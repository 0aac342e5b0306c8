// Input checks for the public methods (SPEC §7). Each returns a reason to ignore the call, or the cleaned value.
// Klaviyo's limits: ≤ 400 properties per event, strings ≤ 100 KB; the whole event must fit a 1 MiB relay batch.

export const MAX_NAME = 128;
export const MAX_PROPERTIES = 400;
export const MAX_STRING = 1e5;
export const MAX_EVENT_CHARS = 5e5;

export const checkName = (name: unknown): string | undefined =>
  typeof name == 'string' && name.trim() && name.length <= MAX_NAME ? undefined : `the event name must be a string of 1 to ${MAX_NAME} characters`;

/**
 * A plain object within Klaviyo's limits, deep-copied through JSON: later mutation by the page cannot change a queued
 * event, and IndexedDB never meets a value it cannot clone (functions, DOM nodes). A string is the reason to refuse it.
 */
export function checkProperties(props: unknown): Record<string, unknown> | string {
  if (props == null) return {};
  let error = typeof props != 'object' || Array.isArray(props) ? 'properties must be a plain object' : Object.keys(props).length > MAX_PROPERTIES && `more than ${MAX_PROPERTIES} properties`;
  try {
    const json = error || JSON.stringify(props, (_, v) => {
      if (v?.length > MAX_STRING && typeof v == 'string') throw Error(`a string property is longer than ${MAX_STRING} characters`);
      return v;
    });
    return error || (json.length > MAX_EVENT_CHARS ? `properties exceed ${MAX_EVENT_CHARS} characters of JSON` : JSON.parse(json));
  } catch (e) {
    // Cyclic structures and BigInts land here, with the engine's own explanation.
    return 'properties cannot be sent: ' + (e as Error).message;
  }
}

/** E.164: `+`, then 7–15 digits; spaces, dots, dashes and brackets are tolerated and removed. */
export function toE164(phone: unknown): string | undefined {
  const p = typeof phone == 'string' ? phone.replace(/[\s().-]/g, '') : '';
  if (/^\+[1-9]\d{6,14}$/.test(p)) return p;
}

export const isEmail = (v: unknown) => typeof v == 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v);

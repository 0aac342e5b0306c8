// Input checks for the public methods. Each returns a reason to ignore the call, or the cleaned value. A bad call
// costs only itself: it is ignored with one console warning naming the problem, and nothing is queued.
import { propertiesLimitError, timeLimitError } from '../shared/ingestion-limits.js';

export const MAX_NAME = 128;
/** The whole event must fit one companion-server batch (512 KB). */
export const MAX_EVENT_CHARS = 5e5;

export const checkName = (name: unknown): string | undefined =>
  typeof name == 'string' && name.trim() && name.length <= MAX_NAME ? undefined : `the event name must be a string of 1 to ${MAX_NAME} characters`;

/**
 * A plain object within Klaviyo's ingestion limits, deep-copied through JSON: later mutation by the page cannot
 * change a queued event, and IndexedDB never meets a value it cannot clone (functions, DOM nodes). A string is the
 * reason to refuse it. The limits are checked first: they also stop cycles and absurd nesting at 10 levels.
 */
export function checkProperties(props: unknown): Record<string, unknown> | string {
  if (props == null) return {};
  if (typeof props != 'object' || Array.isArray(props)) return 'properties must be a plain object';
  try {
    const error = propertiesLimitError(props);
    if (error) return error;
    const json = JSON.stringify(props);
    return json.length > MAX_EVENT_CHARS ? `properties exceed ${MAX_EVENT_CHARS} characters of JSON` : JSON.parse(json);
  } catch (e) {
    // BigInts and throwing getters land here, with the engine's own explanation.
    return 'properties cannot be sent: ' + (e as Error).message;
  }
}

/** E.164: `+`, then 7–15 digits; spaces, dots, dashes and brackets are tolerated and removed. */
export function toE164(phone: unknown): string | undefined {
  const p = typeof phone == 'string' ? phone.replace(/[\s().-]/g, '') : '';
  if (/^\+[1-9]\d{6,14}$/.test(p)) return p;
}

export const isEmail = (v: unknown) => typeof v == 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v);

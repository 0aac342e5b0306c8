// Identifiers shaped like Klaviyo's: 26-char ULID-style profile/job ids, 6-char list/metric ids.
import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomString(alphabet: string, length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[bytes[i] % alphabet.length];
  return out;
}

/** Time-ordered, so ids sort by creation like Klaviyo's. */
export function ulid(now = Date.now()): string {
  let time = '';
  for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  return time + randomString(CROCKFORD, 16);
}

export const shortId = () => randomString(BASE62, 6);
export const eventId = () => randomString(BASE62, 11);

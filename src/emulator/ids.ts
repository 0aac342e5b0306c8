// Identifiers shaped like Klaviyo's: 26-char ULID-style profile/job ids, 6-char list/metric ids.
import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// One crypto call per 4 KB of ids instead of one per id: ids are minted on every accepted event.
let pool = randomBytes(4096);
let used = 0;

function randomString(alphabet: string, length: number): string {
  if (used + length > pool.length) {
    pool = randomBytes(4096);
    used = 0;
  }
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[pool[used++] % alphabet.length];
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

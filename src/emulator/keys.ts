// Who may call what: the public key (company_id) on /client/*, the private key on /api/*.
import { ApiError } from './errors.js';

export interface KeyConfig {
  /** The only private key accepted; unset → any well-formed one. */
  privateKey?: string;
  /** The only public key accepted; unset → any well-formed one. */
  publicKey?: string;
}

const PRIVATE_KEY = /^pk_\S{20,}$/;
const PUBLIC_KEY = /^[A-Za-z0-9]{6}$/;

export const isWellFormedPrivateKey = (key: string) => PRIVATE_KEY.test(key);
export const isWellFormedPublicKey = (key: string) => PUBLIC_KEY.test(key);

/** `/client/*`: `?company_id=` must be the public key. A private key there is a leak and always refused. */
export function checkPublicKey(companyId: string | null, keys: KeyConfig): string {
  if (!companyId) {
    throw new ApiError(400, 'invalid', "Missing required query parameter 'company_id' (your public API key / site ID).", { parameter: 'company_id' });
  }
  if (companyId.startsWith('pk_')) {
    throw new ApiError(403, 'permission_denied', 'A private API key cannot be used with the client API. Send your 6-character public API key as company_id, and keep the private key on your server.', { parameter: 'company_id' });
  }
  const ok = keys.publicKey ? companyId === keys.publicKey : isWellFormedPublicKey(companyId);
  if (!ok) throw new ApiError(403, 'permission_denied', `Invalid company_id '${companyId.slice(0, 12)}': not this account's public API key.`, { parameter: 'company_id' });
  return companyId;
}

/** `/api/*`: `Authorization: Klaviyo-API-Key pk_…`. Missing → 401, wrong → 403, as Klaviyo answers. */
export function checkPrivateKey(authorization: string | undefined, keys: KeyConfig): string {
  if (!authorization) {
    throw new ApiError(401, 'not_authenticated', "Authentication credentials were not provided. Send 'Authorization: Klaviyo-API-Key <your private key>'.");
  }
  const m = /^Klaviyo-API-Key\s+(\S+)\s*$/i.exec(authorization);
  if (!m) {
    throw new ApiError(401, 'not_authenticated', "Malformed Authorization header: expected 'Klaviyo-API-Key <your private key>'.");
  }
  const key = m[1];
  const ok = keys.privateKey ? key === keys.privateKey : isWellFormedPrivateKey(key);
  // Never echo the key back: error bodies end up in logs.
  if (!ok) throw new ApiError(403, 'permission_denied', 'Incorrect authentication credentials: the private API key is not valid for this account.');
  return key;
}

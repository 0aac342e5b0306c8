// Who may call what: the public key (company_id) on /client/*, the private key on /api/*.
import { ApiError } from './errors.js';

export interface KeyConfig {
  /** The only private key accepted; unset → any well-formed one. */
  privateKey?: string;
  /** The only public key accepted; unset → any well-formed one. */
  publicKey?: string;
  /** The private key's scopes, e.g. `['events:write']`; unset → a Full Access key. */
  privateKeyScopes?: readonly string[];
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

/**
 * A private key created with a scope answers 403 `permission_denied` on an operation it lacks a scope for
 * (https://developers.klaviyo.com/en/docs/authenticate_ ; the body as Klaviyo sends it:
 * https://community.klaviyo.com/developer-group-64/api-patch-action-status-403-code-permission-denied-9225).
 * A key's access is set per resource as read or full, and full includes read
 * (https://help.klaviyo.com/hc/en-us/articles/7423954176283), so `profiles:write` grants `profiles:read`.
 */
export function checkScopes(required: readonly string[], keys: KeyConfig): void {
  const granted = keys.privateKeyScopes;
  if (!granted) return;
  const has = (scope: string) => granted.includes(scope) || (scope.endsWith(':read') && granted.includes(scope.replace(/:read$/, ':write')));
  if (required.every(has)) return;
  throw new ApiError(403, 'permission_denied', 'You do not have permission to perform this action.');
}

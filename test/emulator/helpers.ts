// Real HTTP against a sandbox on 127.0.0.1:0.
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { KLAVIYO_REVISION } from '../../src/shared/revision.js';

export const PUBLIC_KEY = 'ABC123';
export const PRIVATE_KEY = 'pk_0123456789abcdefghijKLMNOP';

export async function start(opts: EmulatorOptions = {}): Promise<Emulator> {
  return startEmulator({ privateKey: PRIVATE_KEY, publicKey: PUBLIC_KEY, jobDelayMs: 20, ...opts });
}

export interface CallOptions {
  body?: unknown;
  raw?: string;
  headers?: Record<string, string | undefined>;
  query?: Record<string, string>;
}

/** A request as our code sends it (auth, revision, JSON:API content type), each part overridable. */
export async function call(em: Emulator, method: string, path: string, opts: CallOptions = {}) {
  const url = new URL(em.url + path);
  if (path.startsWith('/client/') && !('company_id' in (opts.query ?? {}))) url.searchParams.set('company_id', PUBLIC_KEY);
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
  const headers: Record<string, string> = { revision: KLAVIYO_REVISION, accept: 'application/vnd.api+json' };
  if (path.startsWith('/api/')) headers.authorization = `Klaviyo-API-Key ${PRIVATE_KEY}`;
  if (opts.body !== undefined || opts.raw !== undefined) headers['content-type'] = 'application/vnd.api+json';
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  const res = await fetch(url, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

export const clientEvent = (name: string, profile: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  data: { type: 'event', attributes: { properties: { sku: 'HAT-1' }, metric: { data: { type: 'metric', attributes: { name } } }, profile: { data: { type: 'profile', attributes: profile } }, ...extra } },
});

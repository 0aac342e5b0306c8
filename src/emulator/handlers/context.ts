// What every endpoint handler receives, and the small helpers they share.
import { ApiError, invalid } from '../errors.js';
import type { OpenApiSpec, Operation } from '../openapi.js';
import type { ParsedQuery } from '../query.js';
import type { KeyConfig } from '../keys.js';
import type { EmulatorState } from '../state/index.js';
import { hasIdentifier, identityProblems, normalizeIdentity, type Identity } from '../state/profiles.js';

export interface HandlerRequest {
  operation: Operation;
  params: Record<string, string>;
  query: ParsedQuery;
  body: any;
  /** The URL origin callers used, for JSON:API `links`. */
  baseUrl: string;
  path: string;
}

export interface HandlerResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (req: HandlerRequest) => HandlerResult;

export interface HandlerContext {
  state: EmulatorState;
  spec: OpenApiSpec;
  keys: KeyConfig;
  /** Epoch ms now (injectable for tests). */
  clock: () => number;
}

export const accepted = (): HandlerResult => ({ status: 202 });
export const noContent = (): HandlerResult => ({ status: 204 });

/** Rejects a request whose array exceeds Klaviyo's per-request limit. */
export function limit(items: unknown[], max: number, pointer: string, what: string): void {
  if (items.length > max) throw invalid(`Too many ${what}: ${items.length} submitted, at most ${max} per request.`, { pointer });
}

/**
 * A profile identity that Klaviyo would accept, or a 400 pointing at the offending field. With `state`, a profile
 * `id` must exist (404), checked now so that a queued job never meets an unknown id.
 */
export function requireIdentity(attrs: Record<string, any> | undefined, id: string | null | undefined, pointer: string, state?: EmulatorState): Identity {
  const identity = normalizeIdentity(attrs ?? {}, id);
  if (!hasIdentifier(identity) && !attrs?._kx) {
    throw invalid('A profile needs at least one identifier: email, phone_number, external_id, anonymous_id (client) or id.', { pointer });
  }
  const problems = identityProblems(identity);
  if (problems.length) throw invalid(problems[0][1], { pointer: `${pointer}/${problems[0][0]}` });
  if (state && identity.id && !state.profiles.get(identity.id)) {
    throw new ApiError(404, 'not_found', `A profile with id '${identity.id}' does not exist.`, { pointer: pointer.replace(/\/attributes$/, '/id') });
  }
  return identity;
}

/** ISO 8601 as Klaviyo stores it; `pointer` names the field when it is not a date. */
export function isoTime(value: unknown, pointer: string, fallback = new Date()): string {
  if (value === undefined || value === null) return fallback.toISOString();
  const text = String(value);
  // A naive date-time is UTC for Klaviyo; JavaScript would read it as local time.
  const t = new Date(/[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/i.test(text) ? `${text}Z` : text);
  if (Number.isNaN(t.getTime())) throw invalid(`'${value}' is not a valid datetime.`, { pointer });
  return t.toISOString();
}

export function paginate<T>(items: T[], req: HandlerRequest, pageSize: number): { page: T[]; links: Record<string, string | null> } {
  let offset = 0;
  if (req.query.cursor) {
    const decoded = Number(Buffer.from(req.query.cursor, 'base64url').toString());
    if (!Number.isInteger(decoded) || decoded < 0) throw new ApiError(400, 'invalid', `Invalid page cursor '${req.query.cursor}'.`, { parameter: 'page[cursor]' });
    offset = decoded;
  }
  const page = items.slice(offset, offset + pageSize);
  const link = (at: number) => {
    const q = new URLSearchParams(req.query.raw);
    q.set('page[cursor]', Buffer.from(String(at)).toString('base64url'));
    return `${req.baseUrl}${req.path}?${q.toString()}`;
  };
  const self = `${req.baseUrl}${req.path}${req.query.raw.size ? `?${req.query.raw.toString()}` : ''}`;
  return {
    page,
    links: { self, next: offset + pageSize < items.length ? link(offset + pageSize) : null, prev: offset > 0 ? link(Math.max(0, offset - pageSize)) : null },
  };
}

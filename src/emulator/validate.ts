// The wire checks Klaviyo makes before an endpoint runs: auth, revision, content type, and the body schema.
import { ApiError, errorItem } from './errors.js';
import { checkPrivateKey, checkPublicKey, checkScopes, type KeyConfig } from './keys.js';
import type { OpenApiSpec, Operation } from './openapi.js';

const REVISION = /^(\d{4}-\d{2}-\d{2})(\.[A-Za-z0-9_-]+)?$/;

/** Refuses a caller without this account's key (public on /client/*, private on /api/*, with the operation's scopes). */
export function authenticate(op: Operation, query: URLSearchParams, authorization: string | undefined, keys: KeyConfig): string {
  if (op.path.startsWith('/client/')) return checkPublicKey(query.get('company_id'), keys);
  const key = checkPrivateKey(authorization, keys);
  checkScopes(op.scopes, keys);
  return key;
}

/** `revision: YYYY-MM-DD[.suffix]` is required; a date past the spec's own revision does not exist yet. */
export function checkRevision(value: string | undefined, latest: string): void {
  if (!value) throw new ApiError(400, 'invalid', `Missing required header 'revision' (e.g. 'revision: ${latest}').`, { parameter: 'revision' });
  const m = REVISION.exec(value.trim());
  if (!m || Number.isNaN(Date.parse(m[1]))) throw new ApiError(400, 'invalid', `Invalid revision '${value}': expected YYYY-MM-DD[.suffix].`, { parameter: 'revision' });
  if (m[1] > latest) throw new ApiError(400, 'invalid', `Revision '${value}' does not exist; the latest is ${latest}.`, { parameter: 'revision' });
}

/** JSON:API bodies: `application/vnd.api+json`; `application/json` is accepted too. */
export function checkContentType(value: string | undefined): void {
  const type = (value ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/vnd.api+json' && type !== 'application/json') {
    throw new ApiError(415, 'unsupported_media_type', `Unsupported media type '${value ?? ''}' in request. Send 'Content-Type: application/vnd.api+json'.`);
  }
}

export function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ApiError(400, 'parse_error', `Malformed JSON: ${(err as Error).message}`);
  }
}

/** Every schema violation, each with a pointer to the offending field. */
export function checkBody(spec: OpenApiSpec, op: Operation, body: unknown): void {
  if (body === undefined) {
    if (op.bodyRequired) throw new ApiError(400, 'invalid', 'A request body is required.', { pointer: '/data' });
    return;
  }
  const problems = spec.validateBody(op.operationId, body);
  if (problems.length) throw ApiError.many(400, problems.map((p) => errorItem(400, 'invalid', p.detail, { pointer: p.pointer })));
}

// Klaviyo's error document: `{errors:[{id, status, code, title, detail, source:{pointer|parameter}}]}`; every error
// carries a source, the document root when no field is to blame.
import { randomUUID } from 'node:crypto';

export interface ErrorSource {
  pointer?: string;
  parameter?: string;
}

export interface ErrorItem {
  id: string;
  status: number;
  code: string;
  title: string;
  detail: string;
  source: ErrorSource;
  meta?: Record<string, unknown>;
}

/** Where Klaviyo points an error that concerns no particular field (401, 403, 429, 5xx…): the document root. */
export const DOCUMENT_SOURCE: ErrorSource = { pointer: '/data/' };

const TITLES: Record<number, string> = {
  400: 'Invalid input.',
  401: 'Authentication credentials were not provided.',
  403: 'Incorrect authentication credentials.',
  404: 'Not found.',
  405: 'Method not allowed.',
  409: 'Conflict.',
  413: 'Request entity too large.',
  415: 'Unsupported media type.',
  429: 'Request was throttled.',
  500: 'A server error occurred.',
  501: 'Not implemented.',
  503: 'Service unavailable.',
};

export function errorItem(status: number, code: string, detail: string, source?: ErrorSource, meta?: Record<string, unknown>): ErrorItem {
  const item: ErrorItem = { id: randomUUID(), status, code, title: TITLES[status] ?? 'Error.', detail, source: source ?? { ...DOCUMENT_SOURCE } };
  if (meta) item.meta = meta;
  return item;
}

/** A rejection that the HTTP layer turns into Klaviyo's error document. */
export class ApiError extends Error {
  readonly errors: ErrorItem[];
  constructor(
    readonly status: number,
    code: string,
    detail: string,
    source?: ErrorSource,
    readonly headers: Record<string, string> = {},
    meta?: Record<string, unknown>,
  ) {
    super(detail);
    this.errors = [errorItem(status, code, detail, source, meta)];
  }

  /** Several field errors at once (e.g. every schema violation of a body). */
  static many(status: number, items: ErrorItem[]): ApiError {
    const err = new ApiError(status, items[0].code, items[0].detail, items[0].source);
    err.errors.splice(0, 1, ...items);
    return err;
  }
}

export const invalid = (detail: string, source?: ErrorSource) => new ApiError(400, 'invalid', detail, source);
export const notFound = (detail: string) => new ApiError(404, 'not_found', detail);
